"""Budgets of the fake server that depend on the clock: rate windows, capacity, bursts.

A route family has two sliding windows, one of requests (``rpm``) and one of tokens
(``tpm``), both ``rate_window`` seconds long. :func:`charge` spends a request in both or
in neither; :func:`capacity_at` and :func:`in_burst` read the settings at a time counted
from the first request since start or reset. The windows live in
:class:`~endpointr.testing.state.ServerState`, which calls these under its lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .settings import Settings

__all__ = [
    "Budget",
    "FamilyWindows",
    "Limit",
    "RateInfo",
    "Window",
    "capacity_at",
    "charge",
    "in_burst",
    "rate_info",
]

UNLIMITED_REQUESTS = 1_000_000
UNLIMITED_TOKENS = 10_000_000


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget as a request left it: ``limit`` per window, ``remaining`` now, and
    ``reset_seconds`` until the window is empty again, the budget whole (as OpenAI's
    ``x-ratelimit-reset-*`` say)."""

    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True, slots=True)
class RateInfo:
    """The request and token budgets of a route family; ``window`` is their length (s)."""

    requests: Budget
    tokens: Budget
    window: float


@dataclass(frozen=True, slots=True)
class Limit:
    """A budget a request did not fit in.

    ``unit`` is ``"requests"`` or ``"tokens"``; ``limit`` per window, ``used`` in the
    window, ``requested`` by this request; ``wait`` is the seconds until it would fit, or
    ``None`` when it never can (it asks for more than ``limit``).
    """

    unit: str
    limit: int
    used: int
    requested: int
    wait: float | None


class Window:
    """Amounts spent in the last ``length`` seconds, oldest first, and their sum ``used``."""

    def __init__(self) -> None:
        self._spent: deque[tuple[float, int]] = deque()
        self.used = 0

    def prune(self, now: float, length: float) -> None:
        """Forget what was spent ``length`` seconds or more before ``now``."""
        spent = self._spent
        while spent and spent[0][0] <= now - length:
            self.used -= spent.popleft()[1]

    def wait(self, amount: int, limit: int, now: float, length: float) -> float | None:
        """Seconds from ``now`` until ``amount`` more fits under ``limit`` (0.0: it fits
        now; ``None``: never). Call :meth:`prune` first."""
        if amount > limit:
            return None
        excess = self.used + amount - limit
        if excess <= 0:
            return 0.0
        freed = 0
        for moment, spent in self._spent:
            freed += spent
            if freed >= excess:
                return moment + length - now
        return None  # not reached: what was spent covers any excess

    def spend(self, amount: int, now: float) -> None:
        """Add ``amount`` spent at ``now``."""
        self._spent.append((now, amount))
        self.used += amount

    def budget(self, limit: int, now: float, length: float, *, until_empty: bool) -> Budget:
        """The budget now; its reset is when the oldest entry leaves, or with
        ``until_empty`` when the newest does."""
        if not self._spent:
            return Budget(limit, limit, 0.0)
        moment = self._spent[-1 if until_empty else 0][0]
        return Budget(limit, max(limit - self.used, 0), max(moment + length - now, 0.0))


class Bucket:
    """A token bucket holding ``limit`` and refilling ``limit`` per ``length`` seconds, as
    OpenAI and Anthropic describe their limits; the same calls as :class:`Window`. Its
    reset is when it is full again."""

    def __init__(self) -> None:
        self._level: float | None = None
        self._stamp = 0.0
        self._limit = 0

    @property
    def used(self) -> int:
        return 0 if self._level is None else int(self._limit - self._level)

    def prune(self, now: float, length: float) -> None:
        """Nothing to forget: :meth:`wait` and :meth:`budget` refill."""

    def _refill(self, limit: int, now: float, length: float) -> float:
        if self._level is None:
            self._level = float(limit)
        else:
            self._level = min(limit, self._level + (now - self._stamp) * limit / length)
        self._stamp, self._limit = now, limit
        return self._level

    def wait(self, amount: int, limit: int, now: float, length: float) -> float | None:
        """Seconds until ``amount`` fits (0.0: now; ``None``: never)."""
        if amount > limit:
            return None
        level = self._refill(limit, now, length)
        return 0.0 if level >= amount else (amount - level) * length / limit

    def spend(self, amount: int, now: float) -> None:
        """Take ``amount`` (after :meth:`wait` said it fits)."""
        self._level = (self._level if self._level is not None else self._limit) - amount

    def budget(self, limit: int, now: float, length: float, *, until_empty: bool) -> Budget:
        """The budget now; the reset is when the bucket is full again."""
        level = self._refill(limit, now, length)
        return Budget(limit, max(int(level), 0), (limit - level) * length / limit)


@dataclass(slots=True)
class FamilyWindows:
    """The two budgets of one route family: sliding windows, or buckets."""

    requests: Window | Bucket = field(default_factory=Window)
    tokens: Window | Bucket = field(default_factory=Window)

    @classmethod
    def for_settings(cls, settings: Settings) -> FamilyWindows:
        """Buckets or windows, as ``settings.rate_model`` says."""
        kind = Bucket if settings.rate_model == "bucket" else Window
        return cls(kind(), kind())


def rate_info(windows: FamilyWindows, settings: Settings, now: float) -> RateInfo:
    """The family's budgets at ``now`` (forgetting what left the windows); an unset
    ``rpm``/``tpm`` is a large fixed budget."""
    length = settings.rate_window
    requests = Budget(UNLIMITED_REQUESTS, UNLIMITED_REQUESTS - 1, 0.0)
    tokens = Budget(UNLIMITED_TOKENS, UNLIMITED_TOKENS, 0.0)
    windows.requests.prune(now, length)
    windows.tokens.prune(now, length)
    if settings.rpm is not None:
        requests = windows.requests.budget(settings.rpm, now, length, until_empty=True)
    if settings.tpm is not None:
        tokens = windows.tokens.budget(settings.tpm, now, length, until_empty=True)
    return RateInfo(requests, tokens, length)


def charge(
    windows: FamilyWindows, settings: Settings, tokens: int, now: float
) -> tuple[RateInfo, Limit | None]:
    """Spend one request and ``tokens`` of the family's set budgets if both fit, else none.

    Returns the budgets afterwards and the first budget that did not fit (``None``: spent).
    """
    length = settings.rate_window
    budgets = (
        ("requests", windows.requests, settings.rpm, 1),
        ("tokens", windows.tokens, settings.tpm, tokens),
    )
    missed: Limit | None = None
    for unit, window, limit, amount in budgets:
        if limit is None:
            continue
        window.prune(now, length)
        wait = window.wait(amount, limit, now, length)
        if missed is None and wait != 0.0:
            missed = Limit(unit, limit, window.used, amount, wait)
    if missed is None:
        for _, window, limit, amount in budgets:
            if limit is not None:
                window.spend(amount, now)
    return rate_info(windows, settings, now), missed


def capacity_at(settings: Settings, elapsed: float) -> int | None:
    """``capacity``, or the last ``capacity_schedule`` step begun ``elapsed`` seconds in."""
    capacity = settings.capacity
    for seconds, value in settings.capacity_schedule:
        if elapsed < seconds:
            break
        capacity = value
    return capacity


def in_burst(settings: Settings, elapsed: float) -> bool:
    """Whether ``elapsed`` seconds in falls in a 503 burst: burst k (k >= 1) covers
    ``[k * burst_every, k * burst_every + burst_length)``."""
    every = settings.burst_every
    return every is not None and elapsed >= every and elapsed % every < settings.burst_length
