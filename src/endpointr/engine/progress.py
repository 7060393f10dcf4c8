"""A live progress line on stderr, and the one-line summary at the end of a run."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from .runner import RunStats

__all__ = ["Progress", "summary"]

_WIDTH = 24


def summary(stats: RunStats) -> str:
    """``N succeeded, M failed, K retries in T s``, the tokens the answers reported, and
    the rows answered without a request of their own (identical texts, the cache)."""
    line = (
        f"{stats.succeeded:,} succeeded, {stats.failed:,} failed, "
        f"{stats.retries:,} retries in {stats.elapsed:.1f} s"
    )
    if stats.output_tokens:
        line += f"; {stats.input_tokens:,} tokens in, {stats.output_tokens:,} out"
    elif stats.input_tokens:
        line += f"; {stats.input_tokens:,} tokens"
    if stats.copies:
        line += f"; {stats.copies:,} rows shared the answer of an identical text"
    if stats.cache_hits is not None:
        line += f"; cache: {stats.cache_hits:,} hits, {stats.cache_misses:,} misses"
    return line


def render(stats: RunStats) -> str:
    """One progress line: bar (when the total is known), rows, rate, errors, retries."""
    rate = stats.done / stats.elapsed if stats.elapsed > 0 else 0.0
    shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"  # an LLM run is not "0 rows/s"
    if stats.total:
        frac = min(1.0, stats.done / stats.total)
        filled = int(frac * _WIDTH)
        head = f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {stats.done:,}/{stats.total:,} rows"
    else:
        head = f"{stats.done:,} rows"
    line = (
        f"{head} | {shown} rows/s | {stats.failed:,} errors | {stats.retries:,} retries"
        f" | {stats.in_flight} in flight"
    )
    if stats.limit and stats.limit != stats.in_flight:
        line += f" (limit {stats.limit})"
    wait = stats.paused_until - time.monotonic()
    if wait > 0:
        line += f" | waiting {wait:.1f} s: {stats.waiting_for or 'server overloaded'}"
    return line


class Progress:
    """Redraws :func:`render` every ``interval`` seconds while a run goes on.

    On a terminal the line is rewritten in place; elsewhere (a log file, CI) a line is
    printed every ``log_interval`` seconds instead, so logs stay short.
    """

    def __init__(
        self,
        stats: RunStats,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        interval: float = 0.2,
        log_interval: float = 10.0,
    ) -> None:
        self._stats, self._enabled = stats, enabled
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval if self._tty else log_interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._enabled:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._draw()

    def _draw(self) -> None:
        line = render(self._stats)
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    async def finish(self, note: str | None = None) -> None:
        """Stop redrawing; print the final line and the summary (when enabled)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not self._enabled:
            return
        if self._tty:
            self._draw()
            self._stream.write("\n")
        self._stream.write(summary(self._stats) + ("\n" + note if note else "") + "\n")
        self._stream.flush()
