"""HTTP responses of the fake server: JSON answers, provider errors and faults.

:data:`FAULT_REPLIES` maps every fault kind to how a request with that fault is answered.

Every function returns the response together with the status to record for it
(``None`` when the connection is dropped instead of answered).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .faults import Fault
from .providers import Family, format_seconds

__all__ = [
    "FAULT_REPLIES",
    "FaultContext",
    "error_response",
    "fault_response",
    "json_response",
]

_JSON = "application/json"
_HTML_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_PHRASES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_FALLBACK_BODY = b'{"error": "the fake server could not build an answer"}'

Reply = tuple[web.StreamResponse, int | None]


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """``body`` as an ``application/json`` answer."""
    return web.Response(body=body, status=status, content_type=_JSON, headers=headers), status


def _retry_after_value(value: float | str) -> str:
    return value if isinstance(value, str) else format_seconds(value)


def error_response(
    family: Family,
    status: int,
    message: str | None,
    headers: dict[str, str],
    retry_after: float | str | None = None,
    body: Any = None,
) -> Reply:
    """``status`` with ``family``'s error body for ``message`` (or ``body`` given as-is)."""
    if retry_after is not None:
        headers = {**headers, "Retry-After": _retry_after_value(retry_after)}
    if body is None:
        payload = family.error_body(status, message)
    elif isinstance(body, (str, bytes)):
        payload = body.encode() if isinstance(body, str) else body
    else:
        payload = orjson.dumps(body)
    return json_response(payload, status, headers)


@dataclass(frozen=True, slots=True)
class FaultContext:
    """What applying a request's fault may use.

    ``answer(wrong_count)`` is the reply the request gets without a replacing fault
    (its validation error, a poison error or the correct answer, with one result
    fewer if ``wrong_count``); ``real_body()`` is the correct answer's bytes (``None``
    if the request was invalid).
    """

    request: web.Request
    fault: Fault
    family: Family
    headers: dict[str, str]
    answer: Callable[[bool], Reply]
    real_body: Callable[[], bytes | None]

    def body(self) -> bytes:
        """``real_body()``, or a placeholder JSON body when there is none."""
        return self.real_body() or _FALLBACK_BODY


async def _answer(ctx: FaultContext) -> Reply:
    return ctx.answer(False)


async def _wrong_count(ctx: FaultContext) -> Reply:
    return ctx.answer(True)


async def _status(ctx: FaultContext) -> Reply:
    fault = ctx.fault
    code = fault.code or 500
    return error_response(ctx.family, code, None, ctx.headers, fault.retry_after, fault.body)


async def _html(ctx: FaultContext) -> Reply:
    code = ctx.fault.code or 502
    page = _HTML_PAGE.format(code=code, phrase=_PHRASES.get(code, "Error"))
    return web.Response(text=page, status=code, content_type="text/html"), code


async def _empty(ctx: FaultContext) -> Reply:
    return json_response(b"", 200, ctx.headers)


async def _malformed(ctx: FaultContext) -> Reply:
    body = ctx.body()
    return json_response(body[: max(1, len(body) // 2)], 200, ctx.headers)


async def _reset_before(ctx: FaultContext) -> Reply:
    _abort(ctx.request)
    return web.Response(status=500), None


async def _reset_mid(ctx: FaultContext) -> Reply:
    body = ctx.body()
    response = web.StreamResponse(status=200)
    response.content_type = _JSON
    response.content_length = len(body)
    await response.prepare(ctx.request)
    await response.write(body[: len(body) // 2])
    _abort(ctx.request)
    return response, None


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


FAULT_REPLIES: dict[str, Callable[[FaultContext], Awaitable[Reply]]] = {
    "ok": _answer,
    "status": _status,
    "delay": _answer,
    "malformed": _malformed,
    "html": _html,
    "empty": _empty,
    "wrong_count": _wrong_count,
    "reset_before": _reset_before,
    "reset_mid": _reset_mid,
}


async def fault_response(ctx: FaultContext) -> Reply:
    """The reply of ``ctx.fault`` (a kind of :data:`FAULT_KINDS`, else ``ValueError``).

    ``ok`` and ``delay`` get ``ctx.answer(False)`` and ``wrong_count`` ``ctx.answer(True)``;
    the other kinds replace the answer, ``malformed`` and ``reset_mid`` with part of
    ``ctx.body()``.
    """
    reply = FAULT_REPLIES.get(ctx.fault.kind)
    if reply is None:
        raise ValueError(f"unknown fault kind {ctx.fault.kind!r}")
    return await reply(ctx)
