"""What the chat endpoints of every provider share: their keywords, checks and answers.

A chat endpoint sends one row per request. Its subclasses differ in the wire format
(:meth:`build_request`, :meth:`parse_values`) and in the defaults they declare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import pyarrow as pa

from ..errors import RequestError
from ..schema import JsonSchema, as_json_schema, parse_model
from ..types import HttpResponse
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
}


@dataclass
class ChatEndpoint(Endpoint):
    """Completions, one row per request, optionally validated against a JSON schema.

    Subclasses set ``defaults`` (with the model and URL), ``route`` (the path below a base
    URL), ``max_temperature``, ``stop_name`` and ``usage_names``. Raises
    :class:`~endpointr.errors.ConfigError` for a setting out of range.
    """

    command: ClassVar[str] = "complete"
    option_help: ClassVar[Mapping[str, str]] = CHAT_OPTION_HELP
    route: ClassVar[str]
    max_temperature: ClassVar[float]
    stop_name: ClassVar[str]
    usage_names: ClassVar[tuple[str, ...]]

    url: str
    model: str
    system_prompt: str | None = None
    temperature: float | None = 0
    max_tokens: int = 500
    schema: JsonSchema | None = None
    model_class: type | None = field(default=None, repr=False, compare=False)
    fields: FieldColumns = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
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
        )

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

    def manifest_fields(self) -> dict[str, Any]:
        return {"model": self.model}

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
        }
