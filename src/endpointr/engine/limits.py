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
    all requests sent before that decrease), and it climbs back by one per window of
    ``value`` good answers, never above the number given. With ``auto`` it follows the
    endpoint: each good answer adds one until the first sign of overload (slow start: the
    limit doubles a round trip), then once per window it moves towards
    ``value * min(1, tolerance * best / recent) + 1``, where ``best`` is the fastest
    latency seen lately and ``recent`` the smoothed current one: while
    latency holds, the limit grows; when requests queue on the server, it shrinks. An
    overload answer multiplies it by ``backoff`` at once, as for a fixed limit.

    Either way the level of the last overload is remembered: the limit climbs straight
    back to just below it, then waits ``patience`` windows before trying it again, twice
    as long each time it is refused there again (up to ``max_patience``), so a server
    with a hard capacity sees a probe now and then, not a 429 every few windows; a
    refused probe steps back to the level below it, which held. It stays within
    ``[minimum, maximum]``.
    """

    value: int
    auto: bool = False
    minimum: int = 1
    maximum: int = 256
    tolerance: float = 1.5
    backoff: float = 0.7
    patience: int = 2
    slow_start_growth: float = 2.0
    max_patience: int = 32
    _best: float = field(default=0.0, repr=False)
    _recent: float = field(default=0.0, repr=False)
    _count: int = field(default=0, repr=False)
    _exact: float = field(default=0.0, repr=False)
    _slow_start: bool = field(default=True, repr=False)
    _decreased_at: float = field(default=-math.inf, repr=False)
    _refused_at: int | None = field(default=None, repr=False)
    _held: int = field(default=0, repr=False)

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
        gradient = min(1.0, self.tolerance * self._best / self._recent)
        if self._slow_start:
            if gradient >= 1.0:  # each answer adds one: twice as many a round trip
                self._set((self._exact or self.value) + self.slow_start_growth - 1.0)
                return
            self._slow_start, self._count = False, 0
        self._count += 1
        if self._count >= self.value:
            self._count = 0
            exact = self._exact or self.value
            target = exact * gradient + 1.0
            if target < exact:
                self._set(0.8 * exact + 0.2 * target)
            elif self._may_pass(exact, target):
                self._set(target)

    def _climb(self) -> None:
        """Additive increase of a fixed limit back towards its ceiling."""
        if self.value >= self.maximum:
            return
        self._count += 1
        if self._count >= self.value:
            self._count = 0
            exact = self._exact or self.value
            if self._may_pass(exact, exact + 1.0):
                self._set(exact + 1.0)

    def _may_pass(self, exact: float, target: float) -> bool:
        """Whether one window's climb from ``exact`` to ``target`` may go ahead: always
        below the level last refused; at it, only after ``patience`` windows there."""
        refused = self._refused_at
        if refused is None or int(target) < refused:
            return True
        if int(exact) >= refused:  # a window there without refusal: forget it
            self._refused_at, self.patience = None, max(1, self.patience // 2)
            return True
        self._held += 1
        if self._held < self.patience:
            return False
        self._held = 0
        return True

    def on_overload(
        self,
        sent_at: float = 0.0,
        now: float = 0.0,
        *,
        at_most: int | None = None,
        seen: int | None = None,
    ) -> None:
        """Record a 429/529 answer (or a timeout) to a request sent at ``sent_at``, when
        the limit was ``seen``: shrink the limit from that level (answers of the same
        round trip may have raised it since), to ``at_most`` if that is lower, unless the
        request left before the last decrease (it saw the old limit)."""
        if sent_at <= self._decreased_at:
            return
        self._decreased_at = now
        self._count = 0
        self._slow_start = False
        exact = min(self._exact or self.value, seen or math.inf)
        lower = exact * self.backoff
        if int(exact) == self._refused_at:  # a probe of the level last refused, refused
            self.patience = min(self.max_patience, self.patience * 2)
            lower = max(lower, exact - 1.0)  # the level below held until the probe
        self._refused_at = int(exact)
        self._held = 0
        self._set(min(lower, at_most or math.inf))

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

    def owe(self, tokens: float) -> None:
        """Take ``tokens`` more (or give them back, when negative): the level may go
        below zero, a debt the refill pays before the next send."""
        self.level = min(self.capacity, self.level - tokens)


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

    @property
    def counts_tokens(self) -> bool:
        """Whether a tokens-per-minute budget applies."""
        return any(is_tokens for _, is_tokens in self._buckets)

    def settle(self, *, now: float, charged: int, used: int) -> None:
        """Correct the tokens budget once an answer reports ``used`` tokens for a request
        that was charged ``charged``."""
        for bucket, is_tokens in self._buckets:
            if is_tokens:
                bucket.wait(0, now)
                bucket.owe(used - charged)

    def try_acquire(self, *, now: float, tokens: int = 0) -> float:
        """0.0 if a request costing ``tokens`` may start now (and take it), else seconds to wait."""
        waits = [b.wait(tokens if is_tokens else 1, now) for b, is_tokens in self._buckets]
        longest = max(waits, default=0.0)
        if longest > 0:
            return longest
        for bucket, is_tokens in self._buckets:
            bucket.take(tokens if is_tokens else 1)
        return 0.0
