"""Anthropic route: ``POST /v1/messages``, with a prompt-caching simulation.

A text block (in ``system`` or in a message) carrying ``cache_control`` is "cached":
the first time the server sees its text its tokens count as
``cache_creation_input_tokens``, afterwards as ``cache_read_input_tokens``; either way
they are left out of ``input_tokens``. ``FakeServer.reset()`` empties the cache. The three
counts add up to the request's input tokens as the server counts them for ``tpm``.

``anthropic_system="string"`` answers a ``system`` given as a list of blocks with 500,
as a LiteLLM proxy in front of a backend that takes only a string does.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .answers import count_tokens
from .chat import compose
from .providers import ANTHROPIC
from .routes_openai import last_user_text
from .routing import AnswerContext, BadRequest, Parsed, Route, dumps, parse_with
from .state import ServerState, Settings

__all__ = ["ANTHROPIC_ROUTES"]

_ids = itertools.count(1)
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "refusal": "refusal"}


@dataclass(frozen=True, slots=True)
class _MessagesRequest:
    model: str
    blocks: list[tuple[str, bool]]
    prompt: str
    schema: Mapping[str, Any] | None


def _blocks(content: Any) -> list[tuple[str, bool]]:
    if isinstance(content, str):
        return [(content, False)]
    if not isinstance(content, list):
        return []
    return [
        (str(block.get("text", "")), "cache_control" in block)
        for block in content
        if isinstance(block, dict) and block.get("type", "text") == "text"
    ]


def _schema(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    config = data.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else data.get("output_format")
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        schema = spec.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _system_refused(model: str, prompt: str) -> BadRequest:
    message = (
        "litellm.InternalServerError: AnthropicException - system: Input should be a valid "
        f"string. Received Model Group={model}\nAvailable Model Group Fallbacks=None"
    )
    body = {"error": {"message": message, "type": None, "param": None, "code": "500"}}
    return BadRequest(500, message, (prompt,), body)


def _check(data: Any, headers: Mapping[str, str]) -> list[Any]:
    if "anthropic-version" not in headers:
        raise BadRequest(400, "anthropic-version: header is required")
    if not isinstance(data, dict):
        raise BadRequest(400, "Request body is not valid JSON")
    max_tokens = data.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest(400, "max_tokens: Field required")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "messages: Field required")
    return messages


@parse_with
def _parse_messages(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    messages = _check(data, headers)
    model = str(data.get("model", "fake-claude"))
    prompt = last_user_text(messages)
    if settings.anthropic_system == "string" and isinstance(data.get("system"), list):
        raise _system_refused(model, prompt)
    blocks = _blocks(data.get("system"))
    for message in messages:
        if isinstance(message, dict):
            blocks.extend(_blocks(message.get("content")))
    tokens = sum(count_tokens(text) for text, _ in blocks)
    payload = _MessagesRequest(model, blocks, prompt, _schema(data))
    return Parsed((prompt,), 1, payload, tokens=tokens, max_output=data["max_tokens"])


def _usage(blocks: list[tuple[str, bool]], state: ServerState) -> dict[str, int]:
    usage = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    cache = state.cached_prompts
    for text, cached in blocks:
        tokens = count_tokens(text)
        if not cached:
            usage["input_tokens"] += tokens
        elif text in cache:
            usage["cache_read_input_tokens"] += tokens
        else:
            usage["cache_creation_input_tokens"] += tokens
            cache.add(text)
    return usage


def _answer_messages(parsed: Parsed, ctx: AnswerContext) -> bytes:
    request: _MessagesRequest = parsed.payload
    mode = "text" if request.schema is None else "json_schema"
    reply = compose(request.prompt, mode, request.schema)
    text = reply.content if reply.content is not None else reply.refusal
    content = [] if text is None or ctx.wrong_count else [{"type": "text", "text": text}]
    usage = _usage(request.blocks, ctx.state)
    return dumps(
        {
            "id": f"msg_{next(_ids):024x}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": _STOP_REASONS[reply.stop],
            "stop_sequence": None,
            "usage": {"output_tokens": reply.tokens, **usage},
        }
    )


ANTHROPIC_ROUTES = (Route("POST", "/v1/messages", ANTHROPIC, _parse_messages, _answer_messages),)
