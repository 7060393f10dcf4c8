"""Flow control's pure decisions on a fake clock: the server's rate-limit headers, pacing
by them, token counts, the in-flight limit against a hard capacity, and the run-wide
holds. Nothing here sleeps or opens a socket; the scenarios against the fake server are
in test_engine.py and benchmarks/flow.py."""

from __future__ import annotations

import datetime as dt

import pytest

from endpointr.engine.flow import Flow, Request, ServerPacer
from endpointr.engine.limits import ConcurrencyLimit, RateLimiter
from endpointr.engine.ratelimits import Budget, parse_duration, read_budgets
from endpointr.engine.retry import RetryPolicy
from endpointr.engine.tokens import TokenCounter, estimate_tokens
from endpointr.errors import ConnectError, EndpointDownError, RateLimitError, ServerError
from endpointr.providers.base import reported_tokens
from endpointr.types import Row

WALL = 1_800_000_000.0  # a Unix time for RFC 3339 resets


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("2.5", 2.5),
        ("150us", 0.00015),
    ],
)
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 s", "1x", "s"])
def test_what_is_not_a_duration_is_none(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_headers_give_request_and_token_budgets() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "199000",
        "x-ratelimit-reset-tokens": "1m30s",
    }
    assert read_budgets(headers, WALL) == [
        Budget("requests", 499, 0.12, 500),
        Budget("tokens", 199000, 90.0, 200000),
    ]


def test_anthropic_headers_reset_at_an_rfc3339_time() -> None:
    reset = dt.datetime.fromtimestamp(WALL + 12, dt.UTC).isoformat().replace("+00:00", "Z")
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "100",
        "anthropic-ratelimit-input-tokens-reset": reset,
        "anthropic-ratelimit-output-tokens-remaining": "not a number",
        "anthropic-ratelimit-output-tokens-reset": reset,
    }
    budgets = read_budgets(headers, WALL)
    assert [(b.kind, b.remaining, b.limit) for b in budgets] == [
        ("requests", 3, 50),
        ("input-tokens", 100, 40000),
    ]
    assert budgets[0].reset == pytest.approx(12.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"ratelimit": '"default";r=7;t=30', "ratelimit-policy": '"default";q=100;w=60'},
        {"ratelimit": "limit=100, remaining=7, reset=30"},
        {"ratelimit-limit": "100", "ratelimit-remaining": "7", "ratelimit-reset": "30"},
        {"ratelimit-limit": "100, 100;w=60", "ratelimit-remaining": "7", "ratelimit-reset": "30"},
    ],
)
def test_the_ietf_forms_give_one_window(headers: dict[str, str]) -> None:
    assert read_budgets(headers, WALL) == [Budget("requests", 7, 30.0, 100, refills=False)]


def test_headers_without_budgets_give_none() -> None:
    assert read_budgets({"content-type": "application/json"}, WALL) == []
    assert read_budgets({"x-ratelimit-remaining-requests": "5"}, WALL) == []  # no reset


def test_a_bucket_refills_steadily_until_its_reset() -> None:
    pacer = ServerPacer()
    pacer.read([Budget("requests", 0, 10.0, limit=100)], marks=(0, 0), now=0.0)
    assert pacer.wait(now=0.0, tokens=0) == pytest.approx(0.1)  # 10 a second come back
    assert pacer.wait(now=0.1, tokens=0) == 0.0
    pacer.spend(0)
    assert pacer.wait(now=0.1, tokens=0) == pytest.approx(0.1)
    assert pacer.wait(now=50.0, tokens=0) == 0.0  # past the reset: full again


def test_a_reading_past_its_reset_still_counts_what_was_sent_since() -> None:
    pacer = ServerPacer()
    pacer.read([Budget("requests", 36, 0.2, limit=40)], marks=(0, 0), now=0.0)
    for _ in range(41):
        pacer.spend(0)
    # 4 came back by 0.2 s and 1 more by 0.25 s, but 41 went: empty, one back in 0.05 s
    assert pacer.wait(now=0.25, tokens=0) == pytest.approx(0.05, abs=1e-6)
    assert pacer.wait(now=10.0, tokens=0) == 0.0  # a reading this old no longer holds


def test_once_a_window_is_spent_nothing_goes_until_its_reset() -> None:
    pacer = ServerPacer()
    pacer.read([Budget("requests", 2, 30.0, 100, refills=False)], marks=(0, 0), now=0.0)
    assert pacer.wait(now=0.0, tokens=0) == 0.0
    pacer.spend(0)
    pacer.spend(0)
    assert pacer.wait(now=1.0, tokens=0) == pytest.approx(29.0)
    assert pacer.wait(now=30.0, tokens=0) == 0.0  # whole again


def test_sends_after_the_answered_request_count_against_what_it_said_was_left() -> None:
    pacer = ServerPacer()
    for _ in range(5):
        pacer.spend(0)
    # the answer to the 2nd request says 3 are left: the 3 sent after it used them
    pacer.read([Budget("requests", 3, 60.0, refills=False)], marks=(2, 0), now=1.0)
    assert pacer.wait(now=1.0, tokens=0) == pytest.approx(60.0)
    # a late answer to an earlier request does not replace the newer reading
    pacer.read([Budget("requests", 50, 60.0, refills=False)], marks=(1, 0), now=1.5)
    assert pacer.wait(now=1.5, tokens=0) == pytest.approx(59.5)


def test_token_budgets_pace_by_the_requests_tokens() -> None:
    pacer = ServerPacer()
    pacer.read([Budget("tokens", 500, 60.0, limit=6000)], marks=(0, 0), now=0.0)
    assert pacer.paces_tokens
    assert pacer.wait(now=0.0, tokens=400) == 0.0
    pacer.spend(400)
    # 100 left; 5500 refill over 60 s: 300 more tokens take 300 / (5500 / 60) s
    assert pacer.wait(now=0.0, tokens=400) == pytest.approx(300 / (5500 / 60))
    # a request bigger than the whole budget waits for a full bucket, then goes
    assert pacer.wait(now=60.0, tokens=10**9) == pytest.approx(400 / (5500 / 60))
    assert pacer.wait(now=65.0, tokens=10**9) == 0.0


def _flow(**kwargs: object) -> Flow:
    policy = RetryPolicy(max_attempts=3, base=1.0, cap=4.0, overload_timeout=30)
    return Flow(ConcurrencyLimit(10), policy, **kwargs)  # type: ignore[arg-type]


def test_flow_paces_before_the_429_from_an_answers_headers() -> None:
    flow = _flow()
    first = Request([Row(0, "a")])
    assert flow.admit(first, 0.0, 0) == 0.0
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m0s",
    }
    flow.answered(first, 200, headers, now=0.2)
    wait = flow.admit(Request([Row(1, "b")]), 0.2, 0)
    assert wait == pytest.approx(1.0)  # 60 a minute: one a second from the answer on
    assert flow.gate_until == pytest.approx(1.2)
    assert flow.waiting_for == "rate limited"
    assert flow.admit(Request([Row(1, "b")]), 1.2, 0) == 0.0


def test_overload_holds_the_run_and_spends_no_attempt() -> None:
    flow = _flow()
    request = Request([Row(0, "a")], attempt=3)
    error = RateLimitError("slow down", status=429, retry_after=2.0)
    delay = flow.retry_delay(request, error, now=10.0)
    assert delay is not None and delay >= 2.0
    assert request.waits == 1 and flow.gate_until == pytest.approx(12.0)
    assert flow.admit(Request([Row(1, "b")]), 11.0, 0) == pytest.approx(1.0)
    # 30 s of overload later the request gives up, saying so
    assert flow.retry_delay(request, error, now=41.0) is None
    assert error.message.startswith("still overloaded after 31 s")
    # a 502 spends attempts: the 3rd one was the last
    spent = Request([Row(2, "c")], attempt=3)
    assert flow.retry_delay(spent, ServerError("x", status=502), 0.0) is None


def test_no_connection_holds_the_run_then_stops_it_past_down_timeout() -> None:
    flow = _flow(down_timeout=20.0)
    request = Request([Row(0, "a")], attempt=1)
    refused = ConnectError("connection refused")
    assert flow.retry_delay(request, refused, now=0.0) is not None
    assert flow.waiting_for == "server not answering" and flow.gate_until > 0
    assert flow.retry_delay(request, refused, now=19.0) is not None
    assert flow.down is None
    assert flow.retry_delay(request, refused, now=20.5) is None
    assert isinstance(flow.down, EndpointDownError)
    assert "run the same call again to resume" in str(flow.down)


def test_an_answer_ends_the_outage_clock() -> None:
    flow = _flow(down_timeout=20.0)
    request = Request([Row(0, "a")], attempt=1)
    flow.retry_delay(request, ConnectError("refused"), now=0.0)
    flow.answered(request, 200, {}, now=15.0)
    assert flow.retry_delay(request, ConnectError("refused"), now=30.0) is not None
    assert flow.down is None


def _run_against_capacity(limit: ConcurrencyLimit, capacity: int, windows: int) -> tuple[int, int]:
    """Drive ``limit`` against a server that refuses what is over ``capacity``: each round
    the requests in flight (sent at the limit the round began with) are answered, those
    over capacity last, with a 429. Returns (answers,
    429s)."""
    answers = refused = 0
    clock = 0.0
    for _ in range(windows):
        clock += 1.0
        sent, over = limit.value, max(0, limit.value - capacity)
        for i in range(sent):
            answers += 1
            if i >= sent - over:
                refused += 1
                limit.on_overload(sent_at=clock - 0.5, now=clock, seen=sent)
            else:
                limit.on_success(0.1)
    return answers, refused


@pytest.mark.parametrize("auto", [False, True])
def test_against_a_hard_capacity_the_limit_rarely_probes_past_it(auto: bool) -> None:
    limit = ConcurrencyLimit(8, auto=True) if auto else ConcurrencyLimit(80)
    # a fixed limit 8x the capacity loses its first rounds to 429s, then stays under it
    answers, refused = _run_against_capacity(limit, capacity=10, windows=10)
    assert refused < (10 if auto else 200)
    answers, refused = _run_against_capacity(limit, capacity=10, windows=400)
    assert refused / answers < 0.01
    # and it stays close to the capacity: the mean of the last 100 rounds
    values = []
    for _ in range(100):
        _run_against_capacity(limit, capacity=10, windows=1)
        values.append(min(limit.value, 10))
    assert sum(values) / len(values) >= 8.5


def test_after_capacity_grows_the_limit_climbs_past_the_old_refusal() -> None:
    limit = ConcurrencyLimit(40)
    _run_against_capacity(limit, capacity=10, windows=200)
    _run_against_capacity(limit, capacity=30, windows=400)
    assert limit.value >= 25


def test_token_estimates_learn_from_reported_usage() -> None:
    assert estimate_tokens("x") == 1 and estimate_tokens("x" * 40) == 10
    counter = TokenCounter()
    assert not counter.exact  # no model: the four-characters rule
    for _ in range(40):
        counter.observe(estimated=100, reported=200)
    assert counter.corrected(100) == pytest.approx(200, abs=2)
    counter.observe(estimated=0, reported=5)  # nothing to learn from
    assert counter.corrected(100) == pytest.approx(200, abs=2)


def test_the_tokens_budget_is_corrected_by_what_an_answer_used() -> None:
    limiter = RateLimiter(tokens_per_minute=6000, now=0.0)  # 100 a second, burst 100
    assert limiter.counts_tokens
    assert limiter.try_acquire(now=0.0, tokens=50) == 0.0
    limiter.settle(now=0.0, charged=50, used=150)  # it used 100 more than charged
    assert limiter.try_acquire(now=0.0, tokens=10) == pytest.approx(0.6)  # 50 in debt


def test_the_flow_corrects_the_estimate_from_an_answers_usage() -> None:
    flow = _flow(rate=RateLimiter(tokens_per_minute=60000, now=0.0))
    request = Request([Row(0, "x" * 400)])

    def count_rows(rows: object, count: object) -> int:
        return 100

    cost = flow.cost(request, count_rows, allowance=20)  # type: ignore[arg-type]
    assert cost == 120
    assert flow.admit(request, 0.0, cost) == 0.0
    flow.answered(request, 200, {}, now=0.1, used=(300, 10))
    assert flow.counter.corrected(100) > 100


def test_usage_is_read_from_either_providers_answer() -> None:
    assert reported_tokens({"usage": {"prompt_tokens": 5, "total_tokens": 5}}) == (5, 0)
    assert reported_tokens({"usage": {"input_tokens": 9, "output_tokens": 4}}) == (9, 4)
    assert reported_tokens({"usage": None}) is None
    assert reported_tokens([1, 2]) is None


def test_a_pause_that_ended_before_the_run_waits_lets_it_go_on_at_once() -> None:
    """A pacing pause of a few microseconds can end between the launch that honoured it
    and the wait after it; with nothing in flight to wake the run, the wait must not be
    open-ended (a run stalled for good this way)."""
    import time

    import endpointr as er
    from endpointr.engine.runner import Engine
    from endpointr.engine.transport import Transport

    async def sink(results: object) -> None:
        return None

    endpoint = er.ENDPOINTS["hf.embed"].create(endpoint_url="http://127.0.0.1:9/embed")
    flow = Flow(ConcurrencyLimit(4), RetryPolicy())
    engine = Engine(endpoint, Transport(timeout=1.0), sink, batch_size=1, flow=flow)
    engine._ready.append(Request([Row(1, "a")]))
    flow.gate_until = time.monotonic() - 1e-6
    assert engine._next_deadline() == 0.0
    flow.gate_until = time.monotonic() + 60.0  # a pause under way: its end
    assert 59.0 < (engine._next_deadline() or 0.0) <= 60.0


def test_a_window_is_whole_at_its_reset_after_a_burst_it_already_counted() -> None:
    """Four requests sent at once, the last answer saying the window of 4 is spent until
    it resets in 1 s: at the reset all four are gone, so the next burst may go at once
    (counting them again held the run for twice the window)."""
    pacer = ServerPacer()
    sent = []
    for _ in range(4):
        marks = pacer.spend(0)
        sent.append((marks, (pacer.sent[0], pacer.sent[1])))
    for marks, through in sent:
        pacer.saw(0)
        window = Budget("requests", 0, 1.0, limit=4, refills=False)
        pacer.read([window], marks=marks, now=0.2, through=through)
    assert pacer.wait(now=0.5, tokens=0) == pytest.approx(0.7)
    assert pacer.wait(now=1.2, tokens=0) == 0.0
    pacer.spend(0)  # one sent after the answers: the next window holds it
    for _ in range(2):
        pacer.spend(0)
    assert pacer.wait(now=1.2, tokens=0) == 0.0  # 3 of 4
    pacer.spend(0)
    assert pacer.wait(now=1.2, tokens=0) > 0  # 4 of 4: wait
