"""Anthropic Messages API (and servers that speak it)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

import orjson

from ..errors import RequestError, ResponseFormatError
from ..types import HttpRequest, Row
from .base import Defaults, estimate_tokens
from .chat import CHAT_OPTION_HELP, ChatEndpoint
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
# below this many tokens Anthropic caches no prompt, so blocks with cache_control buy nothing
_CACHEABLE_TOKENS = 1024
_SYSTEM_REFUSAL = re.compile(r"\bsystem\b", re.I)


@dataclass
class AnthropicMessages(ChatEndpoint):
    """Messages, one row per request; the key goes in ``x-api-key``.

    Sends ``{"model", "max_tokens", "messages": [user], "temperature", "system"?,
    "output_config"?}``. A system prompt long enough for Anthropic's prompt cache (or any,
    with ``cache_system_prompt=True``) goes as one text block marked ``cache_control:
    {"type": "ephemeral"}``, so rows that share it read it from the cache; a shorter one
    goes as a plain string, which every server speaking this format takes. Columns:
    ``content`` (the text blocks joined), the schema's fields, ``stop_reason``,
    ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``. ``stop_reason``
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
    output_modes: ClassVar[tuple[str, ...]] = ("json_schema", "prompt")
    option_help: ClassVar[Mapping[str, str]] = {
        **CHAT_OPTION_HELP,
        "cache_system_prompt": "send the system prompt as a cached block (default: when it is "
        "long enough to be cached, about 1,024 tokens)",
    }

    cache_system_prompt: bool | None = None

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
        cache_system_prompt: bool | None = None,
    ) -> Self:
        chat = super().create(
            model=model,
            system_prompt=system_prompt,
            schema=schema,
            temperature=temperature,
            max_tokens=max_tokens,
            endpoint_url=endpoint_url,
            base_url=base_url,
            structured_output=structured_output,
        )
        return replace(chat, cache_system_prompt=cache_system_prompt)

    def cached_system(self) -> bool:
        """Whether the system prompt goes as a block marked for the prompt cache."""
        if self.cache_system_prompt is not None:
            return self.cache_system_prompt
        system = self.instructions()
        return system is not None and estimate_tokens(system) >= _CACHEABLE_TOKENS

    def fallback(self, error: RequestError) -> tuple[Self, str] | None:
        """A server that refuses the system prompt as a list of blocks (some proxies in
        front of other models) gets it as a plain string, unless blocks were asked for."""
        refused_blocks = (
            self.cache_system_prompt is None
            and self.cached_system()
            and error.status in (400, 422, 500)
            and _SYSTEM_REFUSAL.search(error.message) is not None
        )
        if refused_blocks:
            note = (
                f"the server refused the system prompt as cached blocks (HTTP {error.status}: "
                f"{error.message[:160]}); sending it as a string for the rest of the run"
            )
            return replace(self, cache_system_prompt=False), note
        return super().fallback(error)

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
        system = self.instructions()
        if system is not None and self.cached_system():
            body["system"] = [
                {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
            ]
        elif system is not None:
            body["system"] = system
        if self.schema is not None and self.mode == "json_schema":
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
