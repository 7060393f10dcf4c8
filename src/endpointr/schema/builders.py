"""Builders for schema dicts, with EndpointR's names: ``schema_object``, ``schema_string``, ..."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    pass
from ._tree import _is_model_class, _kind, _model_schema
from .core import JsonSchema


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
