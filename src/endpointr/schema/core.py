"""``JsonSchema``: naming, checking, rendering per provider, and validating answers."""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from ..errors import ConfigError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator
    from pydantic import BaseModel
from ._tree import (
    _collect_issues,
    _is_model_class,
    _is_object,
    _json_path,
    _kind,
    _model_schema,
    _relax_for_anthropic,
)

M = TypeVar("M", bound="BaseModel")


_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


_MAX_MESSAGE = 300


_ACCEPTED = (
    "a schema must be a JsonSchema, a dict (a JSON schema {'type': 'object', ...}, an OpenAI "
    "json_schema wrapper {'name', 'schema', 'strict'} or a response_format "
    "{'type': 'json_schema', 'json_schema': {...}}), a pydantic BaseModel subclass, "
    "or the path of a .json file"
)


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

        >>> from endpointr.schema import schema_enum, schema_integer, schema_object, schema_string
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


def create_json_schema(
    name: str,
    schema: Mapping[str, Any] | type[BaseModel],
    *,
    strict: bool = True,
    description: str | None = None,
) -> JsonSchema:
    """Name and check ``schema`` (a dict whose top level is an object, or a pydantic model).

    >>> from endpointr.schema import schema_enum, schema_integer, schema_object, schema_string
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

    >>> from endpointr.schema import schema_enum, schema_integer, schema_object, schema_string
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
