"""The fake server's state: its settings, its record of requests and its fault plan.

All mutable state lives in :class:`ServerState`, guarded by one lock: the server's
event loop thread writes it while the test thread reads snapshots and changes plans.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .batches import BatchStats, BatchStore
from .faults import Fault
from .rates import FamilyWindows, Limit, RateInfo, capacity_at, charge, in_burst, rate_info
from .settings import Settings

__all__ = [
    "BatchStats",
    "Limit",
    "Poison",
    "RateInfo",
    "RecordedRequest",
    "ServerState",
    "ServerStats",
    "Settings",
    "Ticket",
]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request to a provider route as the server saw it.

    ``headers`` has lowercased names; ``json`` is the parsed body (``None`` if it was
    not JSON); ``rows`` counts the inputs (1 for chat and messages). ``status`` is the
    status answered, ``None`` while in flight or when the connection was dropped;
    ``t_start`` and ``t_end`` are ``time.monotonic()`` values (``t_end`` is ``None``
    while in flight).
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    rows: int
    status: int | None
    t_start: float
    t_end: float | None

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object, without headers."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "headers"}


@dataclass(frozen=True)
class ServerStats:
    """A snapshot of what the server saw since it started or was last reset; ``batches``
    is what the file and batch routes saw (they are not in ``requests``)."""

    requests: list[RecordedRequest]
    peak_in_flight: int
    texts_seen: Counter[str]
    batches: BatchStats = field(default_factory=BatchStats)

    @property
    def rows_per_request(self) -> list[int]:
        """``rows`` of every request, in arrival order."""
        return [r.rows for r in self.requests]

    @property
    def request_count(self) -> int:
        """How many provider requests arrived (any outcome)."""
        return len(self.requests)

    @property
    def row_count(self) -> int:
        """Rows over the requests answered 200."""
        return sum(r.rows for r in self.requests if r.status == 200)

    def to_json(self, *, with_requests: bool = True) -> dict[str, Any]:
        """The snapshot as the ``GET /_stats`` JSON object (no headers)."""
        return {
            "requests": [r.to_json() for r in self.requests] if with_requests else None,
            "peak_in_flight": self.peak_in_flight,
            "rows_per_request": self.rows_per_request,
            "request_count": self.request_count,
            "row_count": self.row_count,
            "texts_seen": dict(self.texts_seen),
            "batches": self.batches.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Poison:
    """Requests with a text containing ``substring`` are answered ``status``."""

    substring: str
    status: int
    message: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """An answer given on arrival, before the request is admitted; ``limit`` is the
    rate budget it did not fit in, if that is why."""

    status: int
    message: str | None
    retry_after: float | None
    limit: Limit | None = None


@dataclass(slots=True)
class Ticket:
    """A request's place in the record and what the server decided on its arrival."""

    slot: int
    generation: int
    rate: RateInfo
    rejection: Rejection | None = None
    fault: Fault | None = None


@dataclass(slots=True)
class _RandomFaults:
    rate: float
    faults: list[Fault]
    rng: random.Random


@dataclass(slots=True)
class _Plan:
    script: deque[Fault] = field(default_factory=deque)
    random: _RandomFaults | None = None
    poison: list[Poison] = field(default_factory=list)


class ServerState:
    """Settings, fault plan and record of one fake server; safe to use from any thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._plan = _Plan()
        self._records: list[RecordedRequest] = []
        self._texts: Counter[str] = Counter()
        self._generation = 0
        self._in_flight = 0
        self._peak = 0
        self._windows: dict[str, FamilyWindows] = {}
        self._epoch: float | None = None
        self.cached_prompts: set[str] = set()
        self.batches = BatchStore()

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Replace the settings with a copy that has ``changes`` applied."""
        self.settings = self.settings.updated(changes)

    def script(self, faults: Iterable[Fault]) -> None:
        """Queue ``faults`` for the next admitted requests, one each, in order."""
        with self._lock:
            self._plan.script.extend(faults)

    def set_random(self, rate: float, faults: Sequence[Fault], seed: int) -> None:
        """Give each admitted unscripted request a fault of ``faults`` with ``rate``."""
        if not 0.0 <= rate <= 1.0 or (rate and not faults):
            raise ValueError("rate must be within [0, 1] and kinds must not be empty")
        with self._lock:
            self._plan.random = _RandomFaults(rate, list(faults), random.Random(seed))

    def add_poison(self, poison: Poison) -> None:
        """Answer every request with a text containing ``poison.substring`` with an error."""
        with self._lock:
            self._plan.poison.append(poison)

    def reset(self) -> None:
        """Forget the fault plan, poison, records, rate windows, the clock of the
        capacity schedule and bursts, the prompt cache, and the batch files and jobs."""
        with self._lock:
            self._plan = _Plan()
            self._records = []
            self._texts = Counter()
            self._generation += 1
            self._peak = self._in_flight
            self._windows = {}
            self._epoch = None
            self.cached_prompts = set()
        self.batches.reset()

    def snapshot(self) -> ServerStats:
        """A consistent copy of the record."""
        with self._lock:
            records, peak, texts = list(self._records), self._peak, Counter(self._texts)
        return ServerStats(records, peak, texts, self.batches.stats())

    def poisoned(self, texts: Iterable[str]) -> Poison | None:
        """The first poison matching any of ``texts``, if any."""
        plan = self._plan.poison
        if not plan:
            return None
        for text in texts:
            for poison in plan:
                if poison.substring in text:
                    return poison
        return None

    def arrive(
        self,
        record: RecordedRequest,
        texts: Sequence[str],
        family: str,
        authorized: bool,
        tokens: int = 0,
    ) -> Ticket:
        """Record a request and decide: reject it (401; 503 in a burst; 429 over ``rpm``,
        ``tpm`` or the capacity) or admit it with its fault. ``tokens`` is its cost for
        ``tpm``."""
        settings = self.settings
        with self._lock:
            now = time.monotonic()
            self._records.append(record)
            self._texts.update(texts)
            if self._epoch is None:
                self._epoch = now
            windows = self._windows.get(family) or self._windows.setdefault(
                family, FamilyWindows.for_settings(settings)
            )
            ticket = Ticket(
                len(self._records) - 1, self._generation, rate_info(windows, settings, now)
            )
            if not authorized:
                ticket.rejection = Rejection(401, None, None)
            elif in_burst(settings, now - self._epoch):
                ticket.rejection = Rejection(503, None, settings.retry_after)
            else:
                ticket.rate, missed = charge(windows, settings, tokens, now)
                ticket.rejection = self._admit(ticket, settings, missed, now - self._epoch)
            return ticket

    def _admit(
        self, ticket: Ticket, settings: Settings, missed: Limit | None, elapsed: float
    ) -> Rejection | None:
        if missed is not None:
            return Rejection(429, None, missed.wait, missed)
        capacity = capacity_at(settings, elapsed)
        if capacity is not None and self._in_flight >= capacity:
            return Rejection(429, None, settings.retry_after)
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        ticket.fault = self._next_fault()
        return None

    def finish(self, ticket: Ticket, status: int | None) -> None:
        """Close a request's record with the status sent (``None``: connection dropped)."""
        with self._lock:
            if ticket.rejection is None:
                self._in_flight -= 1
            if ticket.generation == self._generation:
                record = self._records[ticket.slot]
                self._records[ticket.slot] = replace(record, status=status, t_end=time.monotonic())

    def _next_fault(self) -> Fault | None:
        plan = self._plan
        if plan.script:
            return plan.script.popleft()
        chance = plan.random
        if chance is not None and chance.rng.random() < chance.rate:
            return chance.rng.choice(chance.faults)
        return None
