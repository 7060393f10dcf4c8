"""The server's own word on its rate limits, read from the headers of every answer.

Pure functions: headers in, :class:`Budget` values out. Three dialects are read:

- OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, the reset a
  duration such as ``1s``, ``6m0s`` or ``20ms`` (the time until the budget is full again);
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
  {limit,remaining,reset}``, the reset an RFC 3339 time;
- the IETF ``RateLimit`` fields: the structured form of the current drafts
  (``RateLimit: "default";r=50;t=30`` with ``RateLimit-Policy: "default";q=100;w=60``),
  the earlier ``RateLimit: limit=100, remaining=50, reset=30`` and the separate
  ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` fields, resets in seconds.

OpenAI and Anthropic refill their budgets continuously (token buckets: ``refills``),
so what is missing comes back steadily until the reset; an IETF quota is a window that
comes back whole when it ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Budget", "parse_duration", "read_budgets"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_OPENAI_KINDS = ("requests", "tokens")
_ANTHROPIC_KINDS = ("requests", "tokens", "input-tokens", "output-tokens")


@dataclass(frozen=True, slots=True)
class Budget:
    """What is left of one of the server's limits: ``remaining`` of ``limit`` (``None``
    when not given) ``kind`` (``"requests"``, ``"tokens"``, ``"input-tokens"`` or
    ``"output-tokens"``), whole again in ``reset`` seconds: steadily until then when it
    ``refills`` (a bucket), all at once at the end if not (a window)."""

    kind: str
    remaining: int
    reset: float
    limit: int | None = None
    refills: bool = True


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``1s``, ``6m0s``, ``1h2m3.5s``, ``20ms``) or a
    bare number of seconds; ``None`` if it is neither.

    >>> parse_duration("6m0s"), parse_duration("20ms"), parse_duration("0.5")
    (360.0, 0.02, 0.5)
    """
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total, end = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        end = match.end()
    return total if end and end == len(text) else None


def read_budgets(headers: Mapping[str, str], wall_now: float) -> list[Budget]:
    """Every budget the (lower-cased) ``headers`` state; ``wall_now`` is the Unix time
    an RFC 3339 reset is measured from. Fields that do not parse are ignored."""
    if not headers:
        return []
    budgets = _openai(headers) + _anthropic(headers, wall_now)
    return budgets or _ietf(headers)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def _openai(headers: Mapping[str, str]) -> list[Budget]:
    out = []
    for kind in _OPENAI_KINDS:
        remaining = _int(headers.get(f"x-ratelimit-remaining-{kind}"))
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}", ""))
        if remaining is not None and reset is not None:
            limit = _int(headers.get(f"x-ratelimit-limit-{kind}"))
            out.append(Budget(kind, remaining, reset, limit))
    return out


def _anthropic(headers: Mapping[str, str], wall_now: float) -> list[Budget]:
    out = []
    for kind in _ANTHROPIC_KINDS:
        prefix = f"anthropic-ratelimit-{kind}-"
        remaining = _int(headers.get(prefix + "remaining"))
        reset = _seconds_until(headers.get(prefix + "reset"), wall_now)
        if remaining is not None and reset is not None:
            out.append(Budget(kind, remaining, reset, _int(headers.get(prefix + "limit"))))
    return out


def _seconds_until(stamp: str | None, wall_now: float) -> float | None:
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall_now)


def _ietf(headers: Mapping[str, str]) -> list[Budget]:
    combined = headers.get("ratelimit")
    if combined:
        params = _params(combined)
        if "r" in params:  # RateLimit: "name";r=50;t=30 (RateLimit-Policy: "name";q=100;w=60)
            policy = _params(headers.get("ratelimit-policy", ""))
            return _ietf_budget(params.get("r"), params.get("t", "0"), policy.get("q"))
        return _ietf_budget(params.get("remaining"), params.get("reset"), params.get("limit"))
    return _ietf_budget(
        headers.get("ratelimit-remaining"),
        headers.get("ratelimit-reset"),
        headers.get("ratelimit-limit"),
    )


def _ietf_budget(remaining: str | None, reset: str | None, limit: str | None) -> list[Budget]:
    left = _int(remaining)
    seconds = parse_duration(reset) if reset else None
    if left is None or seconds is None:
        return []
    total = _int(re.split(r"[,;]", limit)[0]) if limit else None
    return [Budget("requests", left, seconds, total, refills=False)]


def _params(field: str) -> dict[str, str]:
    """``key=value`` pairs of a structured field (only its first item, for ``;`` lists)."""
    first = field.split(",")[0] if ";" in field else field
    out = {}
    for part in re.split(r"[;,]", first):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key.strip().lower()] = value.strip().strip('"')
    return out
