"""Anthropic Messages API (and servers that speak it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import pyarrow as pa

from ..errors import RequestError, ResponseFormatError
from ..schema import JsonSchema
from ..types import HttpRequest, HttpResponse, Row
from .base import Endpoint
from .llm import (
    Completion,
    FieldColumns,
    check_chat_settings,
    check_field_names,
    completion_columns,
    scrub_keys,
    settle,
)

__all__ = ["API_VERSION", "MESSAGES_URL", "AnthropicMessages"]

MESSAGES_URL = "https://api.anthropic.com/v1/messages"
API_VERSION = "2023-06-01"
_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "anthropic-version": API_VERSION,
}
_USAGE = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


@dataclass
class AnthropicMessages(Endpoint):
    """Messages, one row per request; the key goes in ``x-api-key``.

    Sends ``{"model", "max_tokens", "messages": [user], "temperature", "system"?,
    "output_config"?}``. The system prompt is one text block marked
    ``cache_control: {"type": "ephemeral"}``, so rows that share it read it from
    Anthropic's prompt cache. Columns: ``content`` (the text blocks joined), the schema's
    fields, ``stop_reason``, ``input_tokens``, ``output_tokens``,
    ``cache_read_input_tokens``, ``cache_creation_input_tokens``. ``stop_reason``
    ``"refusal"``, no text or an answer that breaks the schema is an error row that
    keeps content and usage. Raises :class:`ConfigError` for a setting out of range.
    """

    name: ClassVar[str] = "anthropic.messages"
    url: str
    model: str
    system_prompt: str | None = None
    temperature: float | None = 0
    max_tokens: int = 500
    schema: JsonSchema | None = None
    fields: FieldColumns = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_chat_settings(
            self.model, self.system_prompt, self.temperature, self.max_tokens, max_temperature=1
        )
        self.fields = FieldColumns(self.schema)
        check_field_names(self.fields.names, ["content", "stop_reason", *_USAGE])

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        (row,) = rows
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": [{"role": "user", "content": row.text}],
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.system_prompt is not None:
            body["system"] = [
                {
                    "type": "text",
                    "text": self.system_prompt,
                    "cache_control": {"type": "ephemeral"},
                }
            ]
        if self.schema is not None:
            body["output_config"] = self.schema.to_anthropic()
        return HttpRequest("POST", self.url, orjson.dumps(body), dict(_HEADERS))

    def parse_values(self, rows: Sequence[Row], body: Any) -> list[Any]:
        blocks = body.get("content") if isinstance(body, dict) else None
        if not isinstance(blocks, list):
            raise ResponseFormatError("the answer has no 'content' list")
        texts = [
            b["text"]
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        usage = body.get("usage")
        stop = body.get("stop_reason")
        completion = Completion(
            "".join(texts) if texts else None, stop, usage if isinstance(usage, dict) else {}
        )
        refusal = (completion.content or "") if stop == "refusal" else None
        return [settle(completion, refusal=refusal, schema=self.schema)]

    def columns(self, values: Sequence[Any]) -> dict[str, pa.Array]:
        return completion_columns(
            values, fields=self.fields, stop_name="stop_reason", usage_names=_USAGE
        )

    def parse_error(self, response: HttpResponse) -> RequestError:
        return scrub_keys(super().parse_error(response))

    def fingerprint(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "url": self.url,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "schema": self.schema.to_anthropic() if self.schema is not None else None,
        }
