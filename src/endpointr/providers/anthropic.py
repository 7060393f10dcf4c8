"""Anthropic Messages API (and servers that speak it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from ..errors import ResponseFormatError
from ..types import HttpRequest, Row
from .base import Defaults
from .chat import ChatEndpoint
from .llm import Completion, settle

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
class AnthropicMessages(ChatEndpoint):
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
    defaults: ClassVar[Defaults] = Defaults(
        "ANTHROPIC_API_KEY", timeout=60, chunk_size=1000, model="claude-haiku-4-5", url=MESSAGES_URL
    )
    route: ClassVar[str] = "/v1/messages"
    max_temperature: ClassVar[float] = 1
    stop_name: ClassVar[str] = "stop_reason"
    usage_names: ClassVar[tuple[str, ...]] = _USAGE

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

    def wire_schema(self) -> Any:
        return self.schema.to_anthropic() if self.schema is not None else None
