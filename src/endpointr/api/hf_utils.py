"""Hugging Face endpoint utilities: the server's limits, the model's length, a check.

Each public function has an async twin named with a leading ``a``. A TEI server reports
its limits on ``GET /info``; :func:`resolve_batch_size` reads them so that ``batch_size``
never exceeds what the server accepts.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from ..config import check_int, check_url, redact_url, resolve_key
from ..engine.sync import synced
from ..engine.transport import Transport
from ..errors import ConfigError, RequestError, ResponseFormatError, TransportError
from ..providers.base import classify_status, error_message, parse_retry_after
from ..types import HttpRequest, HttpResponse

__all__ = [
    "ahf_get_endpoint_info",
    "ahf_get_model_max_length",
    "avalidate_hf_endpoint",
    "fit_batch_size",
    "hf_get_endpoint_info",
    "hf_get_model_max_length",
    "info_url",
    "probe_info",
    "resolve_batch_size",
    "validate_hf_endpoint",
]

HUB_URL = "https://huggingface.co"
DEFAULT_BATCH_SIZE = 8
PROBE_TIMEOUT = 5.0
_ROUTES = ("/embed", "/predict", "/classify", "/rerank", "/info")
_MODEL_NAME = re.compile(r"^[\w-][\w.-]*(/[\w-][\w.-]*)?$")
# transformers writes int(1e30) when a tokenizer sets no limit of its own
_NO_LIMIT = 10**12
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def info_url(endpoint_url: str) -> str:
    """``GET /info`` of the server behind ``endpoint_url``: a trailing ``/embed``,
    ``/predict``, ``/classify`` or ``/rerank`` is dropped (same scheme, host and query).

    >>> info_url("https://host/x/predict?a=1")
    'https://host/x/info?a=1'
    """
    parts = urlsplit(endpoint_url)
    path = parts.path.rstrip("/")
    for route in _ROUTES:
        if path.endswith(route):
            path = path[: -len(route)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path + "/info", parts.query, ""))


def _get(url: str) -> HttpRequest:
    return HttpRequest("GET", url, None, {"Accept": "application/json"})


async def _send(
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


def _checked(response: HttpResponse, url: str) -> HttpResponse:
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


def _json_object(response: HttpResponse, url: str) -> dict[str, Any]:
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise ResponseFormatError(
            f"{redact_url(url)} did not answer a JSON object", status=response.status
        )
    return body


async def ahf_get_endpoint_info(
    endpoint_url: str, *, key_name: str | None = "HF_API_KEY", timeout: float = 10
) -> dict[str, Any]:
    """What a TEI server says about itself (``GET /info``): ``model_id``,
    ``max_client_batch_size``, ``max_batch_tokens``, ``max_input_length``, ...

    ``endpoint_url`` may name a route (``.../embed``, ``.../predict``). Raises a
    :class:`~endpointr.errors.RequestError` subclass carrying the server's message when
    the answer is not 200 (e.g. :class:`~endpointr.errors.ClientError` for a 404 from a
    server that is not TEI). ``timeout`` is in seconds; there is no retry.

    >>> hf_get_endpoint_info(url, key_name=None)["max_client_batch_size"]  # doctest: +SKIP
    32
    """
    url = info_url(check_url(endpoint_url))
    response = await _send(_get(url), key_name, timeout)
    return _json_object(_checked(response, url), url)


async def ahf_get_model_max_length(
    model_name: str,
    *,
    key_name: str | None = "HF_API_KEY",
    endpoint_url: str | None = None,
    timeout: float = 10,
) -> int | None:
    """The ``model_max_length`` of a Hub model's tokenizer, in tokens.

    Reads ``{endpoint_url}/{model_name}/resolve/main/tokenizer_config.json``
    (``endpoint_url`` defaults to ``https://huggingface.co``). Returns ``None`` when the
    tokenizer sets no limit of its own. Raises a
    :class:`~endpointr.errors.RequestError` subclass for a non-200 answer (401 for a
    gated model without a key, 404 for an unknown one).

    >>> hf_get_model_max_length("distilbert/distilbert-base-uncased")  # doctest: +SKIP
    512
    """
    if not isinstance(model_name, str) or not _MODEL_NAME.match(model_name):
        raise ConfigError(f"model_name must look like 'org/model', got {model_name!r}")
    base = check_url(endpoint_url or HUB_URL, "endpoint_url").rstrip("/")
    url = f"{base}/{model_name}/resolve/main/tokenizer_config.json"
    response = await _send(_get(url), key_name, timeout)
    value = _json_object(_checked(response, url), url).get("model_max_length")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < _NO_LIMIT:
        return None
    return value


async def avalidate_hf_endpoint(
    endpoint_url: str, *, key_name: str | None = "HF_API_KEY", timeout: float = 10
) -> bool:
    """Send one small request (``{"inputs": "endpointr check"}``); ``True`` when it works.

    Raises a :class:`~endpointr.errors.RequestError` subclass whose message names the
    (redacted) URL and the status and message of the server, or
    :class:`~endpointr.errors.TransportError` when the server cannot be reached.
    """
    url = check_url(endpoint_url)
    body = orjson.dumps({"inputs": "endpointr check"})
    response = await _send(HttpRequest("POST", url, body, _JSON), key_name, timeout)
    _checked(response, url)
    try:
        orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise ResponseFormatError(
            f"{redact_url(url)} answered HTTP {response.status} with a body that is not JSON",
            status=response.status,
        ) from None
    return True


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
        response = await _send(
            _get(url), key_name, PROBE_TIMEOUT, verify=verify, ca_bundle=ca_bundle
        )
        return _json_object(_checked(response, url), url)
    except RequestError:
        return None


def _server_limit(info: Mapping[str, Any] | None) -> int | None:
    limit = info.get("max_client_batch_size") if info else None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return None
    return limit


def check_batch_size(batch_size: Any) -> int | str:
    """``batch_size`` if it is ``"auto"`` or an integer >= 1, else :class:`ConfigError`."""
    if batch_size == "auto":
        return "auto"
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ConfigError(f"batch_size must be an integer >= 1 or 'auto', got {batch_size!r}")
    return check_int(batch_size, "batch_size")


def fit_batch_size(batch_size: int | str, info: Mapping[str, Any] | None) -> int:
    """The rows per request to use, given the server's ``/info`` (``None``: unknown).

    An integer above the server's ``max_client_batch_size`` is capped at it; ``"auto"``
    takes that limit, or 8 when the server reports none. Each fallback and cap prints one
    line on stderr.
    """
    size, limit = check_batch_size(batch_size), _server_limit(info)
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
    check_batch_size(batch_size)
    info = await probe_info(endpoint_url, key_name, verify=verify, ca_bundle=ca_bundle)
    return fit_batch_size(batch_size, info)


def _notice(message: str) -> None:
    print(f"endpointr: {message}", file=sys.stderr)


hf_get_endpoint_info = synced(ahf_get_endpoint_info)
hf_get_model_max_length = synced(ahf_get_model_max_length)
validate_hf_endpoint = synced(avalidate_hf_endpoint)
