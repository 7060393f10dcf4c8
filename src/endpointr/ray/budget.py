"""One budget for every worker of a Ray Data stage, leased in batches.

:class:`Budget` runs as one Ray actor per stage. It holds the in-flight limit of all
workers together (the adaptive controller of ``concurrent_requests="auto"`` included), the
run-wide pause a server asked for (``Retry-After``, a server refusing connections), and the
union of the output columns seen so far. Each worker holds a :class:`SharedLimit`, its
share of that limit, in the place of its own
:class:`~endpointr.engine.limits.ConcurrencyLimit`; the engine reads and tells it exactly
as it would its own. A worker reports its answers in batches and gets its new share back
in the same call, made in the background: never one remote call per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import pyarrow as pa
import ray

from ..engine.flow import Flow, Request
from ..engine.limits import ConcurrencyLimit
from ..engine.options import AUTO_START
from ..errors import RequestError

__all__ = ["Budget", "Lease", "SharedFlow", "SharedLimit"]

SYNC_EVERY = 64  # answers between two reports
SYNC_SECONDS = 0.25  # and at least this often while answers come in
LOOK_EVERY = 8  # answers between two looks at whether a pending report has come back
BACKOFF = 0.7  # what a worker's own share shrinks by on an overload, before the budget says


@dataclass(frozen=True, slots=True)
class Lease:
    """What a report gets back: the worker's share of the in-flight limit, and the
    stage-wide pause (a Unix time, 0.0 for none) with its reason."""

    share: int
    paused_until: float = 0.0
    reason: str = ""


class Budget:
    """The in-flight limit of all workers of a stage (run as a Ray actor).

    Workers :meth:`join` to get their index and first share, then :meth:`report` their
    answers' latencies and overloads in batches; each report returns the worker's share
    of the limit. The shares add up to the limit, each at least one. A worker that holds
    its sends (a server's ``Retry-After``) tells :meth:`pause`, and every worker learns
    of the pause from its next report."""

    def __init__(self, concurrent_requests: int | str, maximum: int, workers: int) -> None:
        auto = concurrent_requests == "auto"
        start = min(max(AUTO_START, workers), maximum) if auto else int(concurrent_requests)
        self.limit = ConcurrencyLimit(
            start, auto=auto, minimum=workers, maximum=maximum if auto else start
        )
        self.workers = workers
        self.joined = 0
        self.reports = 0
        self.answers = 0
        self.overloads = 0
        self.pauses = 0
        self.worker_seconds = 0.0
        self.paused_until = 0.0
        self.reason = ""
        self.schema: pa.Schema | None = None

    def join(self) -> tuple[int, Lease]:
        """A new worker's index and its first lease."""
        index = self.joined % self.workers
        self.joined += 1
        return index, self._lease(index)

    def report(
        self,
        index: int,
        latencies: list[float],
        overloads: list[float],
        seconds: float,
    ) -> Lease:
        """Take worker ``index``'s answers since its last report: the ``latencies`` of
        good ones, the ages of overloaded ones (seconds between their send and now), and
        the ``seconds`` its limiter took."""
        now = time.monotonic()
        for latency in latencies:
            self.limit.on_success(latency)
        for age in overloads:
            self.limit.on_overload(now - age, now)
        self.reports += 1
        self.answers += len(latencies) + len(overloads)
        self.overloads += len(overloads)
        self.worker_seconds += seconds
        return self._lease(index)

    def pause(self, until: float, reason: str) -> None:
        """Hold every worker's new sends until ``until`` (a Unix time), for ``reason``."""
        if until > self.paused_until:
            self.paused_until, self.reason = until, reason
            self.pauses += 1

    def columns(self, schema: pa.Schema) -> pa.Schema:
        """The union of the output columns of every block so far, ``schema``'s included
        (a block of error rows alone gets the label columns the others found)."""
        try:
            self.schema = schema if self.schema is None else pa.unify_schemas([self.schema, schema])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return schema
        return self.schema

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks and tests: the limit now, reports (leases), answers."""
        return {
            "limit": self.limit.value,
            "reports": self.reports,
            "answers": self.answers,
            "overloads": self.overloads,
            "pauses": self.pauses,
            "worker_seconds": self.worker_seconds,
        }

    def _lease(self, index: int) -> Lease:
        base, extra = divmod(self.limit.value, self.workers)
        share = max(1, base + (1 if index < extra else 0))
        if self.paused_until > time.time():
            return Lease(share, self.paused_until, self.reason)
        return Lease(share)


class SharedLimit:
    """A worker's share of a :class:`Budget`, in the place of its own
    :class:`~endpointr.engine.limits.ConcurrencyLimit`: the engine reads ``value`` and
    tells ``on_success`` / ``on_overload`` as it would its own limit.

    An overload shrinks the share at once and is reported at once; other answers are
    reported every ``SYNC_EVERY`` answers or ``SYNC_SECONDS``, one report in flight at a
    time. ``spent`` counts the seconds this costs the worker, remote calls included."""

    def __init__(self, budget: Any, index: int, lease: Lease) -> None:
        self.value = lease.share
        self.answered = False  # a good answer came in, in any block of this worker
        self._budget, self._index = budget, index
        self._latencies: list[float] = []
        self._overloads: list[float] = []
        self._pending: Any = None
        self._last = time.monotonic()
        self._spent = 0.0
        self._calls = 0
        self._flow: Flow | None = None
        self._paused = (lease.paused_until, lease.reason)

    def on_success(self, latency: float) -> None:
        self.answered = True
        self._latencies.append(latency)
        self._sync(force=False)

    def on_overload(
        self,
        sent_at: float = 0.0,
        now: float = 0.0,
        *,
        at_most: int | None = None,
        seen: int | None = None,
    ) -> None:
        self._overloads.append(max(0.0, now - sent_at))
        self.value = max(1, min(int(self.value * BACKOFF), at_most or self.value))
        self._sync(force=True)

    def pause(self, seconds: float, reason: str) -> None:
        """Tell every worker to send nothing new for ``seconds`` (one remote call, not
        waited for: a pause is rare)."""
        self._budget.pause.remote(time.time() + seconds, reason)

    def adapt(self, flow: Flow) -> Flow:
        """``flow`` (a new block's) sending within this share, and within the pauses
        of the whole stage; the first sends of a block go at the full share once the
        worker has had a good answer."""
        shared = SharedFlow(**{f.name: getattr(flow, f.name) for f in fields(Flow)})
        shared.limit = self  # type: ignore[assignment]
        shared.share = self
        if self.answered:
            shared.good_answers = 1
        self._flow = shared
        self._apply_pause()
        return shared

    def _sync(self, *, force: bool) -> None:
        started = time.perf_counter()
        self._calls += 1
        if self._pending is not None and (force or self._calls % LOOK_EVERY == 0):
            ready, _ = ray.wait([self._pending], timeout=0)
            if ready:
                self._take(ray.get(ready[0]))
                self._pending = None
        due = len(self._latencies) >= SYNC_EVERY or time.monotonic() - self._last >= SYNC_SECONDS
        if self._pending is None and (force or due) and (self._latencies or self._overloads):
            spent = self._spent + time.perf_counter() - started
            self._pending = self._budget.report.remote(
                self._index, self._latencies, self._overloads, spent
            )
            self._latencies, self._overloads, self._spent = [], [], 0.0
            self._last = time.monotonic()
            return
        self._spent += time.perf_counter() - started

    def _take(self, lease: Lease) -> None:
        self.value = lease.share
        self._paused = (lease.paused_until, lease.reason)
        self._apply_pause()

    def _apply_pause(self) -> None:
        until, reason = self._paused
        flow, left = self._flow, until - time.time()
        if flow is not None and left > 0:
            mono = time.monotonic() + left
            if mono > flow.gate_until:
                flow.gate_until, flow.waiting_for = mono, reason


@dataclass(slots=True)
class SharedFlow(Flow):
    """A worker's :class:`~endpointr.engine.flow.Flow` whose run-wide pauses are the
    whole stage's: a pause it takes (a ``Retry-After``, a server refusing connections)
    goes to every worker through its :class:`SharedLimit`."""

    share: SharedLimit | None = None

    def retry_delay(self, request: Request, error: RequestError, now: float) -> float | None:
        before = self.gate_until
        delay = Flow.retry_delay(self, request, error, now)
        if self.share is not None and self.gate_until > max(before, now):
            self.share.pause(self.gate_until - now, self.waiting_for)
        return delay
