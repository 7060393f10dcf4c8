"""Hugging Face endpoint utilities: the server's limits, the model's length, a check.

Each public function has an async twin named with a leading ``a``. Each sends one
request, with no retry.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..config import check_url, redact_url
from ..engine.probe import checked, get_request, json_object, send_once
from ..engine.sync import synced
from ..errors import ConfigError, ResponseFormatError
from ..providers.hf import info_url
from ..types import HttpRequest

__all__ = [
    "ahf_get_endpoint_info",
    "ahf_get_model_max_length",
    "avalidate_hf_endpoint",
    "hf_get_endpoint_info",
    "hf_get_model_max_length",
    "validate_hf_endpoint",
]

HUB_URL = "https://huggingface.co"
_MODEL_NAME = re.compile(r"^[\w-][\w.-]*(/[\w-][\w.-]*)?$")
# transformers writes int(1e30) when a tokenizer sets no limit of its own
_NO_LIMIT = 10**12
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


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
    response = await send_once(get_request(url), key_name, timeout)
    return json_object(checked(response, url), url)


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
    response = await send_once(get_request(url), key_name, timeout)
    value = json_object(checked(response, url), url).get("model_max_length")
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
    response = await send_once(HttpRequest("POST", url, body, _JSON), key_name, timeout)
    checked(response, url)
    try:
        orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise ResponseFormatError(
            f"{redact_url(url)} answered HTTP {response.status} with a body that is not JSON",
            status=response.status,
        ) from None
    return True


hf_get_endpoint_info = synced(ahf_get_endpoint_info)
hf_get_model_max_length = synced(ahf_get_model_max_length)
validate_hf_endpoint = synced(avalidate_hf_endpoint)
