"""The engine's pure decisions (retry, limits, Retry-After) and its behaviour under load."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pandas as pd
import pytest

import endpointr as er
from endpointr.engine.limits import ConcurrencyLimit, RateLimiter
from endpointr.engine.retry import RetryPolicy
from endpointr.errors import ClientError, RateLimitError, ServerError
from endpointr.providers.base import classify_status, parse_retry_after
from endpointr.testing import FakeServer, Fault


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base=1.0, cap=8.0)
    low = [policy.delay(n, ServerError("x"), draw=0.0) for n in range(1, 7)]
    high = [policy.delay(n, ServerError("x"), draw=0.999) for n in range(1, 7)]
    assert low == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(
        h is not None and 1.99 * lo < h <= 2 * lo
        for lo, h in zip(low, high, strict=True)
        if lo is not None
    )


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, max_retry_after=60)
    assert policy.delay(1, RateLimitError("x", retry_after=7.0), draw=0.0) == 7.0
    assert policy.delay(1, RateLimitError("x", retry_after=7.0), draw=1.0) == pytest.approx(7.7)
    assert policy.delay(1, RateLimitError("x", retry_after=900.0), draw=0.0) == 60


def test_no_retry_for_final_errors_or_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.delay(1, ClientError("bad", status=400)) is None
    assert policy.delay(3, ServerError("x", status=503)) is None
    assert policy.delay(2, ServerError("x", status=503)) is not None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (408, ServerError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (529, RateLimitError),
        (400, ClientError),
        (401, ClientError),
        (404, ClientError),
        (422, ClientError),
    ],
)
def test_status_classification(status: int, kind: type) -> None:
    error = classify_status(status, "m", None)
    assert type(error) is kind
    assert error.retryable == (kind is not ClientError)


def test_retry_after_header_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_rate_limiter_allows_one_seconds_burst_then_spaces_requests() -> None:
    limiter = RateLimiter(requests_per_minute=120, now=0.0)
    assert [limiter.try_acquire(now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.try_acquire(now=0.0) == pytest.approx(0.5)
    assert limiter.try_acquire(now=0.5) == 0.0
    assert limiter.try_acquire(now=0.5) == pytest.approx(0.5)


def test_token_budget_gates_large_requests() -> None:
    limiter = RateLimiter(tokens_per_minute=6000, now=0.0)
    assert limiter.try_acquire(now=0.0, tokens=80) == 0.0
    assert limiter.try_acquire(now=0.0, tokens=50) == pytest.approx(0.3)


def test_auto_limit_grows_while_latency_holds_and_shrinks_on_overload() -> None:
    limit = ConcurrencyLimit(4, auto=True)
    for _ in range(28):  # slow start: one more per good answer
        limit.on_success(0.1)
    assert limit.value == 32
    limit.on_overload()
    assert limit.value == 22
    limit.on_overload()
    assert limit.value == 22
    for _ in range(22 * 5):
        limit.on_success(0.5)
    assert limit.value < 22


def test_fixed_limit_is_a_ceiling_overload_lowers_and_good_answers_restore() -> None:
    limit = ConcurrencyLimit(20)
    limit.on_overload()
    assert limit.value == 14
    limit.on_overload()  # at most once per window of answers
    assert limit.value == 14
    for _ in range(14 * 10):
        limit.on_success(0.1)
    assert limit.value == 20  # back to the number given, never above it
    for _ in range(100):
        limit.on_success(0.1)
    assert limit.value == 20


def test_overload_waits_spend_time_not_attempts() -> None:
    from endpointr.errors import RateLimitError, ServerError

    policy = RetryPolicy(max_attempts=2, base=1.0, cap=8.0, overload_timeout=60)
    overloaded = RateLimitError("slow down", status=429)
    assert policy.overload_delay(50, 59.0, overloaded, draw=0.0) == 4.0  # capped backoff
    assert policy.overload_delay(1, 60.0, overloaded) is None
    told = RateLimitError("slow down", status=429, retry_after=3.0)
    assert policy.overload_delay(1, 0.0, told, draw=0.0) == 3.0
    assert policy.delay(2, ServerError("x", status=502)) is None


def test_auto_concurrency_settles_at_the_servers_capacity() -> None:
    df = pd.DataFrame({"id": range(2400), "text": [f"t {i}" for i in range(2400)]})
    with FakeServer(latency=0.02, capacity=6) as server:
        out = er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            output_dir=None,
            progress=False,
            batch_size=4,
            concurrent_requests="auto",
            max_retries=10,
        )
        statuses = [r.status for r in server.stats.requests]
    assert not out[".error"].any()
    assert server.stats.peak_in_flight == 6
    assert statuses.count(429) < 0.15 * statuses.count(200)


def test_requests_per_minute_is_honoured(server: FakeServer) -> None:
    df = pd.DataFrame({"id": range(12), "text": [f"t{i}" for i in range(12)]})
    er.hf_embed_df(
        df,
        text_var="text",
        id_var="id",
        endpoint_url=server.url + "/embed",
        key_name=None,
        batch_size=1,
        concurrent_requests=12,
        output_dir=None,
        progress=False,
        requests_per_minute=480,
    )
    starts = sorted(r.t_start for r in server.stats.requests)
    assert len(starts) == 12
    # 8 a second with a burst of 8: the last 4 leave over at least half a second.
    assert starts[-1] - starts[0] >= (12 - 8) / 8 - 0.05
    assert starts[7] - starts[0] < 0.25


def test_a_waiting_retry_does_not_spin_the_loop(server: FakeServer) -> None:
    from endpointr.testing import Fault

    df = pd.DataFrame({"id": range(2), "text": ["a", "b"]})
    server.configure(latency=0.6)
    server.script(Fault.status(429, retry_after=0.01))
    cpu = time.process_time()
    out = er.hf_embed_df(
        df,
        text_var="text",
        id_var="id",
        endpoint_url=server.url + "/embed",
        key_name=None,
        output_dir=None,
        progress=False,
        batch_size=1,
        concurrent_requests=1,
    )
    used = time.process_time() - cpu
    assert not out[".error"].any()
    assert [r.status for r in server.stats.requests] == [429, 200, 200]
    # the retry is due while the only slot is busy for 0.6 s: waiting must not burn a core
    assert used < 0.3, used


@pytest.mark.parametrize("concurrent", [8, 32])
def test_too_many_requests_in_flight_slow_the_run_and_lose_no_row(concurrent: int) -> None:
    df = pd.DataFrame({"id": range(400), "text": [f"t {i}" for i in range(400)]})
    with FakeServer(latency=0.03, capacity=4, retry_after=0.02) as server:
        out = er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            output_dir=None,
            progress=False,
            batch_size=4,
            concurrent_requests=concurrent,
        )
        statuses = [r.status for r in server.stats.requests]
    assert not out[".error"].any(), out[out[".error"]][".error_msg"].unique()
    assert statuses.count(200) == 100
    # the run as a whole backs off: far fewer 429s than successes
    assert statuses.count(429) < statuses.count(200)


def test_retry_after_pauses_the_whole_run(server: FakeServer) -> None:
    df = pd.DataFrame({"id": range(6), "text": [f"t {i}" for i in range(6)]})
    server.configure(latency=0.05)
    server.script(Fault.status(429, retry_after=0.4))
    er.hf_embed_df(
        df,
        text_var="text",
        id_var="id",
        endpoint_url=server.url + "/embed",
        key_name=None,
        output_dir=None,
        progress=False,
        batch_size=1,
        concurrent_requests=1,
    )
    requests = server.stats.requests
    first_429 = next(r for r in requests if r.status == 429)
    later = [r.t_start for r in requests if r.t_start > first_429.t_end]
    assert later and min(later) - first_429.t_end >= 0.4


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_comes_back_within_down_timeout_costs_no_row(tmp_path: Any) -> None:
    import threading

    port = _free_port()
    started: list[FakeServer] = []
    timer = threading.Timer(1.0, lambda: started.append(FakeServer(port=port).start()))
    timer.start()
    try:
        out = er.hf_embed_df(
            pd.DataFrame({"id": range(20), "text": [f"t {i}" for i in range(20)]}),
            text_var="text",
            id_var="id",
            endpoint_url=f"http://127.0.0.1:{port}/embed",
            key_name=None,
            output_dir=None,
            progress=False,
            batch_size=4,
            max_retries=1,
            backoff=er.Backoff(base=0.05, cap=0.2),
        )
    finally:
        timer.join()
        for server in started:
            server.stop()
    assert not out[".error"].any()
    assert started and started[0].stats.row_count == 20


def test_a_server_that_stays_down_stops_the_run_with_one_message(tmp_path: Any) -> None:
    port = _free_port()
    with pytest.raises(er.EndpointDownError, match="run the same call again to resume"):
        er.hf_embed_df(
            pd.DataFrame({"id": range(20), "text": [f"t {i}" for i in range(20)]}),
            text_var="text",
            id_var="id",
            endpoint_url=f"http://127.0.0.1:{port}/embed",
            key_name=None,
            output_dir=tmp_path / "out",
            progress=False,
            down_timeout=0.5,
            backoff=er.Backoff(base=0.05, cap=0.2),
        )
    meta = (tmp_path / "out" / "_metadata.json").read_text()
    assert '"status": "interrupted"' in meta
    assert not list((tmp_path / "out").glob("chunk-*.parquet")), "no row became an error row"


def test_the_progress_line_shows_a_slow_rate_and_why_the_run_waits() -> None:
    from endpointr.engine.progress import render
    from endpointr.engine.runner import RunStats

    stats = RunStats(total=10, started=time.monotonic() - 7.5)
    stats.done, stats.in_flight, stats.limit = 3, 2, 4
    stats.paused_until, stats.waiting_for = time.monotonic() + 5, "rate limited"
    line = render(stats)
    assert "0.4 rows/s" in line and "(limit 4)" in line
    assert "s: rate limited" in line
