"""How many requests may be in flight, and how fast new ones may start.

Both are read by the scheduler before every send, so they can change during a run:
``concurrent_requests="auto"`` adjusts a :class:`ConcurrencyLimit`, and a
:class:`RateLimiter` gates each send by requests and tokens per minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ConcurrencyLimit", "RateLimiter"]


@dataclass(slots=True)
class ConcurrencyLimit:
    """The number of requests allowed in flight.

    Fixed when ``auto`` is false. With ``auto``, it grows by one after ``window``
    successes in a row and halves on a rate-limit answer (additive increase,
    multiplicative decrease), staying within ``[minimum, maximum]``.
    """

    value: int
    auto: bool = False
    minimum: int = 1
    maximum: int = 256
    window: int = 0
    _streak: int = field(default=0, repr=False)

    def on_success(self) -> None:
        if not self.auto:
            return
        self._streak += 1
        if self._streak >= max(self.window, self.value):
            self._streak = 0
            self.value = min(self.maximum, self.value + 1)

    def on_rate_limited(self) -> None:
        if not self.auto:
            return
        self._streak = 0
        self.value = max(self.minimum, self.value // 2)


@dataclass(slots=True)
class _Bucket:
    per_minute: float
    level: float
    stamp: float

    def wait(self, cost: float, now: float) -> float:
        rate = self.per_minute / 60.0
        self.level = min(self.per_minute, self.level + (now - self.stamp) * rate)
        self.stamp = now
        cost = min(cost, self.per_minute)
        return 0.0 if self.level >= cost else (cost - self.level) / rate


class RateLimiter:
    """Token buckets for requests and tokens per minute; pure, driven by the caller's clock.

    >>> limiter = RateLimiter(requests_per_minute=60, now=0.0)
    >>> limiter.try_acquire(now=0.0), limiter.try_acquire(now=0.0) > 0
    (0.0, True)
    """

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        now: float = 0.0,
    ) -> None:
        self._buckets: list[tuple[_Bucket, bool]] = []
        if requests_per_minute:
            self._buckets.append((_Bucket(requests_per_minute, requests_per_minute, now), False))
        if tokens_per_minute:
            self._buckets.append((_Bucket(tokens_per_minute, tokens_per_minute, now), True))

    def try_acquire(self, *, now: float, tokens: int = 0) -> float:
        """0.0 if a request costing ``tokens`` may start now (and take it), else seconds to wait."""
        waits = [b.wait(tokens if is_tokens else 1, now) for b, is_tokens in self._buckets]
        longest = max(waits, default=0.0)
        if longest > 0:
            return longest
        for bucket, is_tokens in self._buckets:
            bucket.level -= min(tokens if is_tokens else 1, bucket.per_minute)
        return 0.0
