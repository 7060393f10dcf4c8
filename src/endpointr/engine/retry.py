"""Retry decisions: pure functions of (attempt, error, random draw); they test without sleeping."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import RequestError

__all__ = ["OVERLOAD_STATUSES", "RetryPolicy", "is_overload"]

# "slower", not "this row is bad": waiting on these spends time, not attempts
OVERLOAD_STATUSES = frozenset({429, 503, 529})


def is_overload(error: RequestError) -> bool:
    """Whether ``error`` is the server saying "slower" (429, 503, 529)."""
    return error.status in OVERLOAD_STATUSES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a request again, and after how long.

    ``max_attempts`` counts every try, the first included (EndpointR's ``max_retries``).
    The backoff before attempt ``n + 1`` is drawn from ``[base * 2**(n-1) / 2, base *
    2**(n-1)]`` capped at ``cap`` seconds ("equal jitter": never zero, never in lockstep).
    A server's ``Retry-After`` replaces the backoff, plus up to ``retry_after_jitter`` of
    itself so that many waiting requests do not return at the same instant; it is capped
    at ``max_retry_after`` seconds.

    Overload (429, 503, 529) spends no attempt: a request keeps waiting on it, by the same
    waits, until it has been overloaded for ``overload_timeout`` seconds in all.
    """

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    retry_after_jitter: float = 0.1
    max_retry_after: float = 300.0
    overload_timeout: float = 600.0

    def delay(self, attempt: int, error: RequestError, draw: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up.

        ``attempt`` is the number of attempts made so far (>= 1); ``draw`` is a uniform
        number in [0, 1) (drawn from :mod:`random` when omitted).

        >>> from endpointr.errors import ServerError
        >>> RetryPolicy(max_attempts=3).delay(1, ServerError("x"), draw=0.0)
        0.25
        >>> RetryPolicy(max_attempts=3).delay(3, ServerError("x")) is None
        True
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        return self._wait(attempt, error, draw)

    def backoff(self, n: int, draw: float | None = None) -> float:
        """The jittered wait after the ``n``-th failure in a row (``n >= 1``), in seconds."""
        u = random.random() if draw is None else draw
        ceiling = min(self.cap, self.base * 2 ** (max(1, n) - 1))
        return ceiling / 2 * (1 + u)

    def _wait(self, n: int, error: RequestError, draw: float | None) -> float:
        if error.retry_after is None:
            return self.backoff(n, draw)
        u = random.random() if draw is None else draw
        wait = min(error.retry_after, self.max_retry_after)
        return wait * (1 + self.retry_after_jitter * u)

    def overload_delay(
        self, overloads: int, waited: float, error: RequestError, draw: float | None = None
    ) -> float | None:
        """Seconds to wait after the ``overloads``-th overload answer in a row, or ``None``
        when the request has been overloaded for ``waited >= overload_timeout`` seconds.

        >>> from endpointr.errors import RateLimitError
        >>> RetryPolicy().overload_delay(9, 1.0, RateLimitError("x", retry_after=2), draw=0.0)
        2.0
        >>> RetryPolicy(overload_timeout=60).overload_delay(3, 61.0, RateLimitError("x")) is None
        True
        """
        if waited >= self.overload_timeout:
            return None
        return self._wait(overloads, error, draw)
