"""Bad input gets a clear error before any request, or an error row; never a traceback
from deep inside, never a half-written output directory (issue 5).

Property-based over texts and ids (one fake server per module: hypothesis runs many
examples per test, and function-scoped fixtures would be shared between them).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import endpointr as er
from cases import CASES, Case, case_ids
from endpointr.testing import FakeServer

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DEEP = (TypeError, KeyError, AttributeError, IndexError, UnboundLocalError, AssertionError)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def run(case: Case, server: FakeServer, df: Any, out: Path | None, **kw: Any) -> Any:
    kw = {"key_name": None, "output_dir": out, "progress": False, "batch_size": 4, **kw}
    return case.run(df, server.url, **kw)


def chunks(out: Path) -> list[Path]:
    return sorted(out.glob("chunk-*.parquet")) if out.exists() else []


def good_frame(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"good text {i}" for i in range(n)]})


# --- texts: row-level problems are error rows, the rest is sent ------------------------

ODD_STRINGS = [
    "",
    " ",
    "\t\n ",
    "\u3000",
    "\x00",
    "\u200b",
    "caf\u00e9 \U0001f600",
    "\ud800 lone surrogate",
    "a" * 20_000,
    "word " * 5_000,
    '{"inputs": "not json, a text"}',
    "<html>",
]
TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(ODD_STRINGS),
    st.none(),
    st.just(math.nan),
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=10),
    st.booleans(),
)


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def sendable(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("case", CASES, ids=case_ids())
@EXAMPLES
@given(texts=st.lists(TEXTS, min_size=1, max_size=10))
def test_any_text_gives_one_row_per_id(case: Case, server: FakeServer, texts: list[Any]) -> None:
    server.reset()
    df = pd.DataFrame({"id": range(len(texts)), "text": pd.Series(texts, dtype=object)})
    with tempfile.TemporaryDirectory() as tmp:
        out = run(case, server, df, Path(tmp) / "out", concurrent_requests=2)
        table = pa.concat_tables([pq.read_table(p) for p in chunks(Path(tmp) / "out")])

    assert out["id"].tolist() == list(range(len(texts)))
    assert sorted(table.column("id").to_pylist()) == list(range(len(texts)))
    seen = server.stats.texts_seen
    for i, value in enumerate(texts):
        row = out.iloc[i]
        if not sendable(value):
            assert row[".error"], f"{value!r} should be an error row"
            assert "nothing was sent" in row[".error_msg"]
            assert pd.isna(row[".status"])
        else:
            assert value in seen
            if row[".error"]:  # the server refused it: its status and message
                assert row[".status"] >= 400 and row[".error_msg"]
            else:
                assert present(row[case.value_column])
    assert set(seen) <= {t for t in texts if sendable(t)}


# --- ids: clear InputError before any request, or one row per id -----------------------

IDS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.sampled_from(["\ud800", "", "0", "1"]),
    st.none(),
    st.booleans(),
    st.binary(max_size=3),
)


def ids_are_valid(ids: list[Any]) -> bool:
    """What endpointr accepts: all ints, or all strings, or all numbers (floats), unique,
    none missing (None/NaN)."""
    if any(i is None or (isinstance(i, float) and math.isnan(i)) for i in ids):
        return False
    kinds = {type(i) for i in ids}
    if kinds == {int} and all(-(2**63) <= i < 2**64 for i in ids):
        if any(i < 0 for i in ids) and any(i >= 2**63 for i in ids):
            return False
        return len(set(ids)) == len(ids)
    if kinds == {str}:
        return all(sendable(i + "x") for i in ids) and len(set(ids)) == len(ids)
    if kinds <= {int, float} and float in kinds:
        if any(isinstance(i, int) and abs(i) > 2**53 for i in ids):
            return False
        return len({float(i) for i in ids}) == len(ids)
    return False


@pytest.mark.parametrize("case", CASES, ids=case_ids())
@EXAMPLES
@given(ids=st.lists(IDS, min_size=1, max_size=6))
def test_any_ids_are_accepted_whole_or_refused_before_any_request(
    case: Case, server: FakeServer, ids: list[Any]
) -> None:
    server.reset()
    df = pd.DataFrame(
        {"id": pd.Series(ids, dtype=object), "text": [f"text {i}" for i in range(len(ids))]}
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        try:
            result = run(case, server, df, out)
        except er.InputError as exc:
            assert "id" in str(exc)
            assert server.stats.request_count == 0
            assert not chunks(out)
            return
        except DEEP as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{type(exc).__name__} from deep inside for ids {ids!r}: {exc}")
        assert ids_are_valid(ids), f"{ids!r} should have been refused"
        got = result["id"].tolist()
        assert len(got) == len(ids) and not result[".error"].any()
        assert [float(g) if isinstance(g, float) else g for g in got] == [
            float(i) if isinstance(i, float) else i for i in pd.Series(ids).tolist()
        ]
        written = pa.concat_tables([pq.read_table(p) for p in chunks(out)])
        assert sorted(map(str, written.column("id").to_pylist())) == sorted(map(str, got))


# --- arguments: ConfigError / InputError naming the problem, before any request --------


def _bad_args(case: Case) -> list[tuple[dict[str, Any], str]]:
    args: list[tuple[dict[str, Any], str]] = [
        ({"concurrent_requests": 0}, "concurrent_requests"),
        ({"concurrent_requests": -3}, "concurrent_requests"),
        ({"concurrent_requests": "many"}, "concurrent_requests"),
        ({"concurrent_requests": 2.5}, "concurrent_requests"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": -1}, "chunk_size"),
        ({"chunk_size": "100"}, "chunk_size"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"max_retries": None}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -5}, "timeout"),
        ({"timeout": "fast"}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"output_dir": 42}, "output_dir"),
        ({"key_name": 42}, "key_name"),
        ({"key_name": "ENDPOINTR_TEST_UNSET_KEY"}, "ENDPOINTR_TEST_UNSET_KEY"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
        ({"ca_bundle": 42}, "ca_bundle"),
    ]
    if case.batchable:
        args += [
            ({"batch_size": 0}, "batch_size"),
            ({"batch_size": -1}, "batch_size"),
            ({"batch_size": "8"}, "batch_size"),
            ({"batch_size": 1.5}, "batch_size"),
        ]
    return args


BAD_ARGS = [
    pytest.param(case, kwargs, named, id=f"{case.name}-{'-'.join(map(str, kwargs.items()))}")
    for case in CASES
    for kwargs, named in _bad_args(case)
]


def assert_refused_cleanly(
    case: Case, server: FakeServer, out: Path, call: Any, named: str
) -> None:
    server.reset()
    try:
        call()
    except er.EndpointrError as exc:
        assert named in str(exc), f"{type(exc).__name__} does not name {named!r}: {exc}"
    except BaseException as exc:
        pytest.fail(f"{type(exc).__name__} instead of an EndpointrError: {exc}")
    else:
        pytest.fail("no error was raised")
    assert server.stats.request_count == 0, "a request was sent before the refusal"
    assert not chunks(out), "chunks were written by a refused call"
    result = run(case, server, good_frame(), out)  # a re-run with good input works
    assert result["id"].tolist() == list(range(5)) and not result[".error"].any()


@pytest.mark.parametrize(("case", "kwargs", "named"), BAD_ARGS)
def test_a_bad_argument_is_refused_before_any_request(
    case: Case,
    kwargs: dict[str, Any],
    named: str,
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ENDPOINTR_TEST_UNSET_KEY", raising=False)
    out = tmp_path / "out"
    assert_refused_cleanly(
        case, server, out, lambda: run(case, server, good_frame(), out, **kwargs), named
    )


ARG_VALUES = st.one_of(
    st.integers(min_value=-3, max_value=4),
    st.floats(min_value=-2, max_value=3),
    st.sampled_from([math.nan, math.inf, -math.inf, True, False, None, "", "3", "auto", [1]]),
)
VERY_FAST = er.Backoff(base=0.001, cap=0.005)
RUN_ARGS = ("concurrent_requests", "chunk_size", "max_retries", "timeout")


def arg_is_valid(name: str, value: Any) -> bool:
    if name == "timeout":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and 0 < value < math.inf
    if name == "concurrent_requests" and value == "auto":
        return True
    minimum = 0 if name == "max_retries" else 1
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@pytest.mark.parametrize("case", CASES, ids=case_ids())
@settings(EXAMPLES, max_examples=15)
@given(name=st.sampled_from(RUN_ARGS), value=ARG_VALUES)
def test_any_run_argument_is_used_or_refused_by_name(
    case: Case, server: FakeServer, name: str, value: Any
) -> None:
    server.reset()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        try:
            result = run(case, server, good_frame(3), out, backoff=VERY_FAST, **{name: value})
        except er.ConfigError as exc:
            assert not arg_is_valid(name, value), f"{name}={value!r} was refused: {exc}"
            assert name in str(exc)
            assert server.stats.request_count == 0 and not out.exists()
            return
        assert arg_is_valid(name, value), f"{name}={value!r} was accepted"
        assert result["id"].tolist() == [0, 1, 2]


def _bad_data(tmp: Path) -> list[tuple[Any, str]]:
    (tmp / "garbage.parquet").write_bytes(b"this is not parquet at all")
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "header_only.csv").write_text("id,text\n")
    (tmp / "notes.txt").write_text("id,text\n1,hello\n")
    (tmp / "dir.csv").mkdir()
    (tmp / "broken.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": 2, "te\n')
    (tmp / "array.jsonl").write_text("[1, 2]\n")
    (tmp / "nocol.csv").write_text("id,body\n1,hello\n")
    pq.write_table(pa.table({"id": [1, 2], "body": ["a", "b"]}), tmp / "nocol.parquet")
    pq.write_table(pa.table({"id": [1, 1], "text": ["a", "b"]}), tmp / "dupes.parquet")
    return [
        (tmp / "missing.csv", "missing.csv"),
        (tmp / "garbage.parquet", "garbage.parquet"),
        (tmp / "empty.csv", "empty.csv"),
        (tmp / "header_only.csv", "no rows"),
        (tmp / "notes.txt", ".txt"),
        (str(tmp / "notes.txt"), ".txt"),
        (tmp / "dir.csv", "dir.csv"),
        (tmp / "broken.jsonl", "line 2"),
        (tmp / "array.jsonl", "line 1"),
        (tmp / "nocol.csv", "'text'"),
        (tmp / "nocol.parquet", "'text'"),
        (tmp / "dupes.parquet", "duplicated"),
        (42, "df"),
        ([{"id": 1, "text": "a"}], "df"),
        (pd.DataFrame({"id": [], "text": []}), "no rows"),
        (pd.DataFrame({"id": [1, 2], "body": ["a", "b"]}), "'text'"),
        (pd.DataFrame({"ident": [1, 2], "text": ["a", "b"]}), "'id'"),
    ]


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_bad_data_is_refused_before_any_request(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    for n, (data, named) in enumerate(_bad_data(tmp_path)):
        out = tmp_path / f"out-{n}"
        assert_refused_cleanly(
            case, server, out, lambda data=data, out=out: run(case, server, data, out), named
        )


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_a_bad_endpoint_url_is_refused_before_any_request(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    for base in ("ftp://127.0.0.1", "127.0.0.1:80", ""):
        out = tmp_path / "out"
        server.reset()
        with pytest.raises(er.EndpointrError, match="http"):
            case.run(good_frame(), base, key_name=None, output_dir=out, progress=False)
        assert server.stats.request_count == 0 and not chunks(out)


@pytest.mark.parametrize("function", [er.hf_embed_df, er.hf_classify_df])
def test_parameters_that_are_not_json_are_refused_before_any_request(
    function: Any, server: FakeServer, tmp_path: Path
) -> None:
    server.reset()
    with pytest.raises(er.ConfigError, match="parameters"):
        function(
            good_frame(),
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            output_dir=tmp_path / "out",
            progress=False,
            parameters={"x": object()},
        )
    assert server.stats.request_count == 0 and not chunks(tmp_path / "out")
