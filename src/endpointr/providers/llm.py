"""What chat endpoints share: settings checks, answer checks and the output columns.

A chat endpoint reads each answer into a :class:`Completion`. :func:`settle` turns it
into the row's value, or into an error :class:`~endpointr.types.Result` (a refusal, no
content, an answer that breaks the schema) that still carries the completion, so the
raw ``content``, the stop reason and the token usage stay in the output of error rows.

Schema fields become typed columns: ``string``, ``integer`` (int64), ``number``
(float64) and ``boolean`` fields, also nullable ones (``["string", "null"]`` or
``anyOf`` with ``null``) and enums; any other field (objects, arrays, unions) is a
column of JSON text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pyarrow as pa

from ..config import check_int, check_url
from ..errors import ConfigError, RequestError
from ..schema import JsonSchema
from ..types import Result

__all__ = [
    "Completion",
    "FieldColumns",
    "check_chat_settings",
    "check_field_names",
    "completion_columns",
    "resolve_url",
    "scrub_keys",
    "settle",
]

_ARROW = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64()}
_ARROW.update(boolean=pa.bool_(), json=pa.string())
_INT64 = (-(2**63), 2**63 - 1)
_CUT_OFF = ("length", "max_tokens")
_RESULT_COLUMNS = frozenset({".error", ".error_msg", ".status", ".attempts"})
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*-]{6,}")


@dataclass(frozen=True, slots=True)
class Completion:
    """One chat answer: ``content`` (``None`` for none), why it stopped, token usage,
    and ``parsed``, the validated JSON value of a schema run."""

    content: str | None
    stop: str | None
    usage: Mapping[str, Any]
    parsed: Any = None


def settle(
    completion: Completion, *, refusal: str | None, schema: JsonSchema | None
) -> Completion | Result:
    """The row's value, or an error result (holding ``completion``) that says why not.

    A refusal gives ``"refused: ..."``; no content gives ``"no content ..."``; with a
    schema, content that is not JSON or breaks the schema gives the validator's message,
    which names the field.
    """
    if refusal is not None:
        return _row_error(completion, f"refused: {refusal}" if refusal else "refused")
    if completion.content is None:
        return _row_error(completion, f"no content in the answer (stop reason {completion.stop!r})")
    if schema is None:
        return completion
    verdict = schema.validate(completion.content)
    if verdict.ok:
        return replace(completion, parsed=verdict.value)
    message = verdict.error or "answer does not fit the schema"
    if completion.stop in _CUT_OFF:
        message += f" (the answer was cut off at max_tokens: stop reason {completion.stop!r})"
    return _row_error(completion, message)


def _row_error(completion: Completion, message: str) -> Result:
    return Result(id=None, value=completion, error=True, error_msg=message)


def _nullable_branch(sub: Mapping[str, Any]) -> Any:
    branches = sub.get("anyOf") or sub.get("oneOf")
    if not isinstance(branches, list):
        return None
    rest = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
    return rest[0] if len(rest) == 1 else None


def _enum_kind(values: list[Any]) -> str:
    for kind, test in (
        ("boolean", lambda v: isinstance(v, bool)),
        ("string", lambda v: isinstance(v, str)),
        ("integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
        ("number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    ):
        if values and all(test(v) or v is None for v in values):
            return kind
    return "json"


def field_kind(sub: Any) -> str:
    """The column kind of a property schema: a JSON scalar type name, or ``"json"``."""
    if not isinstance(sub, Mapping):
        return "json"
    kind = sub.get("type")
    if isinstance(kind, list):
        rest = [k for k in kind if k != "null"]
        kind = rest[0] if len(rest) == 1 else None
    if kind is None:
        branch = _nullable_branch(sub)
        if branch is not None:
            return field_kind(branch)
        if isinstance(sub.get("enum"), list):
            return _enum_kind(sub["enum"])
    return kind if isinstance(kind, str) and kind in _ARROW else "json"


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json":
        return orjson.dumps(value).decode()
    if kind == "string":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if isinstance(value, bool) != (kind == "boolean") or not isinstance(value, int | float):
        return None
    if kind == "integer":
        number = int(value)
        return number if _INT64[0] <= number <= _INT64[1] and number == value else None
    return float(value) if kind == "number" else value


class FieldColumns:
    """The top-level fields of a schema as typed output columns."""

    def __init__(self, schema: JsonSchema | None) -> None:
        props = schema.schema.get("properties") if schema is not None else None
        props = props if isinstance(props, Mapping) else {}
        self.kinds: dict[str, str] = {name: field_kind(sub) for name, sub in props.items()}

    @property
    def names(self) -> list[str]:
        return list(self.kinds)

    def arrays(self, parsed: Sequence[Any]) -> dict[str, pa.Array]:
        """One column per field; ``None`` where a row has no parsed answer or no such field."""
        out = {}
        for name, kind in self.kinds.items():
            values = [p.get(name) if isinstance(p, Mapping) else None for p in parsed]
            out[name] = pa.array([_convert(kind, v) for v in values], type=_ARROW[kind])
        return out


def completion_columns(
    values: Sequence[Any], *, fields: FieldColumns, stop_name: str, usage_names: Sequence[str]
) -> dict[str, pa.Array]:
    """``content``, the schema fields, the stop reason and the usage columns of ``values``
    (completions, ``None`` for rows that got no answer)."""
    done: list[Completion | None] = [v if isinstance(v, Completion) else None for v in values]
    columns: dict[str, pa.Array] = {
        "content": pa.array([c.content if c else None for c in done], type=pa.string())
    }
    columns.update(fields.arrays([c.parsed if c else None for c in done]))
    columns[stop_name] = pa.array([c.stop if c else None for c in done], type=pa.string())
    for name in usage_names:
        counts = [c.usage.get(name) if c else None for c in done]
        columns[name] = pa.array([_convert("integer", n) for n in counts], type=pa.int64())
    return columns


def check_field_names(fields: Sequence[str], taken: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when a schema field would clash with an output column."""
    clash = [name for name in fields if name in set(taken) | _RESULT_COLUMNS]
    if clash:
        raise ConfigError(
            f"schema field {clash[0]!r} clashes with an output column of the same name "
            f"({', '.join(sorted(set(taken) | _RESULT_COLUMNS))}); rename the field"
        )


def check_chat_settings(
    model: Any, system_prompt: Any, temperature: Any, max_tokens: Any, *, max_temperature: float
) -> None:
    """Raise :class:`ConfigError` naming the first chat setting out of range."""
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a non-empty string, got {model!r}")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise ConfigError(f"system_prompt must be a string or None, got {type(system_prompt)}")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= max_temperature
    ):
        raise ConfigError(
            f"temperature must be a number from 0 to {max_temperature:g} (or None to send "
            f"none), got {temperature!r}"
        )
    check_int(max_tokens, "max_tokens")


def resolve_url(endpoint_url: str, base_url: str | None, *, default: str, path: str) -> str:
    """The full URL of the route: ``endpoint_url``, or ``base_url`` + ``path``.

    A ``base_url`` ending in ``/v1`` and a ``path`` starting with ``/v1/`` share the
    ``/v1`` once. Giving ``base_url`` together with an ``endpoint_url`` other than ``default`` is a
    :class:`ConfigError`, as is a URL that is not http(s).
    """
    if base_url is None:
        return check_url(endpoint_url)
    if endpoint_url != default:
        raise ConfigError("give endpoint_url or base_url, not both")
    base = check_url(base_url, "base_url").rstrip("/")
    if base.endswith("/v1") and path.startswith("/v1/"):
        path = path[3:]
    return check_url(base + path, "base_url")


def scrub_keys(error: RequestError) -> RequestError:
    """``error`` with key-like tokens (``sk-...``, as a 401 answer may echo them) masked."""
    masked = _KEY_LIKE.sub("sk-***", error.message)
    if masked != error.message:
        error.message = masked
        error.args = (masked,)
    return error
