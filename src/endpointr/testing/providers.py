"""What differs between providers outside the answer itself.

A :class:`Family` knows its provider's error body, how an API key is presented, which
rate-limit headers go on every answer and what a 429 over a rate budget says. Families:
``"hf"`` (Inference Endpoints and TEI), ``"openai"`` and ``"anthropic"``;
:func:`family_for` gives the one the settings ask for (``ratelimit_headers``,
``error_style``).

Rate-limit headers, with ``tpm`` unset a token budget of 10,000,000 that never runs low:

- OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as Go
  durations (``20ms``, ``1.5s``, ``6m0s``).
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``, resets as RFC 3339 times rounded up to the second; the fake has one
  token budget, which all three token groups report.
- ``ratelimit_headers="ietf"``, every family: ``RateLimit-Limit``, ``RateLimit-Remaining``,
  ``RateLimit-Reset`` (whole seconds, rounded up) and ``RateLimit-Policy: <limit>;w=<window>``
  of the request budget, as draft-ietf-httpapi-ratelimit-headers-06 (the separate fields
  that servers deploy; later drafts merge them into one structured ``RateLimit`` field).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import orjson

from .rates import Budget, Limit, RateInfo
from .settings import Settings

__all__ = [
    "ANTHROPIC",
    "FAMILIES",
    "HF",
    "OPENAI",
    "Family",
    "family_for",
    "format_seconds",
    "go_duration",
]

_request_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Family:
    """A provider's conventions: error body, key check, rate-limit headers, the message of a
    429 over a rate budget, and the header carrying a request id (``None``: none)."""

    name: str
    error_body: Callable[[int, str | None], bytes]
    authorized: Callable[[Mapping[str, str], str], bool]
    rate_headers: Callable[[RateInfo], dict[str, str]]
    limit_message: Callable[[Limit], str]
    request_id: str | None = None

    def headers(self, rate: RateInfo) -> dict[str, str]:
        """The headers of an answer: the rate-limit headers and a new request id."""
        headers = self.rate_headers(rate)
        if self.request_id is not None:
            headers[self.request_id] = f"req_{next(_request_ids):024x}"
        return headers


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


def go_duration(seconds: float) -> str:
    """Seconds as Go prints a duration, to the millisecond: ``0.02 -> "20ms"``,
    ``1.5 -> "1.5s"``, ``360 -> "6m0s"``, ``0 -> "0s"``."""
    millis = max(round(seconds * 1000), 0)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    minutes, rest = divmod(millis, 60_000)
    rest_text = format_seconds(rest / 1000)
    return f"{minutes}m{rest_text}s" if minutes else f"{rest_text}s"


def _openai_headers(rate: RateInfo) -> dict[str, str]:
    headers: dict[str, str] = {}
    for unit, budget in (("requests", rate.requests), ("tokens", rate.tokens)):
        headers[f"x-ratelimit-limit-{unit}"] = str(budget.limit)
        headers[f"x-ratelimit-remaining-{unit}"] = str(budget.remaining)
        headers[f"x-ratelimit-reset-{unit}"] = go_duration(budget.reset_seconds)
    return headers


def _rfc3339(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_ANTHROPIC_GROUPS: tuple[tuple[str, Callable[[RateInfo], Budget]], ...] = (
    ("requests", lambda rate: rate.requests),
    ("tokens", lambda rate: rate.tokens),
    ("input-tokens", lambda rate: rate.tokens),
    ("output-tokens", lambda rate: rate.tokens),
)


def _anthropic_headers(rate: RateInfo) -> dict[str, str]:
    headers: dict[str, str] = {}
    for group, budget_of in _ANTHROPIC_GROUPS:
        budget = budget_of(rate)
        headers[f"anthropic-ratelimit-{group}-limit"] = str(budget.limit)
        headers[f"anthropic-ratelimit-{group}-remaining"] = str(budget.remaining)
        headers[f"anthropic-ratelimit-{group}-reset"] = _rfc3339(budget.reset_seconds)
    return headers


def _ietf_headers(rate: RateInfo) -> dict[str, str]:
    budget = rate.requests
    return {
        "RateLimit-Limit": str(budget.limit),
        "RateLimit-Remaining": str(budget.remaining),
        # a hair off: the window start and "now" are two readings of one clock
        "RateLimit-Reset": str(math.ceil(budget.reset_seconds - 1e-6)),
        "RateLimit-Policy": f"{budget.limit};w={math.ceil(rate.window)}",
    }


def _hf_limit(limit: Limit) -> str:
    if limit.wait is None:
        return f"Request of {limit.requested} {limit.unit} exceeds {limit.limit} per minute"
    return f"Rate limit reached: {limit.limit} {limit.unit} per minute"


_OPENAI_UNITS = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}


def _openai_limit(limit: Limit) -> str:
    where = f"in organization org-fake on {_OPENAI_UNITS[limit.unit]}"
    if limit.wait is None:
        return (
            f"Request too large {where}: Limit {limit.limit}, Requested {limit.requested}. "
            "The input or output tokens must be reduced in order to run successfully."
        )
    return (
        f"Rate limit reached {where}: Limit {limit.limit}, Used {limit.used}, "
        f"Requested {limit.requested}. Please try again in {go_duration(limit.wait)}."
    )


def _anthropic_limit(limit: Limit) -> str:
    return (
        f"This request would exceed the rate limit for your organization of {limit.limit} "
        f"{limit.unit} per minute. You can see the response headers for current usage. "
        "Please reduce the prompt length or the maximum tokens requested, or try again later."
    )


def _fastapi_error(field: str, status: int, message: str | None) -> bytes:
    text = message or _phrase(status)
    if status == 422:
        detail = [{"loc": ["body", field], "msg": text, "type": "value_error"}]
        return orjson.dumps({"detail": detail})
    return orjson.dumps({"detail": text})


HF = Family("hf", _hf_error, _bearer_ok, _no_headers, _hf_limit)
OPENAI = Family("openai", _openai_error, _bearer_ok, _openai_headers, _openai_limit, "x-request-id")
ANTHROPIC = Family(
    "anthropic", _anthropic_error, _x_api_key_ok, _anthropic_headers, _anthropic_limit, "request-id"
)
FAMILIES: Mapping[str, Family] = {f.name: f for f in (HF, OPENAI, ANTHROPIC)}

_HEADER_STYLES: dict[str, Callable[[Family], Callable[[RateInfo], dict[str, str]]]] = {
    "provider": lambda family: family.rate_headers,
    "ietf": lambda family: _ietf_headers,
    "none": lambda family: _no_headers,
}
# The body field a FastAPI server names in its 422s, per family it can stand in for.
_FASTAPI_FIELDS = {"hf": "inputs", "openai": "input"}


def _error_body(family: Family, style: str) -> Callable[[int, str | None], bytes]:
    field = _FASTAPI_FIELDS.get(family.name)
    if style == "provider" or field is None:
        return family.error_body
    return functools.partial(_fastapi_error, field)


def family_for(family: Family, settings: Settings) -> Family:
    """``family`` with the rate-limit headers of ``settings.ratelimit_headers`` and, for HF
    and OpenAI, the error bodies of ``settings.error_style``."""
    return _styled(family, settings.ratelimit_headers, settings.error_style)


@functools.cache
def _styled(family: Family, headers: str, errors: str) -> Family:
    return replace(
        family, rate_headers=_HEADER_STYLES[headers](family), error_body=_error_body(family, errors)
    )
