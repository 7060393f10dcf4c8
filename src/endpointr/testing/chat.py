"""The reply of the fake chat model, shared by the OpenAI and Anthropic routes.

Without an output format the reply is ``"echo: " + prompt``. With a JSON schema (in
either JSON mode) it is a JSON object filling the schema (see :mod:`.schema`); in a JSON
mode without a schema it is a small object holding the prompt. Markers in the prompt
change the reply:

``<<refusal>>``      the model refuses
``<<null_content>>`` no content at all
``<<invalid_json>>`` (JSON modes) content that is not valid JSON
``<<schema_break>>`` (schema mode) valid JSON that does not fit the schema
``<<length>>``       content cut in half, stopped by the token limit
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .answers import count_tokens
from .schema import break_schema, fill_schema

__all__ = ["REFUSAL", "Reply", "compose", "message_text"]

REFUSAL = "I'm sorry, I can't help with that."
_JSON_MODES = ("json_schema", "json_object")


@dataclass(frozen=True, slots=True)
class Reply:
    """The model's answer: ``content`` (``None`` for none), ``refusal`` text, and why it
    stopped: ``"stop"``, ``"length"`` or ``"refusal"``."""

    content: str | None
    refusal: str | None
    stop: str

    @property
    def tokens(self) -> int:
        """Completion tokens of the reply, by the fake tokenizer."""
        return count_tokens(self.content or self.refusal or "")


def message_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text blocks of a list, joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type", "text") == "text"
        ]
        return "\n".join(parts)
    return ""


def compose(prompt: str, mode: str, schema: Mapping[str, Any] | None) -> Reply:
    """The reply to ``prompt``; ``mode`` is ``"text"``, ``"json_object"`` or ``"json_schema"``."""
    if "<<refusal>>" in prompt:
        return Reply(None, REFUSAL, "refusal")
    if "<<null_content>>" in prompt:
        return Reply(None, None, "stop")
    content = _content(prompt, mode, schema)
    if "<<length>>" in prompt:
        return Reply(content[: len(content) // 2], None, "length")
    return Reply(content, None, "stop")


def _content(prompt: str, mode: str, schema: Mapping[str, Any] | None) -> str:
    if mode in _JSON_MODES and schema is not None:
        value = fill_schema(schema, prompt)
        if "<<schema_break>>" in prompt:
            value = break_schema(schema, value)
    elif mode in _JSON_MODES:
        value = {"echo": prompt, "words": count_tokens(prompt)}
    else:
        return "echo: " + prompt
    text = orjson.dumps(value).decode()
    if "<<invalid_json>>" in prompt:
        return text[: max(1, len(text) // 2)]
    return text
