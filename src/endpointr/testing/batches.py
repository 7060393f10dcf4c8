"""Batch jobs and stored files of the fake server, and the clock that moves a job along.

A job's answers are computed once, when it is created; what a client sees of them is a
pure function of the job and the time asked about. Its :class:`Timing` is frozen from the
settings at creation, so a job keeps the pace it started with:

- ``validating`` for ``batch_validating`` seconds (OpenAI; 0 for Anthropic), then
  ``failed`` if the input was invalid;
- ``in_progress`` for ``batch_in_progress`` seconds, request ``i`` of ``n`` done at
  ``(i + 1) / n`` of it;
- ``finalizing`` for ``batch_finalizing`` seconds (OpenAI; 0 for Anthropic), then
  ``completed``;
- ``expired`` at ``batch_expire_after`` seconds after creation, if that comes before
  every request is done: the requests done by then keep their results;
- ``cancelling`` from a cancel (accepted while ``validating`` or ``in_progress``) for
  ``batch_cancelling`` seconds, then ``cancelled``: the requests done at the cancel keep
  their results.

These are the OpenAI names; the Anthropic routes map them onto ``in_progress``,
``canceling`` and ``ended``. :class:`BatchStore` holds files and jobs behind one lock.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .settings import Settings

__all__ = [
    "FINAL",
    "BatchStats",
    "BatchStore",
    "Job",
    "JobRecord",
    "LineResult",
    "StoredFile",
    "Timing",
    "counts_at",
    "done_at",
    "new_id",
    "started_at",
    "status_at",
    "wall_clock",
]

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
CANCELLABLE = frozenset({"validating", "in_progress"})
_ids = itertools.count(1)
_T = TypeVar("_T")


def wall_clock(moment: float) -> float:
    """The Unix time (``time.time()``) of the monotonic ``moment``."""
    return time.time() - (time.monotonic() - moment)


def new_id(prefix: str) -> str:
    """A fresh object id, ``prefix`` then 24 hex digits; unique for the process."""
    return f"{prefix}{next(_ids):024x}"


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a job stays in each state, in seconds; ``expire_after`` counts from its
    creation (``None``: never expires)."""

    validating: float
    in_progress: float
    finalizing: float
    cancelling: float
    expire_after: float | None

    @classmethod
    def openai(cls, settings: Settings) -> Timing:
        """The timing of an OpenAI batch created under ``settings``."""
        return cls(
            settings.batch_validating,
            settings.batch_in_progress,
            settings.batch_finalizing,
            settings.batch_cancelling,
            settings.batch_expire_after,
        )

    @classmethod
    def anthropic(cls, settings: Settings) -> Timing:
        """The timing of an Anthropic message batch: no validating or finalizing state."""
        return cls(
            0.0,
            settings.batch_in_progress,
            0.0,
            settings.batch_cancelling,
            settings.batch_expire_after,
        )


@dataclass(frozen=True, slots=True)
class LineResult:
    """The answer one request of a job gets: the HTTP ``status`` the online route would
    send and its JSON ``body`` bytes; ``line_id`` and ``request_id`` name it in results."""

    custom_id: str
    status: int
    body: bytes
    line_id: str
    request_id: str

    @property
    def ok(self) -> bool:
        """Whether the request succeeded (status 200)."""
        return self.status == 200


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded or generated file; ``created_at`` is a Unix time in seconds."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        """The OpenAI file object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass(slots=True)
class Job:
    """One batch job. ``created`` is a ``time.monotonic()`` moment and ``created_wall``
    the matching ``time.time()``; ``errors`` are validation errors (OpenAI error objects,
    the job fails); ``cancelled`` is when a cancel was accepted. ``options`` keeps the
    provider's creation fields (OpenAI: ``input_file_id``, ``completion_window``,
    ``metadata``)."""

    id: str
    provider: str
    endpoint: str
    created: float
    created_wall: float
    timing: Timing
    results: tuple[LineResult, ...]
    errors: tuple[dict[str, Any], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    reversed_results: bool = False
    cancelled: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    settled: bool = False
    _ok_prefix: list[int] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        self._ok_prefix = [0, *itertools.accumulate(int(r.ok) for r in self.results)]

    def wall(self, moment: float) -> float:
        """The Unix time of the monotonic ``moment``."""
        return self.created_wall + (moment - self.created)

    def succeeded_among(self, done: int) -> int:
        """How many of the first ``done`` requests succeeded."""
        return self._ok_prefix[done]

    def ordered(self, results: Iterable[_T]) -> list[_T]:
        """``results`` in the order the settings asked for (input or reversed)."""
        items = list(results)
        return items[::-1] if self.reversed_results else items


def _stop(job: Job) -> tuple[str, float] | None:
    """What ends the job early, if anything: a cancel, or the expiry deadline when it
    comes before every request is done."""
    if job.cancelled is not None:
        return "cancel", job.cancelled
    timing = job.timing
    if job.errors or timing.expire_after is None:
        return None
    deadline = job.created + timing.expire_after
    if deadline < job.created + timing.validating + timing.in_progress:
        return "expired", deadline
    return None


def timeline(job: Job) -> list[tuple[str, float]]:
    """Every state the job goes through, with the monotonic moment it begins."""
    t0, timing = job.created, job.timing
    run = t0 + timing.validating
    steps = [("validating", t0)]
    if job.errors:
        steps.append(("failed", run))
    else:
        end = run + timing.in_progress
        steps += [("in_progress", run), ("finalizing", end), ("completed", end + timing.finalizing)]
    stop = _stop(job)
    if stop is None:
        return steps
    kind, moment = stop
    kept = steps[:1] + [step for step in steps[1:] if step[1] < moment]
    if kind == "expired":
        return [*kept, ("expired", moment)]
    return [*kept, ("cancelling", moment), ("cancelled", moment + timing.cancelling)]


def status_at(job: Job, now: float) -> str:
    """The job's state at the monotonic moment ``now``."""
    current = "validating"
    for status, moment in timeline(job):
        if moment <= now:
            current = status
    return current


def started_at(job: Job, status: str, now: float) -> float | None:
    """The Unix time ``status`` began, if the job had reached it by ``now``."""
    for name, moment in timeline(job):
        if name == status and moment <= now:
            return job.wall(moment)
    return None


def done_at(job: Job, now: float) -> int:
    """How many requests (from the first, in input order) were done at ``now``."""
    if job.errors:
        return 0
    stop = _stop(job)
    moment = now if stop is None else min(now, stop[1])
    run = job.created + job.timing.validating
    total = len(job.results)
    if moment < run:
        return 0
    if job.timing.in_progress <= 0:
        return total
    return min(total, math.floor(total * (moment - run) / job.timing.in_progress))


def counts_at(job: Job, now: float) -> tuple[int, int, int]:
    """``(succeeded, failed, not run)`` at ``now``: requests done and succeeded, done and
    failed, and those a job that expired or was cancelled never ran (0 until it ended)."""
    done = done_at(job, now)
    succeeded = job.succeeded_among(done)
    ended = status_at(job, now) in ("expired", "cancelled")
    return succeeded, done - succeeded, len(job.results) - done if ended else 0


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the server saw of a job's creation: its provider, endpoint, the custom ids of
    its requests in input order, and whether its input was valid."""

    id: str
    provider: str
    endpoint: str
    custom_ids: tuple[str, ...]
    valid: bool

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object."""
        return {
            "id": self.id,
            "provider": self.provider,
            "endpoint": self.endpoint,
            "requests": len(self.custom_ids),
            "custom_ids": list(self.custom_ids),
            "valid": self.valid,
        }


@dataclass(frozen=True)
class BatchStats:
    """What the batch and file routes saw since start or reset: ``events`` counts
    ``files_uploaded``, ``files_deleted``, ``bytes_uploaded``, ``batches_created``,
    ``batches_cancelled``, ``requests_submitted`` (the last three also per provider, as
    ``openai.batches_created`` ...) and ``rejected`` (401s); ``jobs`` are the jobs created,
    in order."""

    events: Counter[str] = field(default_factory=Counter)
    jobs: tuple[JobRecord, ...] = ()

    def count(self, event: str, provider: str | None = None) -> int:
        """How many times ``event`` happened (for ``provider`` only, if given)."""
        return self.events[event if provider is None else f"{provider}.{event}"]

    def to_json(self) -> dict[str, Any]:
        """The snapshot as the ``batches`` object of ``GET /_stats``."""
        return {**dict(self.events), "jobs": [job.to_json() for job in self.jobs]}


_NOTED_PER_PROVIDER = ("batches_created", "batches_cancelled", "requests_submitted")


class BatchStore:
    """The fake server's files and jobs, newest last; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._jobs: dict[str, Job] = {}
        self._events: Counter[str] = Counter()
        self._records: list[JobRecord] = []

    def reset(self) -> None:
        """Forget every file, job and count."""
        with self._lock:
            self._files, self._jobs = {}, {}
            self._events, self._records = Counter(), []

    def note(self, event: str, amount: int = 1, provider: str | None = None) -> None:
        """Count ``amount`` of ``event`` (and of the provider's own, for job events)."""
        with self._lock:
            self._events[event] += amount
            if provider is not None and event in _NOTED_PER_PROVIDER:
                self._events[f"{provider}.{event}"] += amount

    def stats(self) -> BatchStats:
        """A consistent copy of the counts and job records."""
        with self._lock:
            return BatchStats(Counter(self._events), tuple(self._records))

    def add_file(self, filename: str, purpose: str, content: bytes, created_at: int) -> StoredFile:
        """Store a new file and return it."""
        stored = StoredFile(new_id("file-"), filename, purpose, content, created_at)
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile | None:
        """The file ``file_id``, if stored."""
        with self._lock:
            return self._files.get(file_id)

    def files(self) -> list[StoredFile]:
        """Every stored file, oldest first."""
        with self._lock:
            return list(self._files.values())

    def delete_file(self, file_id: str) -> bool:
        """Delete the file ``file_id``; ``False`` if there was none."""
        with self._lock:
            return self._files.pop(file_id, None) is not None

    def add_job(self, job: Job) -> None:
        """Store a new job and record its creation."""
        custom_ids = tuple(result.custom_id for result in job.results)
        record = JobRecord(job.id, job.provider, job.endpoint, custom_ids, not job.errors)
        with self._lock:
            self._jobs[job.id] = job
            self._records.append(record)

    def job(self, job_id: str, provider: str) -> Job | None:
        """The ``provider`` job ``job_id``, if there is one."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.provider == provider else None

    def jobs(self, provider: str) -> list[Job]:
        """The ``provider``'s jobs, oldest first."""
        with self._lock:
            return [job for job in self._jobs.values() if job.provider == provider]

    def delete_job(self, job_id: str) -> None:
        """Forget the job ``job_id``."""
        with self._lock:
            self._jobs.pop(job_id, None)

    def cancel(self, job: Job, now: float) -> bool:
        """Cancel ``job`` at ``now`` if it is still ``validating`` or ``in_progress``; whether
        it is cancelled (now or before)."""
        with self._lock:
            if job.cancelled is not None:
                return True
            if status_at(job, now) not in CANCELLABLE:
                return False
            job.cancelled = now
        self.note("batches_cancelled", provider=job.provider)
        return True

    def newly_ended(self, provider: str, now: float) -> list[Job]:
        """The ``provider``'s jobs that ended by ``now`` and were not returned before, so
        that each job's result files are written exactly once."""
        with self._lock:
            ended = [
                job
                for job in self._jobs.values()
                if job.provider == provider and not job.settled and status_at(job, now) in FINAL
            ]
            for job in ended:
                job.settled = True
        return ended
