"""JSON schemas for structured outputs: build them, send them, check each answer against them.

A schema is a plain ``dict`` while it is built (``schema_object(...)`` and friends) and a
:class:`JsonSchema` once it is named and checked (``create_json_schema`` or the catch-all
:func:`as_json_schema`). A ``JsonSchema`` renders OpenAI's ``response_format`` and
Anthropic's ``output_config`` and validates answers with a compiled, cached validator.

>>> js = create_json_schema("review", schema_object(sentiment=schema_enum(["pos", "neg"])))
>>> validate_response(js, '{"sentiment": "pos"}')
ValidationResult(ok=True, value={'sentiment': 'pos'}, error=None)
"""

from __future__ import annotations

import copy
import enum
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from .errors import ConfigError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator
    from pydantic import BaseModel

__all__ = [
    "JsonSchema",
    "ValidationResult",
    "as_json_schema",
    "check_strict",
    "create_json_schema",
    "flatten_fields",
    "json_dump",
    "make_validator",
    "parse_model",
    "schema_array",
    "schema_boolean",
    "schema_enum",
    "schema_integer",
    "schema_number",
    "schema_object",
    "schema_string",
    "validate_response",
]

M = TypeVar("M", bound="BaseModel")

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_MESSAGE = 300
_ACCEPTED = (
    "a schema must be a JsonSchema, a dict (a JSON schema {'type': 'object', ...}, an OpenAI "
    "json_schema wrapper {'name', 'schema', 'strict'} or a response_format "
    "{'type': 'json_schema', 'json_schema': {...}}), a pydantic BaseModel subclass, "
    "or the path of a .json file"
)
# fmt: off
_STRICT_UNSUPPORTED = frozenset((
    "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems",
))
_ANTHROPIC_UNSUPPORTED = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties",
)
_MAP_KEYS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_ONE_KEYS = (
    "items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties", "additionalItems",
)
# fmt: on


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The verdict on one answer: ``value`` is the parsed answer when ``ok``, else ``error``."""

    ok: bool
    value: Any | None = None
    error: str | None = None


@dataclass(frozen=True)
class JsonSchema:
    """A named, checked structured-output schema. Build it with :func:`create_json_schema`.

    Construction checks the name, that the top level is an object, that ``schema`` is a
    valid Draft 2020-12 schema and, when ``strict``, :func:`check_strict`. Do not mutate
    ``schema``: renderings and the compiled validator are cached.
    """

    name: str
    schema: dict[str, Any]
    strict: bool = True
    description: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(
                f"schema name {self.name!r} is invalid: OpenAI requires 1-64 letters, digits, "
                "'_' or '-' (^[a-zA-Z0-9_-]{1,64}$)"
            )
        if not isinstance(self.schema, dict) or not _is_object(self.schema):
            got = self.schema.get("type") if isinstance(self.schema, dict) else self.schema
            raise ConfigError(
                "the top level of a structured-output schema must be an object "
                f"({{'type': 'object', ...}}), got {got!r}; wrap the field in schema_object()"
            )
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as e:
            path = _json_path(e.absolute_path)
            raise ConfigError(f"not a valid JSON schema at {path}: {e.message}") from None
        if self.strict:
            try:
                check_strict(self.schema)
            except ConfigError as e:
                raise ConfigError(
                    f"{e}\n(to send this schema without strict mode, use "
                    "create_json_schema(name, schema, strict=False))"
                ) from None

    def __hash__(self) -> int:
        return hash((self.name, orjson.dumps(self.schema), self.strict, self.description))

    @functools.cached_property
    def validator(self) -> Validator:
        """The compiled Draft 2020-12 validator, built once per schema."""
        return Draft202012Validator(self.schema)

    def validate(self, content: Any) -> ValidationResult:
        """Same as ``validate_response(self, content)``."""
        return _validate(self.validator, content)

    def to_openai(self) -> dict[str, Any]:
        """The chat-completions ``response_format`` value.

        >>> create_json_schema("r", schema_object()).to_openai()["json_schema"]["strict"]
        True
        """
        spec: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            spec["description"] = self.description
        spec.update(schema=self.schema, strict=self.strict)
        return {"type": "json_schema", "json_schema": spec}

    def to_anthropic(self) -> dict[str, Any]:
        """The messages ``output_config`` value.

        Constraints Anthropic rejects (``minimum``, ``maxLength``, ``maxItems``, ``minItems``
        above 1 ...) move into the field's description; answers are still validated
        against the full schema.
        """
        return {"format": {"type": "json_schema", "schema": self._anthropic_schema}}

    @functools.cached_property
    def _anthropic_schema(self) -> dict[str, Any]:
        schema = copy.deepcopy(self.schema)
        _relax_for_anthropic(schema)
        return schema


def _with(kind: str, description: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if description is not None:
        out["description"] = description
    out.update((k, v) for k, v in extra.items() if v is not None)
    return out


def _check_range(
    low_name: str, low: Any, high_name: str, high: Any, kinds: tuple[type, ...] = (int, float)
) -> None:
    for label, value in ((low_name, low), (high_name, high)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise ConfigError(f"{label} must be a number, got {value!r}")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{low_name} ({low}) is greater than {high_name} ({high})")


def schema_string(description: str | None = None) -> dict[str, Any]:
    """A string field: ``schema_string("city")`` -> ``{"type": "string", "description": ...}``."""
    return _with("string", description)


def schema_number(
    description: str | None = None, *, minimum: float | None = None, maximum: float | None = None
) -> dict[str, Any]:
    """A number field. ``schema_number(minimum=0)`` -> ``{'type': 'number', 'minimum': 0}``."""
    _check_range("minimum", minimum, "maximum", maximum)
    return _with("number", description, minimum=minimum, maximum=maximum)


def schema_integer(
    description: str | None = None, *, minimum: int | None = None, maximum: int | None = None
) -> dict[str, Any]:
    """An integer field. ``schema_integer(maximum=5)`` -> ``{'type': 'integer', 'maximum': 5}``."""
    _check_range("minimum", minimum, "maximum", maximum)
    return _with("integer", description, minimum=minimum, maximum=maximum)


def schema_boolean(description: str | None = None) -> dict[str, Any]:
    """A boolean field. ``schema_boolean()`` -> ``{'type': 'boolean'}``."""
    return _with("boolean", description)


def _json_kind(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    raise ConfigError(f"enum values must be strings, integers, numbers or booleans; got {value!r}")


def schema_enum(
    values: Iterable[Any] | type[enum.Enum],
    description: str | None = None,
    *,
    type: str | None = None,
) -> dict[str, Any]:
    """A field restricted to ``values`` (a list or an ``Enum`` class); ``type`` is inferred.

    >>> schema_enum(["pos", "neg"])
    {'type': 'string', 'enum': ['pos', 'neg']}
    """
    if isinstance(values, enum.EnumMeta):
        members: list[enum.Enum] = list(values)
        values = [member.value for member in members]
    items = list(values)
    if not items:
        raise ConfigError("schema_enum needs at least one value")
    if len({(v.__class__, v) for v in items}) != len(items):
        raise ConfigError(f"schema_enum values repeat: {items!r}")
    kinds = {_json_kind(v) for v in items}
    if len(kinds) > 1 and kinds != {"integer", "number"}:
        raise ConfigError(f"enum values mix types ({', '.join(sorted(kinds))}); use one type")
    inferred = "number" if len(kinds) > 1 else kinds.pop()
    if type is not None and type != inferred and (type, inferred) != ("number", "integer"):
        raise ConfigError(f"enum type {type!r} does not fit the values, which are {inferred}")
    return _with(type or inferred, description, enum=items)


def schema_array(
    items: Any,
    description: str | None = None,
    *,
    min_items: int | None = None,
    max_items: int | None = None,
) -> dict[str, Any]:
    """A list whose elements match ``items`` (a schema dict or pydantic model class).

    >>> schema_array(schema_string(), max_items=3)
    {'type': 'array', 'items': {'type': 'string'}, 'maxItems': 3}
    """
    element = _property_schema("items", items)
    _check_range("min_items", min_items, "max_items", max_items, (int,))
    if min_items is not None and min_items < 0:
        raise ConfigError(f"min_items must be >= 0, got {min_items}")
    return _with("array", description, items=element, minItems=min_items, maxItems=max_items)


def schema_object(
    description: str | None = None,
    *,
    required: Iterable[str] | None = None,
    additional_properties: bool | dict[str, Any] = False,
    properties: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An object with the given properties (keyword arguments, or ``properties`` for names
    such as ``description`` or ``required``). ``required=None`` requires all of them.

    >>> schema_object(age=schema_integer())
    {'type': 'object', 'properties': {'age': {'type': 'integer'}}, 'required': ['age'], \
'additionalProperties': False}
    """
    merged = {**(properties or {}), **fields}
    props = {k: _property_schema(f"property {k!r}", v) for k, v in merged.items()}
    if isinstance(required, str):
        required = [required]
    names = list(props) if required is None else list(required)
    unknown = [n for n in names if n not in props]
    if unknown:
        raise ConfigError(
            f"required names not among the properties: {', '.join(map(repr, unknown))} "
            f"(properties: {', '.join(props) or 'none'})"
        )
    return _with(
        "object",
        description,
        properties=props,
        required=names,
        additionalProperties=additional_properties,
    )


def _property_schema(label: str, value: Any) -> dict[str, Any]:
    if isinstance(value, JsonSchema):
        return value.schema
    if isinstance(value, Mapping):
        return dict(value)
    if _is_model_class(value):
        return _model_schema(value, nested=True)
    raise ConfigError(
        f"{label} must be a schema dict (e.g. schema_string()) or a pydantic model class, "
        f"got {_kind(value)}"
    )


def _is_model_class(obj: object) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, type) and issubclass(obj, pydantic.BaseModel)


def _kind(obj: object) -> str:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        name = type(obj).__name__
        return f"an instance of {name} (pass the class {name}, not an instance)"
    return type(obj).__name__


class _CycleError(Exception):
    pass


def _model_schema(model: type[BaseModel], *, nested: bool = False) -> dict[str, Any]:
    """The strict JSON schema of a pydantic model; ``$ref``s are inlined unless recursive."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})
    out = copy.deepcopy(raw)
    try:
        _inline(out, defs, ())
    except _CycleError:
        if nested:
            raise ConfigError(
                f"{model.__name__} is recursive and cannot be nested in another schema; "
                "pass it to as_json_schema() directly"
            ) from None
        ref = raw.pop("$ref", None)
        out = {**copy.deepcopy(defs[ref.rsplit("/", 1)[-1]]), **raw} if ref else raw
        out["$defs"] = defs
    _strictify(out)
    return out


def _inline(node: dict[str, Any], defs: dict[str, Any], chain: tuple[str, ...]) -> None:
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in chain or name not in defs:
            raise _CycleError(name)
        del node["$ref"]
        merged = {**copy.deepcopy(defs[name]), **node}
        node.clear()
        node.update(merged)
        chain = (*chain, name)
    for child, _ in _children(node, "$"):
        _inline(child, defs, chain)


def _strictify(node: dict[str, Any]) -> None:
    node.pop("title", None)
    node.pop("default", None)
    if "oneOf" in node and "discriminator" in node:
        node["anyOf"] = node.pop("oneOf")
        del node["discriminator"]
    if _is_object(node):
        node.setdefault("additionalProperties", False)
        if "properties" in node:
            node["required"] = list(node["properties"])
    for child, _ in _children(node, "$"):
        _strictify(child)


def _relax_for_anthropic(node: dict[str, Any]) -> None:
    moved = [f"{k}: {node.pop(k)}" for k in _ANTHROPIC_UNSUPPORTED if k in node]
    min_items = node.get("minItems")
    if isinstance(min_items, int) and min_items > 1:
        moved.append(f"minItems: {node.pop('minItems')}")
    if moved:
        note = "{" + ", ".join(moved) + "}"
        node["description"] = f"{node['description']} {note}" if node.get("description") else note
    for child, _ in _children(node, "$"):
        _relax_for_anthropic(child)


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    if isinstance(kind, list):
        return "object" in kind
    return kind == "object" or (kind is None and "properties" in node)


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENT_RE.match(key) or key.startswith("$") else f"{path}[{key!r}]"


def _json_path(parts: Iterable[str | int]) -> str:
    return functools.reduce(_step, parts, "$")


def _children(node: Mapping[str, Any], path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every direct subschema of ``node`` with its JSON path."""
    for key in _MAP_KEYS:
        sub = node.get(key)
        if isinstance(sub, Mapping):
            yield from (
                (v, _step(_step(path, key), k)) for k, v in sub.items() if isinstance(v, dict)
            )
    for key in _LIST_KEYS:
        sub = node.get(key)
        if isinstance(sub, list):
            yield from ((v, f"{path}.{key}[{i}]") for i, v in enumerate(sub) if isinstance(v, dict))
    for key in _ONE_KEYS:
        if isinstance(node.get(key), dict):
            yield node[key], f"{path}.{key}"


def check_strict(schema: JsonSchema | Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` listing, by JSON path, what OpenAI strict mode rejects.

    >>> check_strict({"type": "object", "properties": {"a": {"type": "string"}}})
    Traceback (most recent call last):
    ...
    endpointr.errors.ConfigError: $: object must set 'additionalProperties': false ...
    """
    root = schema.schema if isinstance(schema, JsonSchema) else schema
    issues: list[str] = []
    if not _is_object(root):
        issues.append("$: the top level must be an object ({'type': 'object', ...})")
    _collect_issues(root, "$", issues)
    if issues:
        raise ConfigError("\n".join(issues))


def _collect_issues(node: Mapping[str, Any], path: str, issues: list[str]) -> None:
    issues.extend(
        f"{path}: keyword {kw!r} is not supported in strict mode"
        for kw in sorted(_STRICT_UNSUPPORTED.intersection(node))
    )
    if _is_object(node):
        _check_object(node, path, issues)
    for child, child_path in _children(node, path):
        _collect_issues(child, child_path, issues)


def _check_object(node: Mapping[str, Any], path: str, issues: list[str]) -> None:
    extra = node.get("additionalProperties")
    if extra is not False:
        hint = " (free-form maps such as dict[str, X] are not allowed)" if extra else ""
        issues.append(f"{path}: object must set 'additionalProperties': false in strict mode{hint}")
    props = node.get("properties") or {}
    required = node.get("required") or []
    for name, sub in props.items():
        if name not in required:
            issues.append(
                f"{_step(_step(path, 'properties'), name)}: property {name!r} is not in "
                "'required'; strict mode needs every property required — make it nullable "
                f"instead: {_nullable(sub)}"
            )
    issues.extend(
        f"{path}.required: {name!r} is required but is not a property"
        for name in required
        if name not in props
    )


def _nullable(sub: Any) -> dict[str, Any]:
    kind = sub.get("type") if isinstance(sub, Mapping) else None
    if isinstance(kind, str):
        return {"type": [kind, "null"]}
    if isinstance(kind, list):
        return {"type": [*kind, "null"] if "null" not in kind else kind}
    return {"anyOf": [{"...": "..."}, {"type": "null"}]}


def create_json_schema(
    name: str,
    schema: Mapping[str, Any] | type[BaseModel],
    *,
    strict: bool = True,
    description: str | None = None,
) -> JsonSchema:
    """Name and check ``schema`` (a dict whose top level is an object, or a pydantic model).

    >>> create_json_schema("person", schema_object(name=schema_string())).name
    'person'
    """
    if _is_model_class(schema):
        body = _model_schema(schema)  # type: ignore[arg-type]
    elif isinstance(schema, Mapping):
        body = copy.deepcopy(dict(schema))
    else:
        raise ConfigError(f"schema must be a dict or a pydantic model class, got {_kind(schema)}")
    return JsonSchema(name, body, strict, description)


def _safe_name(text: Any) -> str:
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", text)[:64] if isinstance(text, str) else ""
    return cleaned or "response"


def _unwrap(d: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None, bool, str | None]:
    """(bare schema, name, strict, description) of any accepted dict form."""
    if len(d) == 1 and isinstance(d.get("format"), Mapping):
        d = d["format"]
    if d.get("type") == "json_schema" and isinstance(d.get("json_schema"), Mapping):
        d = d["json_schema"]
    inner = d.get("schema")
    if isinstance(inner, Mapping) and d.get("type") == "json_schema":
        return inner, None, True, None
    if isinstance(inner, Mapping) and "type" not in d:
        return inner, d.get("name"), bool(d.get("strict", False)), d.get("description")
    if "type" in d or "properties" in d:
        return d, None, True, None
    raise ConfigError(f"{_ACCEPTED}; got a dict with keys {sorted(map(str, d))}")


def _load(path: str | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(path, str) and path.lstrip().startswith("{"):
        raise ConfigError("got JSON text; pass a dict (orjson.loads(text)) or a .json file path")
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise ConfigError(f"cannot read schema file {os.fspath(path)!r}: {e.strerror}") from None
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"schema file {os.fspath(path)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"schema file {os.fspath(path)!r} must hold a JSON object")
    return data


def as_json_schema(schema: Any, name: str | None = None) -> JsonSchema:
    """Coerce any accepted schema form to a :class:`JsonSchema` (``name`` overrides its name).

    Accepted: a ``JsonSchema``; a dict holding a bare schema, an OpenAI ``json_schema``
    wrapper (``strict`` defaults to False, as in OpenAI's API), a ``response_format`` or an
    Anthropic ``output_config``; a pydantic model class (made strict); a ``.json`` path.

    >>> as_json_schema({"type": "object", "properties": {}, "additionalProperties": False}).name
    'response'
    """
    if isinstance(schema, JsonSchema):
        return schema if name is None or name == schema.name else replace(schema, name=name)
    if _is_model_class(schema):
        return create_json_schema(name or _safe_name(schema.__name__), schema)
    if isinstance(schema, str | os.PathLike):
        return as_json_schema(_load(schema), name or _safe_name(Path(schema).stem))
    if isinstance(schema, Mapping):
        body, found, strict, description = _unwrap(schema)
        chosen = name or found or _safe_name(body.get("title"))
        return create_json_schema(chosen, body, strict=strict, description=description)
    raise ConfigError(f"{_ACCEPTED}; got {_kind(schema)}")


@functools.lru_cache(maxsize=128)
def _from_json_bytes(text: bytes) -> JsonSchema:
    return as_json_schema(orjson.loads(text))


@functools.lru_cache(maxsize=128)
def _from_model(model: type[BaseModel]) -> JsonSchema:
    return as_json_schema(model)


def _coerce_cached(schema: Any) -> JsonSchema:
    if isinstance(schema, JsonSchema):
        return schema
    if isinstance(schema, dict):
        try:
            return _from_json_bytes(orjson.dumps(schema))
        except TypeError:
            return as_json_schema(schema)
    return _from_model(schema) if _is_model_class(schema) else as_json_schema(schema)


def json_dump(schema: Any) -> str:
    """Pretty (2-space) JSON text of a dict as given, or of a JsonSchema's ``schema``."""
    body = schema if isinstance(schema, Mapping) else as_json_schema(schema).schema
    try:
        return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
    except TypeError as e:
        raise ConfigError(f"schema is not JSON-serialisable: {e}") from None


def flatten_fields(schema: Any) -> list[str]:
    """The top-level property names, in order: ``['sentiment', 'confidence']``."""
    if isinstance(schema, JsonSchema):
        body: Mapping[str, Any] = schema.schema
    elif isinstance(schema, Mapping):
        body = _unwrap(schema)[0]
    else:
        body = as_json_schema(schema).schema
    props = body.get("properties")
    return list(props) if isinstance(props, Mapping) else []


def make_validator(schema: Any) -> Callable[[Any], ValidationResult]:
    """A function ``content -> ValidationResult`` with the validator compiled once."""
    return as_json_schema(schema).validate


def validate_response(schema: Any, content: Any) -> ValidationResult:
    """Parse ``content`` (JSON text, or an already parsed value) and check it against
    ``schema`` (any form :func:`as_json_schema` takes). Never raises for bad content.

    >>> validate_response(schema_object(age=schema_integer()), '{"age": "x"}').error
    "field 'age': 'x' is not of type 'integer'"
    """
    return _coerce_cached(schema).validate(content)


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        return stripped[stripped.index("\n") + 1 : -3]
    return text


def _validate(validator: Validator, content: Any) -> ValidationResult:
    if content is None:
        return ValidationResult(False, None, "answer is empty (no content)")
    value = content
    if isinstance(content, str | bytes | bytearray | memoryview):
        try:
            value = orjson.loads(_strip_fence(content) if isinstance(content, str) else content)
        except orjson.JSONDecodeError as e:
            where = f"line {e.lineno} column {e.colno}"
            return ValidationResult(False, None, f"answer is not valid JSON: {e.msg} at {where}")
    try:
        error = best_match(validator.iter_errors(value))
    except Exception as e:
        return ValidationResult(False, None, f"answer could not be validated: {e}")
    if error is None:
        return ValidationResult(True, value, None)
    return ValidationResult(False, None, _describe(error))


def _field(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _describe(error: ValidationError) -> str:
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = next((n for n in error.validator_value if n not in instance), "?")
        return f"field '{_field([*path, missing])}' is required but missing"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [f"'{_field([*path, k])}'" for k in instance if k not in known]
        if extra:
            return f"unexpected field {', '.join(extra)}: the schema allows no other properties"
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return f"field '{_field(path)}': {message}" if path else f"answer: {message}"


def parse_model(model_cls: type[M], value: Any) -> M:
    """An instance of ``model_cls`` from a validated value (dict, or JSON text).

    Raises pydantic's ``ValidationError`` when ``value`` does not fit the model.
    """
    if not _is_model_class(model_cls):
        raise ConfigError(f"model_cls must be a pydantic BaseModel subclass, got {model_cls!r}")
    if isinstance(value, str | bytes | bytearray):
        return model_cls.model_validate_json(value)
    return model_cls.model_validate(value)
