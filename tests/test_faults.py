"""Whatever the server does, every row ends in the output exactly once (issue 5).

Each fault is scripted alone (retried to success, and repeated to exhaustion) and mixed
at random, for every endpoint in :data:`cases.CASES`, against the fake server. The
assertions read the committed chunks and what the server saw, not our own counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cases import CASES, Case, case_ids
from endpointr.testing import FakeServer, Fault
from endpointr.testing.app import ROUTES

TIMEOUT = 0.25
SLOW = 1.0  # a delay fault: longer than TIMEOUT
RANDOM_KINDS = (
    "429",
    "429_no_retry_after",
    "500",
    "502",
    "503",
    "504",
    "529",
    "reset_before",
    "reset_mid",
    "delay",
    "malformed",
    "html",
    "wrong_count",
    "empty",
)


@pytest.fixture(scope="module")
def shared() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def server(shared: FakeServer) -> FakeServer:
    """The module's fake server, forgetting earlier scripts and records."""
    shared.reset()
    return shared


def frame(n: int, prefix: str = "row") -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"{prefix} number {i}" for i in range(n)]})


def run(case: Case, server: FakeServer, df: pd.DataFrame, out: Path, **kw: Any) -> pd.DataFrame:
    kw = {
        "key_name": None,
        "output_dir": out,
        "progress": False,
        "timeout": TIMEOUT,
        "batch_size": 3,
        "concurrent_requests": 1,
        "max_retries": 3,
        **kw,
    }
    result: pd.DataFrame = case.run(df, server.url, **kw)
    return result


def committed(out: Path) -> pa.Table:
    """Every row of every committed chunk (only ``chunk-NNNNN.parquet`` names)."""
    paths = sorted(out.glob("chunk-[0-9][0-9][0-9][0-9][0-9].parquet"))
    assert paths, f"no chunks in {out}"
    return pa.concat_tables([pq.read_table(p) for p in paths], promote_options="permissive")


def assert_each_id_once(out: Path, ids: list[int]) -> pa.Table:
    table = committed(out)
    counts = Counter(table.column("id").to_pylist())
    assert sorted(counts) == sorted(ids), "rows lost or foreign ids in the chunks"
    assert max(counts.values()) == 1, f"duplicated ids: {[i for i, c in counts.items() if c > 1]}"
    return table


def family_message(case: Case, status: int) -> str:
    """The message the fake server puts in its ``status`` error body on ``case.route``."""
    (route,) = [r for r in ROUTES if r.path == case.route]
    error = orjson.loads(route.family.error_body(status, None))["error"]
    return str(error["message"] if isinstance(error, dict) else error)


@dataclass(frozen=True)
class Kind:
    """A fault, the ``.status`` its final error row carries, and what its message says."""

    name: str
    fault: Callable[[], Fault]
    status: int | None
    says: Callable[[Case], str]
    batch_only: bool = False  # about the number of results: only where a request has several


def _status(code: int, retry_after: float | None = None) -> Kind:
    name = f"{code}" + ("_retry_after" if retry_after is not None else "")
    return Kind(
        name,
        lambda: Fault.status(code, retry_after=retry_after),
        code,
        lambda case: family_message(case, code),
    )


KINDS = [
    _status(429, retry_after=0.05),
    _status(429),
    _status(500),
    _status(502),
    _status(503),
    _status(504),
    _status(529),
    Kind("reset_before", Fault.reset_before, None, lambda case: "connection"),
    Kind("reset_mid", Fault.reset_mid, None, lambda case: "connection"),
    Kind("timeout", lambda: Fault.delay(SLOW), None, lambda case: f"timeout={TIMEOUT:g} s"),
    Kind("malformed", Fault.malformed, 200, lambda case: "not JSON"),
    Kind("html", Fault.html, 502, lambda case: "Bad Gateway"),
    Kind("wrong_count", Fault.wrong_count, 200, lambda case: "expected", batch_only=True),
    Kind("empty", Fault.empty, 200, lambda case: "empty body"),
]
CASE_KINDS = [
    pytest.param(case, kind, id=f"{case.name}-{kind.name}")
    for case in CASES
    for kind in KINDS
    if case.batchable or not kind.batch_only
]


OVERLOAD = {429, 503, 529}  # "slower": these spend time, not attempts
FINAL_KINDS = [p for p in CASE_KINDS if p.values[1].status not in OVERLOAD]
OVERLOAD_KINDS = [p for p in CASE_KINDS if p.values[1].status in OVERLOAD]


def random_kinds(case: Case) -> tuple[str, ...]:
    return tuple(k for k in RANDOM_KINDS if case.batchable or k != "wrong_count")


@pytest.mark.parametrize(("case", "kind"), CASE_KINDS)
def test_a_retryable_fault_ends_in_success(
    case: Case, kind: Kind, server: FakeServer, tmp_path: Path
) -> None:
    server.script(kind.fault(), kind.fault())
    out = run(case, server, frame(6), tmp_path / "out", max_retries=3)

    table = assert_each_id_once(tmp_path / "out", list(range(6)))
    assert not any(table.column(".error").to_pylist())
    assert out["id"].tolist() == list(range(6)) and not out[".error"].any()
    assert out[case.value_column].notna().all()
    seen = server.stats.requests
    faulted_rows = seen[0].rows + seen[1].rows  # the scripted faults go to the first two
    assert sum(out[".attempts"] - 1) == faulted_rows
    assert out[".attempts"].max() <= 3
    assert sum(server.stats.texts_seen.values()) == 6 + faulted_rows


@pytest.mark.parametrize(("case", "kind"), FINAL_KINDS)
def test_a_final_fault_becomes_error_rows_with_status_and_message(
    case: Case, kind: Kind, server: FakeServer, tmp_path: Path
) -> None:
    server.script(*[kind.fault() for _ in range(8)])  # both attempts of up to 4 requests
    out = run(
        case, server, frame(4), tmp_path / "out", batch_size=4, concurrent_requests=4, max_retries=2
    )

    table = assert_each_id_once(tmp_path / "out", list(range(4)))
    assert server.stats.rows_per_request == ([4] * 2 if case.batchable else [1] * 8)
    assert all(table.column(".error").to_pylist())
    assert set(table.column(".status").to_pylist()) == {kind.status}
    assert set(table.column(".attempts").to_pylist()) == {2}
    for message in table.column(".error_msg").to_pylist():
        assert message and kind.says(case) in message, message
    assert out[".error"].all() and out["id"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(("case", "kind"), OVERLOAD_KINDS)
def test_overload_spends_no_attempts_and_ends_only_past_its_budget(
    case: Case, kind: Kind, server: FakeServer, tmp_path: Path
) -> None:
    server.script(*[kind.fault() for _ in range(8)])  # more than max_retries allows
    out = run(
        case, server, frame(4), tmp_path / "ok", batch_size=4, max_retries=2, overload_timeout=30
    )
    assert not out[".error"].any() and out["id"].tolist() == [0, 1, 2, 3]

    server.reset()
    server.script(*[kind.fault() for _ in range(2000)])
    out = run(case, server, frame(4), tmp_path / "out", batch_size=4, max_retries=2)
    table = assert_each_id_once(tmp_path / "out", list(range(4)))
    assert all(table.column(".error").to_pylist())
    assert set(table.column(".status").to_pylist()) == {kind.status}
    assert min(table.column(".attempts").to_pylist()) > 2
    for message in table.column(".error_msg").to_pylist():
        assert message.startswith("still overloaded after"), message
        assert kind.says(case) in message, message


@pytest.mark.parametrize("code", [401, 403, 404])
@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_a_client_error_is_final_at_once(
    case: Case, code: int, server: FakeServer, tmp_path: Path
) -> None:
    server.script(Fault.status(code))
    out = run(case, server, frame(4), tmp_path / "out", batch_size=4, max_retries=5)

    assert_each_id_once(tmp_path / "out", list(range(4)))
    failed_rows = server.stats.requests[0].rows
    assert server.stats.request_count == 1 + (4 - failed_rows)
    errors = out[out[".error"]]
    assert len(errors) == failed_rows
    assert set(errors[".status"]) == {code}
    assert set(errors[".error_msg"]) == {family_message(case, code)}
    assert set(errors[".attempts"]) == {1}


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_retry_after_is_waited_for(case: Case, server: FakeServer, tmp_path: Path) -> None:
    server.script(Fault.status(429, retry_after=0.15), Fault.status(529, retry_after=0.1))
    run(case, server, frame(1), tmp_path / "out", max_retries=3)

    t = [r.t_start for r in server.stats.requests]
    assert [r.status for r in server.stats.requests] == [429, 529, 200]
    assert t[1] - t[0] >= 0.15 and t[2] - t[1] >= 0.1


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_random_mixed_faults_lose_and_duplicate_nothing(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    n = 120
    server.random_faults(rate=0.2, kinds=random_kinds(case), seed=7, delay=SLOW)
    out = run(
        case,
        server,
        frame(n),
        tmp_path / "out",
        batch_size=4,
        concurrent_requests=8,
        chunk_size=25,
        max_retries=12,
    )

    table = assert_each_id_once(tmp_path / "out", list(range(n)))
    assert not any(table.column(".error").to_pylist()), "every fault was retryable"
    assert out["id"].tolist() == list(range(n))
    assert out[case.value_column].notna().all()
    stats = server.stats
    faulted = [r for r in stats.requests if r.status != 200]
    assert len(faulted) >= 0.1 * stats.request_count, "the faults did happen"
    assert set(stats.texts_seen) == set(frame(n)["text"])
    assert out[".attempts"].max() > 1
    assert sum(out[".attempts"]) >= n + len(faulted)


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_random_faults_to_exhaustion_are_error_rows_for_the_rows_at_fault(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    n = 60
    # faults that spend attempts (503 is overload: it spends time, see the test above)
    server.random_faults(rate=0.5, kinds=("500", "502", "malformed", "reset_before"), seed=3)
    out = run(
        case, server, frame(n), tmp_path / "out", batch_size=3, concurrent_requests=4, max_retries=2
    )

    assert_each_id_once(tmp_path / "out", list(range(n)))
    assert out[".error"].any() and not out[".error"].all()
    failed = out[out[".error"]]
    assert failed[".error_msg"].map(bool).all()
    assert set(failed[".attempts"]) == {2}
    assert out.loc[~out[".error"], case.value_column].notna().all()
    ok_texts = set(frame(n).loc[~out[".error"], "text"])
    assert ok_texts <= set(server.stats.texts_seen)


@pytest.mark.parametrize("status", [413, 400, 422])
@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_a_refused_batch_is_split_down_to_the_rows_at_fault(
    case: Case, status: int, server: FakeServer, tmp_path: Path
) -> None:
    df = frame(8)
    df.loc[5, "text"] = "row number 5 BAD"
    server.poison("BAD", status=status, message="this input is too large")
    out = run(case, server, df, tmp_path / "out", batch_size=8, concurrent_requests=1)

    assert_each_id_once(tmp_path / "out", list(range(8)))
    assert out[".error"].tolist() == [i == 5 for i in range(8)]
    bad = out.loc[5]
    assert bad[".status"] == status and bad[".error_msg"] == "this input is too large"
    assert bad[".attempts"] == 1
    assert out.loc[out["id"] != 5, case.value_column].notna().all()
    if case.batchable:
        # 8 refused -> 4 ok + 4 refused -> 2 refused + 2 ok; 2 -> 1 ok + 1 refused
        # (the order of the halves is the scheduler's business, their sizes are not)
        assert sorted(server.stats.rows_per_request) == [1, 1, 2, 2, 4, 4, 8]
    else:
        assert server.stats.rows_per_request == [1] * 8
    assert server.stats.texts_seen["row number 5 BAD"] == (4 if case.batchable else 1)
    assert all(c <= 4 for c in server.stats.texts_seen.values())


@pytest.mark.parametrize("case", [c for c in CASES if c.batchable], ids=lambda c: c.name)
def test_several_bad_rows_in_one_batch_each_become_one_error_row(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    df = frame(16)
    bad = {0, 7, 8, 15}
    for i in bad:
        df.loc[i, "text"] = f"row {i} BAD"
    server.poison("BAD", status=413, message="payload too large")
    out = run(case, server, df, tmp_path / "out", batch_size=16, concurrent_requests=3)

    assert_each_id_once(tmp_path / "out", list(range(16)))
    assert set(out.loc[out[".error"], "id"]) == bad
    assert set(out.loc[out[".error"], ".status"]) == {413}
    assert max(server.stats.rows_per_request) == 16
    assert server.stats.rows_per_request.count(1) >= len(bad)
