"""How many requests may be in flight, and how fast new ones may start.

Both are read by the scheduler before every send, so they can change during a run:
``concurrent_requests="auto"`` adjusts a :class:`ConcurrencyLimit`, and a
:class:`RateLimiter` gates each send by requests and tokens per minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["ConcurrencyLimit", "RateLimiter"]


@dataclass(slots=True)
class ConcurrencyLimit:
    """The number of requests allowed in flight.

    A fixed limit is a ceiling: an overload answer multiplies it by ``backoff`` (once for
    all requests sent before that decrease), and it climbs back by one per window of good
    answers, never above the number given. With ``auto`` it follows the endpoint: once per window of
    ``value`` answers it doubles until the first sign of overload (slow start), then
    moves towards ``value * min(1, tolerance * best / recent) + 1``, where ``best`` is the
    fastest latency seen lately and ``recent`` the smoothed current one: while latency
    holds, the limit grows; when requests queue on the server, it shrinks. A rate-limit
    or overload answer multiplies it by ``backoff`` at once, as for a fixed limit.
    It stays within ``[minimum, maximum]``.
    """

    value: int
    auto: bool = False
    minimum: int = 1
    maximum: int = 256
    tolerance: float = 1.5
    backoff: float = 0.7
    _best: float = field(default=0.0, repr=False)
    _recent: float = field(default=0.0, repr=False)
    _count: int = field(default=0, repr=False)
    _exact: float = field(default=0.0, repr=False)
    _slow_start: bool = field(default=True, repr=False)
    _decreased_at: float = field(default=-math.inf, repr=False)

    def __post_init__(self) -> None:
        if not self.auto:
            self.maximum = self.value

    def on_success(self, latency: float) -> None:
        """Record an answer that took ``latency`` seconds."""
        if not self.auto:
            self._climb()
            return
        self._recent = latency if not self._recent else 0.8 * self._recent + 0.2 * latency
        self._best = latency if not self._best else min(self._best * 1.001, latency)
        self._count += 1
        if self._count >= self.value:
            self._count = 0
            gradient = min(1.0, self.tolerance * self._best / self._recent)
            if self._slow_start and gradient >= 1.0:
                self._set(self.value * 2.0)
                return
            self._slow_start = False
            exact = self._exact or self.value
            target = exact * gradient + 1.0
            self._set(target if target >= exact else 0.8 * exact + 0.2 * target)

    def _climb(self) -> None:
        """Additive increase of a fixed limit back towards its ceiling."""
        if self.value >= self.maximum:
            return
        self._count += 1
        if self._count >= self.value:
            self._count = 0
            self._set((self._exact or self.value) + 1.0)

    def on_overload(self, sent_at: float = 0.0, now: float = 0.0) -> None:
        """Record a 429/529/503 answer to a request sent at ``sent_at``: shrink the limit,
        unless the request left before the last decrease (it saw the old limit)."""
        if sent_at <= self._decreased_at:
            return
        self._decreased_at = now
        self._count = 0
        self._slow_start = False
        self._set((self._exact or self.value) * self.backoff)

    def _set(self, exact: float) -> None:
        self._exact = min(float(self.maximum), max(float(self.minimum), exact))
        self.value = max(self.minimum, int(self._exact))


@dataclass(slots=True)
class _Bucket:
    """Refills at ``per_minute / 60`` per second and holds one second's worth (the burst),
    as providers enforce per-minute limits over shorter windows."""

    per_minute: float
    level: float
    stamp: float

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 60.0)

    def wait(self, cost: float, now: float) -> float:
        rate = self.per_minute / 60.0
        self.level = min(self.capacity, self.level + (now - self.stamp) * rate)
        self.stamp = now
        cost = min(cost, self.capacity)
        return 0.0 if self.level >= cost else (cost - self.level) / rate

    def take(self, cost: float) -> None:
        self.level -= min(cost, self.capacity)


class RateLimiter:
    """Token buckets for requests and tokens per minute; pure, driven by the caller's clock.

    >>> limiter = RateLimiter(requests_per_minute=60, now=0.0)  # one a second
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
        for per_minute, is_tokens in ((requests_per_minute, False), (tokens_per_minute, True)):
            if per_minute:
                bucket = _Bucket(per_minute, 0.0, now)
                bucket.level = bucket.capacity
                self._buckets.append((bucket, is_tokens))

    def try_acquire(self, *, now: float, tokens: int = 0) -> float:
        """0.0 if a request costing ``tokens`` may start now (and take it), else seconds to wait."""
        waits = [b.wait(tokens if is_tokens else 1, now) for b, is_tokens in self._buckets]
        longest = max(waits, default=0.0)
        if longest > 0:
            return longest
        for bucket, is_tokens in self._buckets:
            bucket.take(tokens if is_tokens else 1)
        return 0.0
