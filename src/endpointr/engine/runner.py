"""The scheduler: rows in, requests of ``batch_size`` out, ``concurrent_requests`` in flight.

Rows are pulled from the source only when a slot is free, so memory is bounded by the
in-flight window, not by the input. A request that fails with a retryable error waits
in a heap with a not-before time and holds no slot while it waits; requests waiting
on the server go out before fresh rows. When the next one may leave, and how many may
be in flight, is :class:`~endpointr.engine.flow.Flow`'s to say. A request of several
rows refused with 400/413/422 is split in halves, down to single rows, so only the rows
at fault become error rows. Every row leaves through ``sink`` exactly once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from ..errors import ClientError, RefusedError, RequestError, ResponseFormatError
from ..providers.base import Answer, Endpoint
from ..types import HttpResponse, Result, Row
from .flow import Flow, Request
from .refusals import Refusals, is_refusal
from .reuse import WAIT, Reuse
from .stats import RunStats
from .transport import Transport

__all__ = ["Engine", "RunStats", "row_problem"]

Sink = Callable[[list[Result]], Awaitable[None]]
SPLIT_STATUSES = frozenset({400, 413, 422})
_QUIET_FLUSH = 4096  # rows read without a request before the loop gets a turn
_END = object()


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


def _estimate(text: str) -> int:
    """:func:`~endpointr.providers.base.estimate_tokens`, without its checks."""
    return (len(text) + 3) // 4 or 1


class Engine:
    """Runs rows through one endpoint. Create one per run; call :meth:`run` once."""

    def __init__(
        self,
        endpoint: Endpoint,
        transport: Transport,
        sink: Sink,
        *,
        batch_size: int,
        flow: Flow,
        stats: RunStats | None = None,
        notify: Callable[[str], None] | None = None,
        reuse: Reuse | None = None,
    ) -> None:
        self.endpoint, self._transport, self._sink = endpoint, transport, sink
        self._reuse = reuse
        self._batch_size, self._flow = batch_size, flow
        self._allowance = endpoint.output_allowance()
        self.stats = stats or RunStats()
        self.changes: list[str] = []  # what the run changed in its requests, and why
        self.served: dict[str, Any] | None = None  # what the first good answer was made with
        self._notify = notify or _to_stderr
        self._refusals = Refusals()
        self._refused: RefusedError | None = None
        # error rows of the refusal streak under way (at most threshold - 1 requests'),
        # written once it proves to be the rows'
        self._held: list[Result] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._ready: deque[Request] = deque()
        self._waiting: list[tuple[float, int, Request]] = []
        self._seq = itertools.count()
        self._unsent: list[Result] = []  # rows settled without a request of their own
        self._finished: deque[asyncio.Task[None]] = deque()
        self._wake = asyncio.Event()
        self._exhausted = False
        self._stopping = False
        self._sending = 0
        self._sinking = 0
        self._source: Iterator[Request | None] = iter(())

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
                if self._unsent:
                    unsent, self._unsent = self._unsent, []
                    await self._emit(unsent)
                    continue
                if self._idle():
                    if self._held and self._refused is None:
                        held, self._held = self._held, []
                        await self._emit(held)
                        continue
                    break
                await self._wait()
                while self._finished:
                    self._reap(self._finished.popleft())
        finally:
            await self._cancel_in_flight()
            self.stats.ended = time.monotonic()
        if self._flow.down is not None:
            raise self._flow.down
        if self._refused is not None:
            raise self._refused
        return self.stats

    def _idle(self) -> bool:
        if self._in_flight:
            return False
        return self._stopping or (self._exhausted and not self._ready and not self._waiting)

    def _requests(self, rows: Iterator[tuple[Any, Any]]) -> Iterator[Request | None]:
        """Requests of ``batch_size`` rows; ``None`` now and then to let the rows settled
        without a request out (rejected, or answered by :class:`Reuse`)."""
        batch: list[Row] = []
        reuse, quiet = self._reuse, 0
        size, budget, per_input, count = self._packing()
        tokens = 0
        for row_id, text in rows:
            # the common case, a plain ASCII text with something in it, needs no more look
            plain = type(text) is str and text.isascii() and text and not text.isspace()
            problem = None if plain else row_problem(text)
            if count is not None and problem is None:
                n = count(text)
                if per_input is not None and n > per_input:
                    problem = (
                        f"text has {n:,} tokens, more than the {per_input:,} the model takes "
                        "per input; nothing was sent (shorten it)"
                    )
                elif budget is not None and batch and tokens + n > budget:
                    yield Request(batch)  # the next row would take it past the token limit
                    batch, tokens = [], 0
            known = None if problem is not None or reuse is None else reuse.take(row_id, text)
            if problem is not None or known is not None:
                if problem is not None:
                    self._unsent.append(Result.failed(row_id, problem))
                elif known is not WAIT:
                    self._unsent.append(known)  # type: ignore[arg-type]
                quiet += 1
                if quiet >= _QUIET_FLUSH:
                    quiet = 0
                    yield None
                continue
            batch.append(Row(row_id, text))
            if count is not None:
                tokens += n
            if len(batch) >= size:
                yield Request(batch)
                batch, tokens = [], 0
        if batch:
            yield Request(batch)

    def _packing(self) -> tuple[int, int | None, int | None, Callable[[str], int] | None]:
        """Rows per request, tokens per request, tokens per input (refused only when
        counted exactly and the server does not truncate), and how to count a text
        (``None``: no token limit applies)."""
        packing = self.endpoint.packing()
        if packing is None:
            return self._batch_size, None, None, None
        size = min(self._batch_size, packing.max_rows or self._batch_size)
        counter = self._flow.counter
        exact = counter.exact and not packing.truncates
        per_input = packing.max_input_tokens if exact else None
        if per_input is None and (packing.max_tokens is None or size == 1):
            return size, None, None, None  # nothing to count: one row a request goes as it is
        if not counter.exact:  # the rule of thumb, inline: one token per four characters
            return size, packing.max_tokens, per_input, _estimate
        return size, packing.max_tokens, per_input, counter.count

    def _next(self, now: float) -> Request | None:
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
        flow = self._flow
        while not (self._stopping or self._sinking) and self._sending < flow.in_flight_limit:
            if now < flow.gate_until:
                break
            request = self._next(now)
            if request is None:
                break
            if flow.admit(request, now, self._cost(request)) > 0:
                self._ready.appendleft(request)
                self._show_wait()
                break
            self._sending += 1
            task = asyncio.get_running_loop().create_task(self._attempt(request))
            task.add_done_callback(self._on_done)
            self._in_flight.add(task)
        self.stats.in_flight, self.stats.limit = self._sending, flow.in_flight_limit

    def _cost(self, request: Request) -> int:
        if not self._flow.needs_tokens():
            return 0
        return self._flow.cost(request, self.endpoint.token_cost, self._allowance)

    def _show_wait(self) -> None:
        flow, stats = self._flow, self.stats
        if flow.gate_until > stats.paused_until:
            stats.paused_until, stats.waiting_for = flow.gate_until, flow.waiting_for

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
        """Seconds until :meth:`_launch` may send again with a slot free (``None``: only
        when a request finishes). A pause that ended since the last launch looked at the
        clock is 0.0: nothing in flight would wake the run otherwise."""
        if self._stopping or self._sinking or self._sending >= self._flow.in_flight_limit:
            return None
        now = time.monotonic()
        if self._flow.gate_until > now:
            return self._flow.gate_until - now
        if self._ready or not self._exhausted:
            return 0.0
        if self._waiting:
            return max(0.0, self._waiting[0][0] - now)
        return None

    async def _attempt(self, request: Request) -> None:
        """One attempt of ``request``, settled by the task itself: its rows go to the sink
        (or back in the queue), then the freed slot takes the next request at once."""
        outcome = await self._try(request)
        await self._settle(request, outcome)
        self._launch()

    async def _try(self, request: Request) -> list[Result] | RequestError:
        endpoint = request.built_by = self.endpoint
        request.attempt += 1
        request.sent_at = time.monotonic()
        self.stats.requests += 1
        if self.stats.first_request is None:
            self.stats.first_request = request.sent_at
        try:
            response = await self._exchange(request, endpoint)
        finally:
            self._sending -= 1
        if isinstance(response, RequestError):
            return response
        self.stats.latency.add(time.monotonic() - request.sent_at)
        if response.status in (429, 529):
            self.stats.overloaded += 1
        answer: Answer | None = None
        try:
            if 200 <= response.status < 300:
                first = self.served is None  # only the first good answer is described
                answer = endpoint.read_answer(request.rows, response, describe=first)
                if answer.served is not None:
                    self._first_served(endpoint, answer.served)
                return answer.results
            return endpoint.parse_error(response)
        except RequestError as exc:
            if exc.status is None:  # the error rows say which answer it was
                exc.status = response.status
            return exc
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            message = f"unexpected answer: {type(exc).__name__}: {exc}"
            return ResponseFormatError(message, status=response.status)
        finally:
            used = answer.tokens if answer is not None else None
            if used is not None:
                self.stats.input_tokens += used[0]
                self.stats.output_tokens += used[1]
            flow, now = self._flow, time.monotonic()
            flow.answered(request, response.status, response.headers, now, used)

    async def _exchange(self, request: Request, endpoint: Endpoint) -> HttpResponse | RequestError:
        try:
            http_request = endpoint.build_request(request.rows)
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

    async def _settle(self, request: Request, outcome: list[Result] | RequestError) -> None:
        if not isinstance(outcome, RequestError):
            if not self._refusals.succeeded:
                self._refusals.success()
                held, self._held = self._held, []
                if held:
                    await self._emit(held)
            for result in outcome:
                result.attempts = request.attempt
            await self._emit(outcome)
            return
        if self._resend_changed(request, outcome):
            return
        splittable = self._splittable(request, outcome)
        if not splittable and not self._refusals.succeeded:
            streak = self._refusals.streak
            if self._refusals.refused(outcome, id(request)):
                self._stop_refused(outcome)
                return
            if self._refusals.streak != streak and self._held:
                held, self._held = self._held, []  # another error: those were the rows'
                await self._emit(held)
        delay = self._flow.retry_delay(request, outcome, time.monotonic())
        self._show_wait()
        if self._flow.down is not None:
            self._stopping = True
            self._wake.set()
        elif self._flow.gate_until > time.monotonic():
            self._wake.set()
        if delay is not None and not self._stopping:
            self.stats.retries += 1
            entry = (time.monotonic() + delay, next(self._seq), request)
            heapq.heappush(self._waiting, entry)
        elif splittable:
            # when stopping, neither split nor fail the rows: a re-run sends them again
            if not self._stopping:
                self.stats.splits += 1
                mid = len(request.rows) // 2
                halves = [Request(request.rows[mid:]), Request(request.rows[:mid])]
                self._ready.extendleft(halves)
        elif self._refused is None and (not self._stopping or not outcome.retryable):
            failed = [_failed(row, outcome, request.attempt) for row in request.rows]
            if self._refusals.succeeded or not is_refusal(outcome):
                await self._emit(failed)
            else:
                self._held.extend(failed)

    def _first_served(self, endpoint: Endpoint, served: dict[str, Any]) -> None:
        """Keep what the first good answer was made with; say once where it differs
        from what was asked (a server that ignores ``dimensions`` or ``model``)."""
        self.served = served
        for name, asked in endpoint.asked().items():
            got = served.get(name)
            if asked is None or got is None or _same(name, asked, got):
                continue
            self._notify(
                f"the server answered with {name}={got!r} where {name}={asked!r} was asked "
                "(it ignores the setting); the results and the manifest's 'served' are "
                "what it returned"
            )

    def _resend_changed(self, request: Request, error: RequestError) -> bool:
        """Whether ``request`` goes again at once, spending no attempt, in a form the
        server may take: the run switched forms (now, or while it was in flight)."""
        if request.built_by is self.endpoint:
            change = self.endpoint.fallback(error)
            if change is None:
                return False
            self.endpoint, note = change
            self.changes.append(note)
            self._notify(note)
        request.waits += 1
        self._ready.appendleft(request)
        return True

    def _stop_refused(self, error: RequestError) -> None:
        """Every request so far met ``error``: stop, leaving the rows unsent for a re-run."""
        status = f"HTTP {error.status}: " if error.status else ""
        self._refused = RefusedError(
            f"the server refuses every request the same way ({status}{error.message}); "
            "this is a setting to fix (route, model, dimensions, encoding, format), not "
            "the rows: nothing was marked failed, fix it and run the same call again"
        )
        self._held = []
        self._stopping = True
        self._wake.set()

    def _splittable(self, request: Request, error: RequestError) -> bool:
        return (
            isinstance(error, ClientError)
            and error.status in SPLIT_STATUSES
            and len(request.rows) > 1
        )

    async def _emit(self, results: list[Result]) -> None:
        if self._reuse is not None:
            results = self._reuse.settle(results)
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


def _same(name: str, asked: Any, got: Any) -> bool:
    """Whether an answer's ``got`` is what was ``asked``; a model may answer with a
    dated version of the name asked for (``gpt-4o-mini-2024-07-18``)."""
    if name == "model" and isinstance(asked, str) and isinstance(got, str):
        return got == asked or got.startswith(asked)
    return bool(got == asked)


def _to_stderr(note: str) -> None:
    print(f"endpointr: {note}", file=sys.stderr)


def _failed(row: Row, error: RequestError, attempts: int) -> Result:
    return Result(
        id=row.id,
        error=True,
        error_msg=error.message,
        status=error.status,
        attempts=attempts,
        cause=error,
    )
