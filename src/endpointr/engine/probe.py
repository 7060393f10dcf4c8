"""One-shot requests to a server's own routes, and the limits its ``GET /info`` reports.

A TEI server reports its limits on ``GET /info``; :func:`resolve_batch_size` reads them
so that ``batch_size`` never exceeds what the server accepts. These requests take one
attempt each, the key going to the request's own host only.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import orjson

from ..config import check_int_or_auto, redact_url, resolve_key
from ..errors import RequestError, ResponseFormatError, TransportError
from ..providers.base import classify_status, error_message, parse_retry_after
from ..providers.hf import info_url
from ..types import HttpRequest, HttpResponse
from .transport import Transport

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "checked",
    "fit_batch_size",
    "get_request",
    "json_object",
    "probe_info",
    "resolve_batch_size",
    "send_once",
]

DEFAULT_BATCH_SIZE = 8
PROBE_TIMEOUT = 5.0


def get_request(url: str) -> HttpRequest:
    """A ``GET`` of ``url`` asking for JSON."""
    return HttpRequest("GET", url, None, {"Accept": "application/json"})


async def send_once(
    request: HttpRequest,
    key_name: str | None,
    timeout: float,
    *,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> HttpResponse:
    """One attempt, the key going to ``request.url``'s host only; no retry."""
    key = resolve_key(key_name)
    transport = Transport(
        timeout=timeout,
        auth_headers={"Authorization": f"Bearer {key}"} if key else None,
        auth_url=request.url,
        verify=verify,
        ca_bundle=ca_bundle,
    )
    try:
        async with transport:
            return await transport.send(request)
    except TransportError as exc:
        raise TransportError(f"cannot reach {redact_url(request.url)}: {exc.message}") from None


def checked(response: HttpResponse, url: str) -> HttpResponse:
    """``response`` if it is 2xx, else the classified error naming the (redacted) URL."""
    if 200 <= response.status < 300:
        return response
    message = error_message(response)
    detail = (
        message if message == f"HTTP {response.status}" else f"HTTP {response.status}: {message}"
    )
    raise classify_status(
        response.status,
        f"{redact_url(url)} answered {detail}",
        parse_retry_after(response.headers),
    )


def json_object(response: HttpResponse, url: str) -> dict[str, Any]:
    """The JSON object ``response`` carries, else :class:`ResponseFormatError`."""
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise ResponseFormatError(
            f"{redact_url(url)} did not answer a JSON object", status=response.status
        )
    return body


async def probe_info(
    endpoint_url: str,
    key_name: str | None,
    *,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> dict[str, Any] | None:
    """The ``/info`` object of the server behind ``endpoint_url``, or ``None`` when it
    gives none (404, an error, no answer within a few seconds, not a JSON object).

    Raises only what makes the run impossible anyway: a missing API key, a bad ``ca_bundle``.
    """
    url = info_url(endpoint_url)
    try:
        response = await send_once(
            get_request(url), key_name, PROBE_TIMEOUT, verify=verify, ca_bundle=ca_bundle
        )
        return json_object(checked(response, url), url)
    except RequestError:
        return None


def _server_limit(info: Mapping[str, Any] | None) -> int | None:
    limit = info.get("max_client_batch_size") if info else None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return None
    return limit


def fit_batch_size(batch_size: int | str, info: Mapping[str, Any] | None) -> int:
    """The rows per request to use, given the server's ``/info`` (``None``: unknown).

    An integer above the server's ``max_client_batch_size`` is capped at it; ``"auto"``
    takes that limit, or 8 when the server reports none. Each fallback and cap prints one
    line on stderr.
    """
    size, limit = check_int_or_auto(batch_size, "batch_size"), _server_limit(info)
    if size == "auto":
        if limit is not None:
            return limit
        _notice(
            "batch_size='auto' but the server reports no max_client_batch_size (no /info); "
            f"using {DEFAULT_BATCH_SIZE}"
        )
        return DEFAULT_BATCH_SIZE
    assert isinstance(size, int)
    if limit is not None and size > limit:
        _notice(f"batch_size {size} > the server's max_client_batch_size {limit}; using {limit}")
        return limit
    return size


async def resolve_batch_size(
    endpoint_url: str,
    batch_size: int | str,
    key_name: str | None,
    *,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> int:
    """``batch_size`` fitted to the limit the server behind ``endpoint_url`` reports.

    Asks ``/info`` once (see :func:`probe_info`, :func:`fit_batch_size`). Raises
    :class:`ConfigError` for a ``batch_size`` that is neither ``"auto"`` nor >= 1,
    before any request.
    """
    check_int_or_auto(batch_size, "batch_size")
    info = await probe_info(endpoint_url, key_name, verify=verify, ca_bundle=ca_bundle)
    return fit_batch_size(batch_size, info)


def _notice(message: str) -> None:
    print(f"endpointr: {message}", file=sys.stderr)
