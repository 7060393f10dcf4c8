from __future__ import annotations

import enum
import json
from typing import Any, Literal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from endpointr.errors import ConfigError
from endpointr.schema import (
    JsonSchema,
    ValidationResult,
    as_json_schema,
    check_strict,
    create_json_schema,
    flatten_fields,
    json_dump,
    make_validator,
    parse_model,
    schema_array,
    schema_boolean,
    schema_enum,
    schema_integer,
    schema_number,
    schema_object,
    schema_string,
    validate_response,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    """Where someone lives."""

    city: str
    zip: str | None = None


class Person(BaseModel):
    name: str = Field(description="full name")
    age: int | None
    address: Address
    tags: list[str]
    mood: Literal["happy", "sad"]
    color: Color
    score: float = 0.5


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Loose(BaseModel):
    counts: dict[str, int]


def sentiment_schema() -> JsonSchema:
    return create_json_schema(
        "sentiment",
        schema_object(
            sentiment=schema_enum(["positive", "negative"]),
            confidence=schema_number(minimum=0, maximum=1),
            items=schema_array(schema_object(name=schema_string())),
        ),
    )


# --- builders ---------------------------------------------------------------------------


def test_scalar_builders_exact_output() -> None:
    assert schema_string() == {"type": "string"}
    assert schema_string("a city") == {"type": "string", "description": "a city"}
    assert schema_boolean("flag") == {"type": "boolean", "description": "flag"}
    assert schema_number(minimum=0, maximum=1.5) == {"type": "number", "minimum": 0, "maximum": 1.5}
    assert schema_integer("n", maximum=5) == {"type": "integer", "description": "n", "maximum": 5}
    assert schema_integer() == {"type": "integer"}


def test_number_bounds_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"minimum \(5\) is greater than maximum \(1\)"):
        schema_number(minimum=5, maximum=1)
    with pytest.raises(ConfigError, match="minimum must be a number"):
        schema_integer(minimum="0")  # type: ignore[arg-type]


def test_array_exact_output_and_checks() -> None:
    assert schema_array(schema_string(), "tags", min_items=1, max_items=3) == {
        "type": "array",
        "description": "tags",
        "items": {"type": "string"},
        "minItems": 1,
        "maxItems": 3,
    }
    with pytest.raises(ConfigError, match="min_items"):
        schema_array(schema_string(), min_items=-1)
    with pytest.raises(ConfigError, match="greater than max_items"):
        schema_array(schema_string(), min_items=3, max_items=1)
    with pytest.raises(ConfigError, match="items must be a schema dict"):
        schema_array("string")


def test_object_requires_everything_by_default() -> None:
    out = schema_object("a person", name=schema_string(), age=schema_integer())
    assert out == {
        "type": "object",
        "description": "a person",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    assert schema_object() == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_object_explicit_required_and_additional() -> None:
    out = schema_object(
        required=["a"], additional_properties=True, a=schema_string(), b=schema_string()
    )
    assert out["required"] == ["a"]
    assert out["additionalProperties"] is True
    assert schema_object(required="a", a=schema_string())["required"] == ["a"]


def test_object_unknown_required_names() -> None:
    with pytest.raises(ConfigError, match=r"'nope', 'other'.*properties: a"):
        schema_object(required=["a", "nope", "other"], a=schema_string())


def test_object_reserved_names_via_properties_mapping() -> None:
    out = schema_object(properties={"description": schema_string(), "required": schema_boolean()})
    assert list(out["properties"]) == ["description", "required"]
    assert out["required"] == ["description", "required"]


def test_object_property_must_be_schema() -> None:
    with pytest.raises(ConfigError, match="property 'a' must be a schema dict"):
        schema_object(a="string")


def test_object_accepts_pydantic_property() -> None:
    out = schema_object(home=Address)
    home = out["properties"]["home"]
    assert home["required"] == ["city", "zip"]
    assert home["additionalProperties"] is False
    assert home["properties"]["zip"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    with pytest.raises(ConfigError, match="recursive"):
        schema_object(tree=Node)


def test_enum_inference() -> None:
    assert schema_enum(["a", "b"]) == {"type": "string", "enum": ["a", "b"]}
    assert schema_enum([1, 2], "n") == {"type": "integer", "description": "n", "enum": [1, 2]}
    assert schema_enum([1, 2.5])["type"] == "number"
    assert schema_enum([True, False])["type"] == "boolean"
    assert schema_enum([1, 2], type="number")["type"] == "number"
    assert schema_enum(Color) == {"type": "string", "enum": ["red", "blue"]}


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ([], {}, "at least one value"),
        (["a", 1], {}, "mix types"),
        (["a", "a"], {}, "repeat"),
        ([None], {}, "must be strings"),
        (["a"], {"type": "integer"}, "does not fit"),
    ],
)
def test_enum_errors(values: list[Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        schema_enum(values, **kwargs)


# --- JsonSchema ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dot.ted", "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ConfigError, match=r"\^\[a-zA-Z0-9_-\]\{1,64\}\$"):
        create_json_schema(name, schema_object())


def test_good_names() -> None:
    for name in ["a", "A-b_9", "x" * 64]:
        assert create_json_schema(name, schema_object()).name == name


def test_top_level_must_be_object() -> None:
    with pytest.raises(ConfigError, match=r"top level .* must be an object"):
        create_json_schema("x", schema_string())
    with pytest.raises(ConfigError, match="not a valid JSON schema at"):
        create_json_schema("x", {"type": "object", "properties": {"a": {"type": "strin"}}})


def test_to_openai_and_to_anthropic_shapes() -> None:
    body = schema_object(a=schema_string())
    js = create_json_schema("thing", body, description="a thing")
    assert js.to_openai() == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "description": "a thing", "schema": body, "strict": True},
    }
    assert create_json_schema("t", body).to_openai()["json_schema"].keys() == {
        "name",
        "schema",
        "strict",
    }
    assert js.to_anthropic() == {"format": {"type": "json_schema", "schema": body}}


def test_to_anthropic_moves_unsupported_constraints_to_description() -> None:
    body = schema_object(
        n=schema_integer("count", minimum=0, maximum=9),
        xs=schema_array(schema_string(), min_items=2, max_items=4),
    )
    js = create_json_schema("t", body)
    out = js.to_anthropic()["format"]["schema"]
    assert out["properties"]["n"] == {
        "type": "integer",
        "description": "count {minimum: 0, maximum: 9}",
    }
    assert out["properties"]["xs"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "{maxItems: 4, minItems: 2}",
    }
    assert js.schema["properties"]["n"]["minimum"] == 0
    assert not validate_response(js, {"n": 10, "xs": ["a", "b"]}).ok


def test_json_schema_is_copied_hashable_and_frozen() -> None:
    body = schema_object(a=schema_string())
    js = create_json_schema("t", body)
    body["properties"]["b"] = schema_string()
    assert flatten_fields(js) == ["a"]
    assert hash(js) == hash(create_json_schema("t", schema_object(a=schema_string())))
    with pytest.raises(AttributeError):
        js.name = "other"  # type: ignore[misc]


def test_strict_false_skips_strict_check() -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    with pytest.raises(ConfigError, match="strict=False"):
        create_json_schema("t", loose)
    js = create_json_schema("t", loose, strict=False)
    assert js.to_openai()["json_schema"]["strict"] is False


# --- as_json_schema -------------------------------------------------------------------------

BARE = {
    "type": "object",
    "properties": {"label": {"type": "string"}},
    "required": ["label"],
    "additionalProperties": False,
}


def test_as_json_schema_forms() -> None:
    js = create_json_schema("lab", BARE)
    assert as_json_schema(js) is js
    assert as_json_schema(js, name="other").name == "other"
    bare = as_json_schema(BARE)
    assert (bare.name, bare.schema, bare.strict) == ("response", BARE, True)
    assert as_json_schema({**BARE, "title": "My Label"}).name == "My_Label"
    wrapper = {"name": "lab", "schema": BARE, "strict": True, "description": "d"}
    assert as_json_schema(wrapper) == JsonSchema("lab", BARE, True, "d")
    assert as_json_schema({"name": "lab", "schema": BARE}).strict is False
    response_format = {"type": "json_schema", "json_schema": wrapper}
    assert as_json_schema(response_format) == JsonSchema("lab", BARE, True, "d")
    assert as_json_schema(response_format, name="x").name == "x"
    anthropic = {"format": {"type": "json_schema", "schema": BARE}}
    assert as_json_schema(anthropic).schema == BARE
    assert as_json_schema(js.to_openai()) == js


def test_as_json_schema_from_file(tmp_path: Any) -> None:
    path = tmp_path / "my-schema.json"
    path.write_text(json.dumps(BARE))
    js = as_json_schema(path)
    assert (js.name, js.schema) == ("my-schema", BARE)
    assert as_json_schema(str(path), name="n").name == "n"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        as_json_schema(bad)
    with pytest.raises(ConfigError, match="cannot read schema file"):
        as_json_schema(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="JSON text"):
        as_json_schema('{"type": "object"}')


@pytest.mark.parametrize("value", [42, None, ["a"], {"foo": 1}, Person])
def test_as_json_schema_rejects_others(value: Any) -> None:
    if value is Person:
        value = Person(
            name="a", age=None, address=Address(city="x"), tags=[], mood="sad", color=Color.RED
        )
    with pytest.raises(
        ConfigError, match=r"a pydantic BaseModel subclass, or the path of a \.json"
    ):
        as_json_schema(value)


def test_as_json_schema_pydantic_is_strict() -> None:
    js = as_json_schema(Person)
    schema = js.schema
    assert js.name == "Person" and js.strict
    assert schema["required"] == ["name", "age", "address", "tags", "mood", "color", "score"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["name"] == {"type": "string", "description": "full name"}
    assert props["age"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["address"]["required"] == ["city", "zip"]
    assert props["address"]["additionalProperties"] is False
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["mood"] == {"type": "string", "enum": ["happy", "sad"]}
    assert props["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert props["score"] == {"type": "number"}
    assert "$defs" not in schema and "title" not in schema
    check_strict(js)


def test_as_json_schema_recursive_model_keeps_defs() -> None:
    js = as_json_schema(Node)
    assert js.schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert js.schema["$defs"]["Node"]["required"] == ["value", "children"]
    tree = {"value": 1, "children": [{"value": 2, "children": []}]}
    assert validate_response(js, tree).ok
    bad = {"value": 1, "children": [{"value": "2", "children": []}]}
    assert (
        validate_response(js, bad).error
        == "field 'children[0].value': '2' is not of type 'integer'"
    )


def test_pydantic_free_form_dict_is_rejected_with_path() -> None:
    with pytest.raises(ConfigError, match=r"\$\.properties\.counts: .*additionalProperties"):
        as_json_schema(Loose)


def test_parse_model() -> None:
    value = {"city": "Leeds", "zip": None}
    assert parse_model(Address, value) == Address(city="Leeds")
    assert parse_model(Address, orjson.dumps(value).decode()).city == "Leeds"
    with pytest.raises(ConfigError):
        parse_model(dict, value)  # type: ignore[type-var]


# --- check_strict -----------------------------------------------------------------------------


def test_check_strict_missing_required_names_the_path() -> None:
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer"}},
        "required": [],
        "additionalProperties": False,
    }
    with pytest.raises(ConfigError) as info:
        check_strict(schema)
    assert str(info.value) == (
        "$.properties.age: property 'age' is not in 'required'; strict mode needs every "
        "property required — make it nullable instead: {'type': ['integer', 'null']}"
    )


def test_check_strict_nested_problems() -> None:
    inner = {"type": "object", "properties": {"my key": {"anyOf": [{"type": "string"}]}}}
    schema = schema_object(items=schema_array(inner))
    schema["properties"]["items"]["items"]["if"] = {"type": "string"}
    with pytest.raises(ConfigError) as info:
        check_strict(schema)
    lines = str(info.value).splitlines()
    assert lines == [
        "$.properties.items.items: keyword 'if' is not supported in strict mode",
        "$.properties.items.items: object must set 'additionalProperties': false in strict mode",
        "$.properties.items.items.properties['my key']: property 'my key' is not in 'required'; "
        "strict mode needs every property required — make it nullable instead: "
        "{'anyOf': [{'...': '...'}, {'type': 'null'}]}",
    ]


@pytest.mark.parametrize("keyword", ["patternProperties", "dependentRequired", "allOf", "not"])
def test_check_strict_unsupported_keywords(keyword: str) -> None:
    schema = schema_object(a=schema_string())
    schema["properties"]["a"][keyword] = {}
    with pytest.raises(ConfigError, match=rf"\$\.properties\.a: keyword '{keyword}'"):
        check_strict(schema)


def test_check_strict_other_rules() -> None:
    with pytest.raises(ConfigError, match=r"^\$: the top level must be an object"):
        check_strict({"type": "string"})
    with pytest.raises(ConfigError, match=r"\$\.required: 'ghost' is required but is not"):
        check_strict({**schema_object(), "required": ["ghost"]})
    with pytest.raises(ConfigError, match="free-form maps"):
        check_strict({**schema_object(), "additionalProperties": {"type": "string"}})
    check_strict(sentiment_schema())


# --- validation ----------------------------------------------------------------------------


def test_validate_ok_text_and_parsed() -> None:
    js = sentiment_schema()
    text = '{"sentiment": "positive", "confidence": 0.9, "items": [{"name": "x"}]}'
    result = validate_response(js, text)
    assert result == ValidationResult(True, json.loads(text), None)
    assert validate_response(js, json.loads(text)).ok
    assert validate_response(js, text.encode()).ok
    assert validate_response(js, f"```json\n{text}\n```").ok


def test_validate_invalid_json() -> None:
    result = validate_response(sentiment_schema(), '{"sentiment": "positive",')
    assert not result.ok and result.value is None
    assert result.error is not None
    assert result.error.startswith("answer is not valid JSON: ")
    assert "at line 1 column" in result.error
    assert validate_response(sentiment_schema(), "").error.startswith("answer is not valid JSON")  # type: ignore[union-attr]
    assert validate_response(sentiment_schema(), None).error == "answer is empty (no content)"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"confidence": 0.5, "items": []}, "field 'sentiment' is required but missing"),
        (
            {"sentiment": "positive", "confidence": "high", "items": []},
            "field 'confidence': 'high' is not of type 'number'",
        ),
        (
            {"sentiment": "meh", "confidence": 0.5, "items": []},
            "field 'sentiment': 'meh' is not one of ['positive', 'negative']",
        ),
        (
            {"sentiment": "positive", "confidence": 0.5, "items": [{"name": "a"}, {}, {"name": 3}]},
            "field 'items[1].name' is required but missing",
        ),
        (
            {"sentiment": "positive", "confidence": 0.5, "items": [{"name": 3}]},
            "field 'items[0].name': 3 is not of type 'string'",
        ),
        (
            {"sentiment": "positive", "confidence": 2, "items": []},
            "field 'confidence': 2 is greater than the maximum of 1",
        ),
        (
            {"sentiment": "positive", "confidence": 0.5, "items": [], "extra": 1},
            "unexpected field 'extra': the schema allows no other properties",
        ),
        (
            {"sentiment": "positive", "confidence": 0.5, "items": [{"name": "a", "x": 1}]},
            "unexpected field 'items[0].x': the schema allows no other properties",
        ),
        ([1, 2], "answer: [1, 2] is not of type 'object'"),
    ],
)
def test_validate_errors(answer: Any, error: str) -> None:
    js = sentiment_schema()
    assert validate_response(js, answer) == ValidationResult(False, None, error)
    assert validate_response(js, orjson.dumps(answer).decode()).error == error


def test_validate_long_messages_are_truncated() -> None:
    result = validate_response(
        sentiment_schema(), {"sentiment": "x" * 1000, "confidence": 0, "items": []}
    )
    assert result.error is not None and len(result.error) < 400 and result.error.endswith("…")


def test_validate_accepts_every_schema_form() -> None:
    answer = '{"label": "a"}'
    for form in (BARE, {"name": "n", "schema": BARE, "strict": True}, Address):
        given = answer if form is not Address else '{"city": "x", "zip": null}'
        assert validate_response(form, given).ok


def test_validator_is_compiled_once() -> None:
    js = sentiment_schema()
    assert js.validator is js.validator
    check = make_validator(js)
    assert check('{"sentiment": "negative", "confidence": 0, "items": []}').ok
    assert not check("{}").ok


def test_flatten_fields_and_json_dump() -> None:
    js = sentiment_schema()
    assert flatten_fields(js) == ["sentiment", "confidence", "items"]
    assert flatten_fields(js.to_openai()) == ["sentiment", "confidence", "items"]
    assert flatten_fields(Person)[:2] == ["name", "age"]
    text = json_dump(js)
    assert json.loads(text) == js.schema
    assert text.startswith('{\n  "type": "object"')
    assert json.loads(json_dump(BARE)) == BARE


# --- property: generated values fit generated schemas -------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
BOUND = st.integers(-1000, 1000)


def _ordered(pair: tuple[int | None, int | None]) -> tuple[int | None, int | None]:
    low, high = pair
    return (high, low) if low is not None and high is not None and low > high else pair


def _bounds() -> st.SearchStrategy[tuple[int | None, int | None]]:
    return st.tuples(st.none() | BOUND, st.none() | BOUND).map(_ordered)


LEAVES = st.one_of(
    st.just(schema_string()),
    st.just(schema_boolean("a flag")),
    _bounds().map(lambda b: schema_integer(minimum=b[0], maximum=b[1])),
    _bounds().map(lambda b: schema_number("x", minimum=b[0], maximum=b[1])),
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4, unique=True).map(schema_enum),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    arrays = st.tuples(children, st.integers(0, 2), st.integers(0, 3)).map(
        lambda t: schema_array(t[0], min_items=t[1], max_items=t[1] + t[2])
    )
    objects = st.dictionaries(NAMES, children, max_size=4).map(
        lambda props: schema_object(properties=props)
    )
    return arrays | objects


SCHEMAS = st.recursive(LEAVES, _extend, max_leaves=10)


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = schema["type"]
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "string":
        return st.text()
    if kind == "boolean":
        return st.booleans()
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "integer":
        return st.integers(-(2**53) if low is None else low, 2**53 if high is None else high)
    if kind == "number":
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "array":
        return st.lists(
            _values(schema["items"]), min_size=schema["minItems"], max_size=schema["maxItems"]
        )
    return st.fixed_dictionaries({k: _values(v) for k, v in schema["properties"].items()})


@settings(max_examples=150, deadline=None)
@given(st.data(), SCHEMAS)
def test_generated_values_validate(data: st.DataObject, field: dict[str, Any]) -> None:
    js = create_json_schema("generated", schema_object(root=field))
    value = data.draw(_values(js.schema))
    text = orjson.dumps(value).decode()
    result = validate_response(js, text)
    assert result.ok, result.error
    assert result.value == value
    assert js.validate(value).ok
