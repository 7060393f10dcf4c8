"""What the chat endpoints of every provider share: their keywords, checks and answers.

A chat endpoint sends one row per request. Its subclasses differ in the wire format
(:meth:`build_request`, :meth:`parse_values`) and in the defaults they declare.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self

import orjson
import pyarrow as pa

from ..errors import ConfigError, RequestError
from ..schema import JsonSchema, as_json_schema, parse_model
from ..types import HttpResponse, Row
from .base import Endpoint
from .llm import (
    Completion,
    FieldColumns,
    check_chat_settings,
    check_field_names,
    completion_columns,
    resolve_url,
    scrub_keys,
)

__all__ = ["CHAT_OPTION_HELP", "ChatEndpoint"]

CHAT_OPTION_HELP: Mapping[str, str] = {
    "model": "the model to ask",
    "system_prompt": "the system prompt of every row",
    "schema": "a JSON schema (a .json file on the command line) whose fields become columns",
    "temperature": "sampling temperature",
    "max_tokens": "the most tokens an answer may have",
    "endpoint_url": "the full URL of the route",
    "base_url": "the server's base URL instead, e.g. http://localhost:8000/v1",
    "structured_output": "how a schema is asked for: 'auto' (the provider's own form, then "
    "the next one if the server refuses it), or one form: json_schema, json_object "
    "(llama.cpp and similar servers; OpenAI format only) or prompt (the schema in the "
    "system prompt); answers are validated against the schema whatever the form",
}
# a refusal that names the structured-output request: the next form may be taken
_FORMAT_REFUSAL = re.compile(
    r"response_format|json_schema|json_object|output_config|output_format|structured", re.I
)
_REFUSAL_STATUSES = frozenset({400, 422, 500})
_INSTRUCTIONS = "Answer with one JSON object, and nothing else, that fits this JSON schema:\n"


@dataclass
class ChatEndpoint(Endpoint):
    """Completions, one row per request, optionally validated against a JSON schema.

    Subclasses set ``defaults`` (with the model and URL), ``route`` (the path below a base
    URL), ``max_temperature``, ``stop_name``, ``usage_names`` and ``output_modes``, the
    forms a schema can be asked for in, the provider's own first. ``mode`` is the form in
    use: with ``structured_output="auto"`` a server's refusal of it moves the run to the
    next (:meth:`fallback`). Raises :class:`~endpointr.errors.ConfigError` for a setting
    out of range.
    """

    command: ClassVar[str] = "complete"
    option_help: ClassVar[Mapping[str, str]] = CHAT_OPTION_HELP
    route: ClassVar[str]
    max_temperature: ClassVar[float]
    stop_name: ClassVar[str]
    usage_names: ClassVar[tuple[str, ...]]
    output_modes: ClassVar[tuple[str, ...]]

    url: str
    model: str
    system_prompt: str | None = None
    temperature: float | None = 0
    max_tokens: int = 500
    schema: JsonSchema | None = None
    model_class: type | None = field(default=None, repr=False, compare=False)
    structured_output: str = "auto"
    mode: str = ""
    fields: FieldColumns = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        choices = ("auto", *self.output_modes)
        if self.structured_output not in choices:
            raise ConfigError(
                f"structured_output must be one of {', '.join(choices)} for {self.name}, "
                f"got {self.structured_output!r}"
            )
        if not self.mode:
            auto = self.structured_output == "auto"
            self.mode = self.output_modes[0] if auto else self.structured_output
        check_chat_settings(
            self.model,
            self.system_prompt,
            self.temperature,
            self.max_tokens,
            max_temperature=self.max_temperature,
        )
        self.fields = FieldColumns(self.schema)
        check_field_names(self.fields.names, ["content", self.stop_name, *self.usage_names])

    @classmethod
    def create(
        cls,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        schema: Any = None,
        temperature: float | None = 0,
        max_tokens: int = 500,
        endpoint_url: str | None = None,
        base_url: str | None = None,
        structured_output: str = "auto",
    ) -> Self:
        default = str(cls.defaults.url)
        url = resolve_url(endpoint_url or default, base_url, default=default, path=cls.route)
        return cls(
            url,
            str(cls.defaults.model) if model is None else model,
            system_prompt,
            temperature,
            max_tokens,
            None if schema is None else as_json_schema(schema),
            model_class=schema if isinstance(schema, type) else None,
            structured_output=structured_output,
        )

    def instructions(self) -> str | None:
        """The system prompt as sent: the user's, then the schema when the form in use
        does not carry it."""
        parts = [self.system_prompt] if self.system_prompt is not None else []
        if self.schema is not None and self.mode != "json_schema":
            parts.append(_INSTRUCTIONS + orjson.dumps(self.schema.schema).decode())
        return "\n\n".join(parts) if parts else None

    def fallback(self, error: RequestError) -> tuple[Self, str] | None:
        """With ``structured_output="auto"``: the next form of asking for the schema,
        when the server refused this one."""
        if self.schema is None or self.structured_output != "auto":
            return None
        if error.status not in _REFUSAL_STATUSES or not _FORMAT_REFUSAL.search(error.message):
            return None
        at = self.output_modes.index(self.mode)
        if at + 1 >= len(self.output_modes):
            return None
        mode = self.output_modes[at + 1]
        note = (
            f"the server refused the schema as {self.mode} (HTTP {error.status}: "
            f"{error.message[:160]}); asking for it as {mode} for the rest of the run"
        )
        return replace(self, mode=mode), note

    def for_columns(self, taken: Sequence[str]) -> Self:
        check_field_names(self.fields.names, taken)
        return self

    def columns(self, values: Sequence[Any]) -> dict[str, pa.Array]:
        return completion_columns(
            values, fields=self.fields, stop_name=self.stop_name, usage_names=self.usage_names
        )

    def parse_error(self, response: HttpResponse) -> RequestError:
        return scrub_keys(super().parse_error(response))

    def one_value(self, value: Completion) -> Any:
        """The content; with a schema its validated value, or a model instance when the
        schema was a pydantic model class."""
        if self.schema is None:
            return value.content
        if self.model_class is not None:
            return parse_model(self.model_class, value.parsed)
        return value.parsed

    def to_cache(self, value: Completion) -> bytes:
        return orjson.dumps(
            {
                "content": value.content,
                "stop": value.stop,
                "usage": dict(value.usage),
                "parsed": value.parsed,
            }
        )

    def from_cache(self, data: bytes) -> Completion:
        return Completion(**orjson.loads(data))

    def manifest_fields(self) -> dict[str, Any]:
        shown = {"structured_output": self.mode} if self.schema is not None else {}
        return {"model": self.model, **shown}

    def asked(self) -> dict[str, Any]:
        return {"model": self.model}

    def token_cost(self, rows: Sequence[Row], count: Callable[[str], int]) -> int:
        system = self.instructions()
        return (count(system) if system else 0) + sum(count(row.text) for row in rows)

    def output_allowance(self) -> int:
        return self.max_tokens

    def wire_schema(self) -> Any:
        """The schema as this provider's request carries it (for the fingerprint)."""
        return None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "url": self.url,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "schema": self.wire_schema() if self.schema is not None else None,
            "structured_output": self.structured_output,
        }
