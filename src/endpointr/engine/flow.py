"""Flow control: when the next request may leave, and what an answer says about the pace.

:class:`Flow` holds everything the scheduler asks before a send and tells after an
answer: the in-flight limit (:class:`~endpointr.engine.limits.ConcurrencyLimit`), the
run-wide pause a server asked for (``Retry-After``, or a server that refuses
connections), the client's own requests- and tokens-per-minute budgets, and the
server's budgets read from its rate-limit headers (:class:`ServerPacer`), so the run
slows down before a 429 rather than after. It never sleeps: every method takes ``now``
and answers in seconds, so it tests on a fake clock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import AttemptTimeout, ConnectError, EndpointDownError, RequestError
from ..types import Row
from .limits import ConcurrencyLimit, RateLimiter
from .ratelimits import Budget, read_budgets
from .retry import RetryPolicy, is_overload
from .tokens import TokenCostFn, TokenCounter

__all__ = ["Flow", "Request", "ServerPacer"]

# the longest pause between two tries of a server that refuses connections
PROBE_CAP = 5.0
# budgets paced by the request's input tokens (output tokens are not known before)
_TOKEN_KINDS = frozenset({"tokens", "input-tokens"})
_RESET_RESOLUTION = 1.0
# how soon to look again when a reading's budget is spent past its reset
_STALE_POLL = 0.1
# in flight until the first good answer: that the server takes these requests at all, and
# what it allows (its rate-limit headers), are not known before
FIRST_SENDS = 4
# answers that say "too many"; a 503 says "not now" (a restart, an outage, a flaky
# backend), which fewer requests in flight would not help: it waits, and pauses the run
# for its Retry-After, but leaves the limit alone
_CONGESTION = frozenset({429, 529})


@dataclass(slots=True)
class Request:
    """Rows travelling together, and what flow control knows of their tries."""

    rows: list[Row]
    attempt: int = 0
    sent_at: float = 0.0
    waits: int = 0
    overloaded_since: float | None = None
    tokens: int | None = None  # the input tokens estimated, once counted
    charged: int = 0  # tokens taken from the budgets for the attempt under way
    marks: tuple[float, float] = (0.0, 0.0)  # what the server had surely seen at its send
    through: tuple[float, float] = (0.0, 0.0)  # what had been sent, itself included
    limit: int = 0  # the in-flight limit at its send
    built_by: object = None  # the endpoint whose wire format the last attempt used


@dataclass(slots=True)
class _Reading:
    budget: Budget
    at: float
    spent_before: float
    sent_through: float = 0.0  # sent up to and with the answered request


class ServerPacer:
    """Keeps the run within the budgets the server states in its rate-limit headers.

    Each answer's headers replace what is known of each budget (unless a later-sent
    request already answered). What may be spent now is what the server said was left,
    minus what it may not have counted yet: everything sent since, and what was in flight
    when the answered request left (requests on other connections may arrive after it).
    What is missing comes back steadily until the reset for a bucket (OpenAI, Anthropic),
    all at once at the reset for a window (the IETF fields).

    >>> pacer = ServerPacer()
    >>> pacer.read([Budget("requests", 0, 2.0, limit=10)], marks=(0, 0), now=0.0)
    >>> round(pacer.wait(now=0.0, tokens=0), 3)  # 10 per 2 s come back: one in 0.2 s
    0.2
    >>> pacer.read([Budget("requests", 0, 2.0, 10, refills=False)], marks=(1, 0), now=0.0)
    >>> pacer.wait(now=0.5, tokens=0)
    1.5
    """

    def __init__(self) -> None:
        self._readings: dict[str, _Reading] = {}
        self.sent = [0.0, 0.0]  # requests and tokens sent so far
        self.seen = [0.0, 0.0]  # requests and tokens answered so far: the server saw them
        self.paces_tokens = False

    def read(
        self,
        budgets: list[Budget],
        *,
        marks: tuple[float, float],
        now: float,
        through: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Take the ``budgets`` of an answer to a request sent when the totals were
        ``marks``, and ``through`` had been sent with it."""
        for budget in budgets:
            tokens = budget.kind in _TOKEN_KINDS
            spent = marks[1] if tokens else marks[0]
            if budget.kind == "output-tokens":
                continue
            old = self._readings.get(budget.kind)
            if old is None or spent >= old.spent_before:
                self._readings[budget.kind] = _Reading(
                    budget, now, spent, through[1] if tokens else through[0]
                )
                self.paces_tokens = self.paces_tokens or budget.kind in _TOKEN_KINDS

    def wait(self, *, now: float, tokens: int) -> float:
        """Seconds until a request of ``tokens`` fits every known budget (0.0: now)."""
        longest = 0.0
        for kind, reading in self._readings.items():
            cost = tokens if kind in _TOKEN_KINDS else 1
            sent = self.sent[1 if kind in _TOKEN_KINDS else 0]
            spent, since = sent - reading.spent_before, sent - reading.sent_through
            longest = max(longest, _wait(reading, cost, spent, since, now))
        return longest

    def spend(self, tokens: int) -> tuple[float, float]:
        """Count one request of ``tokens`` as sent; returns its marks: the requests and
        tokens the server has surely counted once it counts this one."""
        self.sent[0] += 1
        self.sent[1] += tokens
        return self.seen[0] + 1, self.seen[1] + tokens

    def saw(self, tokens: int) -> None:
        """Count an answer to a request of ``tokens``: it reached the server."""
        self.seen[0] += 1
        self.seen[1] += tokens


def _wait(reading: _Reading, cost: float, spent: float, since: float, now: float) -> float:
    """Seconds until ``cost`` more fits the budget of ``reading``, ``spent`` having been
    sent that it may not count (``since`` of it after the answered request). A bucket
    refills at the rate its reset implies, up to its limit, while what is sent drains
    it; a window is whole at its reset, less what was sent after the answered request
    (what was sent before it and counted is gone with the window)."""
    budget, elapsed = reading.budget, now - reading.at
    if budget.limit is None:
        whole = elapsed >= budget.reset
        return 0.0 if whole or budget.remaining - spent >= cost else budget.reset - elapsed
    cost = min(cost, budget.limit)  # a request larger than the whole budget still goes
    missing = budget.limit - budget.remaining
    # a reset rounded down to now while the budget is not whole (RFC 3339 times have
    # whole seconds): take the resolution, a second, rather than a whole budget
    reset = budget.reset if budget.reset > 0 or not missing else _RESET_RESOLUTION
    rate = missing / reset if budget.refills and reset > 0 else 0.0
    if rate > 0:
        left = min(budget.limit, budget.remaining + rate * elapsed - spent)
        refill = budget.limit / rate  # from empty to whole
    else:
        if elapsed < reset:
            left = budget.remaining - spent
        elif budget.refills:  # a bucket read whole: what was in flight may still drain it
            left = budget.limit - spent
        else:  # a window: what it had counted left with it
            left = budget.limit - since
        refill = reset
    if left >= cost or elapsed >= 2 * max(refill, reset):
        return 0.0  # it fits, or the reading is too old to hold the run on
    if rate > 0:
        return (cost - left) / rate
    return reset - elapsed if elapsed < reset else _STALE_POLL


@dataclass(slots=True)
class Flow:
    """What the scheduler asks before each send and tells after each answer."""

    limit: ConcurrencyLimit
    policy: RetryPolicy
    rate: RateLimiter | None = None
    down_timeout: float = 60.0
    timeout: float = 30.0
    counter: TokenCounter = field(default_factory=TokenCounter)
    pacer: ServerPacer = field(default_factory=ServerPacer)
    gate_until: float = 0.0
    waiting_for: str = ""
    down: EndpointDownError | None = None
    good_answers: int = 0
    _down_since: float | None = None
    _recent: deque[float] = field(default_factory=deque)  # good answers in the last timeout

    @property
    def in_flight_limit(self) -> int:
        """Requests allowed in flight now: the limit, and no more than ``FIRST_SENDS``
        until the first good answer is in (a server that refuses every request sees a
        few of them, not a storm)."""
        value = self.limit.value
        return value if self.good_answers else min(value, FIRST_SENDS)

    def admit(self, request: Request, now: float, cost: int) -> float:
        """0.0 if ``request`` may leave now (its tokens are then taken), else seconds to
        wait. ``cost`` is the request's token cost (see :meth:`cost`)."""
        if now < self.gate_until:
            return self.gate_until - now
        wait = self.pacer.wait(now=now, tokens=cost)
        if wait > 0:
            self._hold(now + wait, "rate limited")
            return wait
        if self.rate is not None:
            wait = self.rate.try_acquire(now=now, tokens=cost)
            if wait > 0:
                self._hold(now + wait, "requests_per_minute / tokens_per_minute")
                return wait
        request.charged = cost
        request.marks = self.pacer.spend(cost)
        request.through = (self.pacer.sent[0], self.pacer.sent[1])
        request.limit = self.limit.value
        return 0.0

    def needs_tokens(self) -> bool:
        """Whether a send must know its token cost (a token budget applies)."""
        return self.pacer.paces_tokens or (self.rate is not None and self.rate.counts_tokens)

    def cost(self, request: Request, count: TokenCostFn, allowance: int) -> int:
        """The tokens ``request`` may use: its input, estimated once and corrected by the
        usage answers report, plus ``allowance`` (the most an answer may have)."""
        if request.tokens is None:
            request.tokens = count(request.rows, self.counter.count)
        return self.counter.corrected(request.tokens) + allowance

    def answered(
        self,
        request: Request,
        status: int,
        headers: Mapping[str, str],
        now: float,
        used: tuple[int, int] | None = None,
    ) -> None:
        """Learn from an answer (any status): the server is up, its budgets, its load,
        and the tokens the request really used."""
        self._down_since = None
        self.pacer.saw(request.charged)
        budgets = read_budgets(headers, time.time()) if headers else []
        if budgets:
            self.pacer.read(budgets, marks=request.marks, now=now, through=request.through)
        if status in _CONGESTION:
            self.limit.on_overload(request.sent_at, now, seen=request.limit)
        elif 200 <= status < 300:
            self.good_answers += 1
            self.limit.on_success(now - request.sent_at)
            self._recent.append(now)
            while self._recent[0] < now - self.timeout:  # only the last timeout's answers
                self._recent.popleft()
            if used is not None and request.tokens:
                self.counter.observe(estimated=request.tokens, reported=used[0])
                if self.rate is not None:
                    self.rate.settle(now=now, charged=request.charged, used=sum(used))

    def retry_delay(self, request: Request, error: RequestError, now: float) -> float | None:
        """The wait before ``request`` goes again, ``None`` to give up. Overload spends no
        attempt: it pauses the whole run for the server's ``Retry-After`` and counts
        against the request's overload budget instead; no connection holds the run. A
        timeout spends an attempt and lowers the in-flight limit, as congestion does."""
        if isinstance(error, ConnectError):
            return self._wait_for_server(request, error, now)
        if isinstance(error, AttemptTimeout):
            self.limit.on_overload(
                request.sent_at, now, at_most=self._sustained(now), seen=request.limit
            )
        if not is_overload(error):
            return self.policy.delay(request.attempt - request.waits, error)
        request.waits += 1
        if request.overloaded_since is None:
            request.overloaded_since = now
        waited = now - request.overloaded_since
        delay = self.policy.overload_delay(request.waits, waited, error)
        if delay is None:
            error.message = f"still overloaded after {waited:.0f} s: {error.message}"
            error.args = (error.message,)
        elif error.retry_after is not None:
            reason = "rate limited" if error.status == 429 else "server overloaded"
            self._hold(now + error.retry_after, reason)
        return delay

    def _sustained(self, now: float) -> int:
        """The requests in flight that would each wait about half of ``timeout`` at a
        server answering at its recent rate (Little's law): queued at a server that serves
        one or a few at a time, more in flight only makes more of them time out."""
        recent = self._recent
        while recent and recent[0] < now - self.timeout:
            recent.popleft()
        return max(1, len(recent) // 2)

    def _wait_for_server(self, request: Request, error: ConnectError, now: float) -> float | None:
        """Hold new sends and try again with backoff, spending no attempt; past
        ``down_timeout`` of nothing but refusals, the run stops (what finished stays)."""
        request.waits += 1
        if self._down_since is None:
            self._down_since = now
        down = now - self._down_since
        if down >= self.down_timeout:
            self.down = EndpointDownError(
                f"no connection for {down:.0f} s ({error.message}); the rows that finished "
                "are committed: run the same call again to resume"
            )
            return None
        delay = min(self.policy.backoff(request.waits), PROBE_CAP)
        self._hold(now + delay, "server not answering")
        return delay

    def _hold(self, until: float, reason: str) -> None:
        """Send nothing new before ``until``."""
        if until > self.gate_until:
            self.gate_until = until
            self.waiting_for = reason
