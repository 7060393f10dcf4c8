"""The counters of one run, read live by the progress bar and written to the manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .latency import Latencies

__all__ = ["RunStats"]


@dataclass(slots=True)
class RunStats:
    """Counters of one run, read live by the progress bar. Times are ``time.monotonic``."""

    total: int | None = None
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    requests: int = 0
    splits: int = 0
    in_flight: int = 0
    limit: int = 0
    input_tokens: int = 0  # as the answers' usage reports them
    output_tokens: int = 0
    copies: int = 0  # rows answered with the answer of an earlier row of the same text
    overloaded: int = 0  # answers 429 or 529: the server asked to slow down
    latency: Latencies = field(default_factory=lambda: Latencies())  # of answered requests
    cache_hits: int | None = None  # texts answered from the response cache (None: no cache)
    cache_misses: int | None = None
    paused_until: float = 0.0
    waiting_for: str = ""
    started: float = field(default_factory=time.monotonic)
    first_request: float | None = None
    ended: float | None = None
    interrupted: bool = False

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started
