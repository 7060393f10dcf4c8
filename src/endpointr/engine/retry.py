"""Retry decisions: pure functions of (attempt, error, random draw); they test without sleeping."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import RequestError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a request again, and after how long.

    ``max_attempts`` counts every try, the first included (EndpointR's ``max_retries``).
    The backoff before attempt ``n + 1`` is drawn from ``[base * 2**(n-1) / 2, base *
    2**(n-1)]`` capped at ``cap`` seconds ("equal jitter": never zero, never in lockstep).
    A server's ``Retry-After`` replaces the backoff, plus up to ``retry_after_jitter`` of
    itself so that many waiting requests do not return at the same instant; it is capped
    at ``max_retry_after`` seconds.
    """

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    retry_after_jitter: float = 0.1
    max_retry_after: float = 300.0

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
        u = random.random() if draw is None else draw
        if error.retry_after is not None:
            wait = min(error.retry_after, self.max_retry_after)
            return wait * (1 + self.retry_after_jitter * u)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return ceiling / 2 * (1 + u)
