"""HTTP responses of the fake server: JSON answers, provider errors and faults.

Every function returns the response together with the status to record for it
(``None`` when the connection is dropped instead of answered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from .faults import Fault
from .providers import Family, format_seconds

__all__ = ["error_response", "fault_response", "json_response"]

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


def _html(code: int) -> Reply:
    phrase = _PHRASES.get(code, "Error")
    page = _HTML_PAGE.format(code=code, phrase=phrase)
    return web.Response(text=page, status=code, content_type="text/html"), code


def _reset_before(request: web.Request) -> Reply:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500), None


async def _reset_mid(request: web.Request, body: bytes) -> Reply:
    response = web.StreamResponse(status=200)
    response.content_type = _JSON
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        transport.abort()
    return response, None


async def fault_response(
    request: web.Request,
    fault: Fault,
    family: Family,
    headers: dict[str, str],
    real_body: Callable[[], bytes | None],
) -> Reply:
    """The response of a fault that replaces the answer (not ``ok``/``delay``/``wrong_count``).

    ``real_body`` gives the correct answer's bytes (``None`` if the request was invalid);
    ``malformed`` and ``reset_mid`` send part of it.
    """
    kind = fault.kind
    if kind == "status":
        code = fault.code or 500
        return error_response(family, code, None, headers, fault.retry_after, fault.body)
    if kind == "html":
        return _html(fault.code or 502)
    if kind == "empty":
        return json_response(b"", 200, headers)
    if kind == "reset_before":
        return _reset_before(request)
    body = real_body() or _FALLBACK_BODY
    if kind == "malformed":
        return json_response(body[: max(1, len(body) // 2)], 200, headers)
    if kind == "reset_mid":
        return await _reset_mid(request, body)
    raise ValueError(f"fault kind {kind!r} does not replace the answer")
