"""What differs between providers outside the answer itself.

A :class:`Family` knows its provider's error body, how an API key is presented and
which rate-limit headers go on every answer. Families: ``"hf"`` (Inference Endpoints
and TEI), ``"openai"`` and ``"anthropic"``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import orjson

from .state import RateInfo

__all__ = ["ANTHROPIC", "FAMILIES", "HF", "OPENAI", "Family", "format_seconds"]

_NO_LIMIT_TOKENS = 10_000_000
_request_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Family:
    """A provider's conventions: error body, key check and answer headers."""

    name: str
    error_body: Callable[[int, str | None], bytes]
    authorized: Callable[[Mapping[str, str], str], bool]
    headers: Callable[[RateInfo], dict[str, str]]


def format_seconds(value: float) -> str:
    """Seconds written without needless digits: ``2.0 -> "2"``, ``0.05 -> "0.05"``."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Error"


def _hf_error(status: int, message: str | None) -> bytes:
    if status in (400, 413, 422):
        kind = "Validation"
    elif status == 401:
        kind = "Unauthorized"
    elif status in (429, 529):
        kind = "Overloaded"
    elif status == 503:
        kind = "Unhealthy"
    else:
        kind = "Backend"
    default = "Model is overloaded" if kind == "Overloaded" else _phrase(status)
    return orjson.dumps({"error": message or default, "error_type": kind})


def _openai_error(status: int, message: str | None) -> bytes:
    kind, code = "server_error", None
    if status == 401:
        kind, code = "invalid_request_error", "invalid_api_key"
    elif status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif 400 <= status < 500:
        kind = "invalid_request_error"
    if message is None:
        message = "Rate limit reached for requests" if status == 429 else _phrase(status)
    body = {"message": message, "type": kind, "param": None, "code": code}
    return orjson.dumps({"error": body})


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _anthropic_error(status: int, message: str | None) -> bytes:
    kind = _ANTHROPIC_TYPES.get(status)
    if kind is None:
        kind = "invalid_request_error" if 400 <= status < 500 else "api_error"
    default = "Overloaded" if status == 529 else _phrase(status)
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message or default}})


def _bearer_ok(headers: Mapping[str, str], key: str) -> bool:
    return headers.get("authorization") == f"Bearer {key}"


def _x_api_key_ok(headers: Mapping[str, str], key: str) -> bool:
    return headers.get("x-api-key") == key


def _no_headers(rate: RateInfo) -> dict[str, str]:
    return {}


def _go_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = format_seconds(round(rest, 3))
    return f"{int(minutes)}m{rest_text}s" if minutes else f"{rest_text}s"


def _openai_headers(rate: RateInfo) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(rate.limit),
        "x-ratelimit-remaining-requests": str(rate.remaining),
        "x-ratelimit-reset-requests": _go_duration(rate.reset_seconds),
        "x-ratelimit-limit-tokens": str(_NO_LIMIT_TOKENS),
        "x-ratelimit-remaining-tokens": str(_NO_LIMIT_TOKENS),
        "x-ratelimit-reset-tokens": "0s",
        "x-request-id": f"req_{next(_request_ids):024x}",
    }


def _rfc3339(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _anthropic_headers(rate: RateInfo) -> dict[str, str]:
    now = _rfc3339(0)
    return {
        "anthropic-ratelimit-requests-limit": str(rate.limit),
        "anthropic-ratelimit-requests-remaining": str(rate.remaining),
        "anthropic-ratelimit-requests-reset": _rfc3339(rate.reset_seconds),
        "anthropic-ratelimit-tokens-limit": str(_NO_LIMIT_TOKENS),
        "anthropic-ratelimit-tokens-remaining": str(_NO_LIMIT_TOKENS),
        "anthropic-ratelimit-tokens-reset": now,
        "request-id": f"req_{next(_request_ids):024x}",
    }


HF = Family("hf", _hf_error, _bearer_ok, _no_headers)
OPENAI = Family("openai", _openai_error, _bearer_ok, _openai_headers)
ANTHROPIC = Family("anthropic", _anthropic_error, _x_api_key_ok, _anthropic_headers)
FAMILIES: Mapping[str, Family] = {f.name: f for f in (HF, OPENAI, ANTHROPIC)}
