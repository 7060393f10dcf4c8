"""The scheduler: rows in, requests of ``batch_size`` out, ``concurrent_requests`` in flight.

Rows are pulled from the source only when a slot is free, so memory is bounded by the
in-flight window, not by the input. A request that fails with a retryable error waits
in a heap with a not-before time and holds no slot while it waits. A request of several
rows refused with 400/413/422 is split in halves, down to single rows, so only the rows
at fault become error rows. Every row leaves through ``sink`` exactly once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ClientError, ConnectError, EndpointDownError, RequestError, ResponseFormatError
from ..providers.base import Endpoint
from ..types import HttpResponse, Result, Row
from .limits import ConcurrencyLimit, RateLimiter
from .retry import OVERLOAD_STATUSES, RetryPolicy, is_overload
from .transport import Transport

__all__ = ["Engine", "RunStats", "row_problem"]

Sink = Callable[[list[Result]], Awaitable[None]]
SPLIT_STATUSES = frozenset({400, 413, 422})
_REJECTED_FLUSH = 4096
# the longest pause between two tries of a server that refuses connections
_PROBE_CAP = 5.0
_END = object()


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
    paused_until: float = 0.0
    started: float = field(default_factory=time.monotonic)
    first_request: float | None = None
    ended: float | None = None
    interrupted: bool = False

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@dataclass(slots=True)
class _Request:
    rows: list[Row]
    attempt: int = 0
    sent_at: float = 0.0
    waits: int = 0
    overloaded_since: float | None = None


def row_problem(text: Any) -> str | None:
    """Why ``text`` cannot be sent, or ``None`` if it can."""
    if text is None:
        return "text is missing (null); nothing was sent"
    if isinstance(text, float) and math.isnan(text):
        return "text is missing (NaN); nothing was sent"
    if not isinstance(text, str):
        return f"text is not a string ({type(text).__name__}); nothing was sent"
    if not text.strip():
        return "text is empty; nothing was sent"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "text is not valid Unicode (a lone surrogate); nothing was sent"
    return None


class Engine:
    """Runs rows through one endpoint. Create one per run; call :meth:`run` once."""

    def __init__(
        self,
        endpoint: Endpoint,
        transport: Transport,
        sink: Sink,
        *,
        batch_size: int,
        limit: ConcurrencyLimit,
        policy: RetryPolicy,
        rate_limiter: RateLimiter | None = None,
        stats: RunStats | None = None,
        down_timeout: float = 60.0,
    ) -> None:
        self._endpoint, self._transport, self._sink = endpoint, transport, sink
        self._batch_size, self._limit, self._policy = batch_size, limit, policy
        self._rate = rate_limiter
        self.stats = stats or RunStats()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._ready: deque[_Request] = deque()
        self._waiting: list[tuple[float, int, _Request]] = []
        self._seq = itertools.count()
        self._rejected: list[Result] = []
        self._finished: deque[asyncio.Task[None]] = deque()
        self._wake = asyncio.Event()
        self._exhausted = False
        self._stopping = False
        self._gate_until = 0.0
        self._sending = 0
        self._sinking = 0
        self._source: Iterator[_Request | None] = iter(())
        self._down_timeout = down_timeout
        self._down_since: float | None = None
        self._down: EndpointDownError | None = None

    def stop(self) -> None:
        """Send nothing more; the requests in flight finish, :meth:`run` then returns."""
        self._stopping = True
        self.stats.interrupted = True
        self._wake.set()

    async def run(self, rows: Iterable[tuple[Any, Any]]) -> RunStats:
        """Send every ``(id, text)`` of ``rows``; returns the counters when all are settled."""
        self._source = self._requests(iter(rows))
        try:
            while True:
                self._launch()
                if self._rejected:
                    rejected, self._rejected = self._rejected, []
                    await self._emit(rejected)
                    continue
                if self._idle():
                    break
                await self._wait()
                while self._finished:
                    self._reap(self._finished.popleft())
        finally:
            await self._cancel_in_flight()
            self.stats.ended = time.monotonic()
        if self._down is not None:
            raise self._down
        return self.stats

    def _idle(self) -> bool:
        if self._in_flight:
            return False
        return self._stopping or (self._exhausted and not self._ready and not self._waiting)

    def _requests(self, rows: Iterator[tuple[Any, Any]]) -> Iterator[_Request | None]:
        """Requests of ``batch_size`` rows; ``None`` now and then to let rejected rows out."""
        batch: list[Row] = []
        for row_id, text in rows:
            problem = row_problem(text)
            if problem is not None:
                self._rejected.append(Result.failed(row_id, problem))
                if len(self._rejected) >= _REJECTED_FLUSH:
                    yield None
                continue
            batch.append(Row(row_id, text))
            if len(batch) >= self._batch_size:
                yield _Request(batch)
                batch = []
        if batch:
            yield _Request(batch)

    def _next(self, now: float) -> _Request | None:
        while self._waiting and self._waiting[0][0] <= now:
            self._ready.append(heapq.heappop(self._waiting)[2])
        if self._ready:
            return self._ready.popleft()
        if self._exhausted:
            return None
        request = next(self._source, _END)
        if request is _END:
            self._exhausted = True
            return None
        return request  # type: ignore[return-value]

    def _launch(self) -> None:
        """Start requests while slots are free. A slot is a request whose HTTP exchange is
        under way: it frees as soon as the answer is in, before the answer is read."""
        now = time.monotonic()
        while not (self._stopping or self._sinking) and self._sending < self._limit.value:
            if now < self._gate_until:
                return
            request = self._next(now)
            if request is None:
                return
            if self._rate is not None:
                wait = self._rate.try_acquire(now=now, tokens=self._cost(request))
                if wait > 0:
                    self._ready.appendleft(request)
                    self._gate_until = now + wait
                    return
            self._sending += 1
            task = asyncio.get_running_loop().create_task(self._attempt(request))
            task.add_done_callback(self._on_done)
            self._in_flight.add(task)
        self.stats.in_flight, self.stats.limit = self._sending, self._limit.value

    def _cost(self, request: _Request) -> int:
        return sum(len(row.text) for row in request.rows) // 4 + 1

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._finished.append(task)
        self._wake.set()

    async def _wait(self) -> None:
        """Until a request finishes, or a free slot can take a retry or pass the rate gate."""
        if self._finished:
            return
        self._wake.clear()
        timeout = self._next_deadline()
        if timeout is None:
            await self._wake.wait()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _next_deadline(self) -> float | None:
        if self._stopping or self._sending >= self._limit.value:
            return None
        now = time.monotonic()
        if self._gate_until > now:
            return self._gate_until - now
        if self._waiting:
            return max(0.0, self._waiting[0][0] - now)
        return None

    async def _attempt(self, request: _Request) -> None:
        """One attempt of ``request``, settled by the task itself: its rows go to the sink
        (or back in the queue), then the freed slot takes the next request at once."""
        outcome = await self._try(request)
        await self._settle(request, outcome)
        self._launch()

    async def _try(self, request: _Request) -> list[Result] | RequestError:
        request.attempt += 1
        request.sent_at = time.monotonic()
        self.stats.requests += 1
        if self.stats.first_request is None:
            self.stats.first_request = request.sent_at
        try:
            response = await self._exchange(request)
        finally:
            self._sending -= 1
        if isinstance(response, RequestError):
            return response
        self._down_since = None  # an answer, whatever it says: the server is up
        if response.status in OVERLOAD_STATUSES:
            self._limit.on_overload(request.sent_at, time.monotonic())
        elif 200 <= response.status < 300:
            self._limit.on_success(time.monotonic() - request.sent_at)
        try:
            if 200 <= response.status < 300:
                return self._endpoint.parse_response(request.rows, response)
            return self._endpoint.parse_error(response)
        except RequestError as exc:
            if exc.status is None:  # the error rows say which answer it was
                exc.status = response.status
            return exc
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            message = f"unexpected answer: {type(exc).__name__}: {exc}"
            return ResponseFormatError(message, status=response.status)

    async def _exchange(self, request: _Request) -> HttpResponse | RequestError:
        try:
            http_request = self._endpoint.build_request(request.rows)
        except (ValueError, TypeError) as exc:
            # not the server's fault and no retry will change it: final for these rows
            return RequestError(f"cannot build the request: {type(exc).__name__}: {exc}")
        try:
            return await self._transport.send(http_request)
        except RequestError as exc:
            return exc

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.stats.in_flight = self._sending
        task.result()  # an error in the sink (disk full, ...) ends the run here

    async def _settle(self, request: _Request, outcome: list[Result] | RequestError) -> None:
        if not isinstance(outcome, RequestError):
            for result in outcome:
                result.attempts = request.attempt
            await self._emit(outcome)
            return
        delay = self._delay(request, outcome)
        if delay is not None and not self._stopping:
            self.stats.retries += 1
            entry = (time.monotonic() + delay, next(self._seq), request)
            heapq.heappush(self._waiting, entry)
        elif self._splittable(request, outcome):
            # when stopping, neither split nor fail the rows: a re-run sends them again
            if not self._stopping:
                self.stats.splits += 1
                mid = len(request.rows) // 2
                halves = [_Request(request.rows[mid:]), _Request(request.rows[:mid])]
                self._ready.extendleft(halves)
        elif not self._stopping or not outcome.retryable:
            await self._emit([_failed(row, outcome, request.attempt) for row in request.rows])

    def _delay(self, request: _Request, error: RequestError) -> float | None:
        """The wait before the next attempt, ``None`` to give up. Overload spends no
        attempt: it pauses the whole run for the server's ``Retry-After`` and counts
        against the request's overload budget instead."""
        if isinstance(error, ConnectError):
            return self._wait_for_server(request, error)
        if not is_overload(error):
            return self._policy.delay(request.attempt - request.waits, error)
        now = time.monotonic()
        request.waits += 1
        if request.overloaded_since is None:
            request.overloaded_since = now
        waited = now - request.overloaded_since
        delay = self._policy.overload_delay(request.waits, waited, error)
        if delay is None:
            error.message = f"still overloaded after {waited:.0f} s: {error.message}"
            error.args = (error.message,)
        elif error.retry_after is not None:
            self._pause(now + error.retry_after)
        return delay

    def _wait_for_server(self, request: _Request, error: ConnectError) -> float | None:
        """No connection: hold new sends and try again with backoff, spending no attempt;
        past ``down_timeout`` of nothing but refusals, stop the run (what finished stays)."""
        now = time.monotonic()
        request.waits += 1
        if self._down_since is None:
            self._down_since = now
        down = now - self._down_since
        if down >= self._down_timeout:
            self._down = EndpointDownError(
                f"no connection for {down:.0f} s ({error.message}); the rows that finished "
                "are committed: run the same call again to resume"
            )
            self._stopping = True
            self._wake.set()
            return None
        delay = min(self._policy.backoff(request.waits), _PROBE_CAP)
        self._pause(now + delay)
        return delay

    def _pause(self, until: float) -> None:
        """Send nothing new before ``until``: the server asked the whole run to wait."""
        if until > self._gate_until:
            self._gate_until = until
            self.stats.paused_until = until
            self._wake.set()

    def _splittable(self, request: _Request, error: RequestError) -> bool:
        return (
            isinstance(error, ClientError)
            and error.status in SPLIT_STATUSES
            and len(request.rows) > 1
        )

    async def _emit(self, results: list[Result]) -> None:
        stats = self.stats
        failed = sum(1 for r in results if r.error)
        stats.done += len(results)
        stats.failed += failed
        stats.succeeded += len(results) - failed
        # while the sink is busy (a chunk being committed) nothing new starts: the rows a
        # crash could lose stay within the in-flight window plus one chunk
        self._sinking += 1
        try:
            await self._sink(results)
        finally:
            self._sinking -= 1

    async def _cancel_in_flight(self) -> None:
        for task in self._in_flight:
            task.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight.clear()
        self.stats.in_flight = 0


def _failed(row: Row, error: RequestError, attempts: int) -> Result:
    return Result(
        id=row.id,
        error=True,
        error_msg=error.message,
        status=error.status,
        attempts=attempts,
        cause=error,
    )
