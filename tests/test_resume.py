"""Crash safety and resume: kill -9, Ctrl-C, changed settings, retry_failed (issue 5).

The CLI runs in a subprocess against a fake server in this process, so the tests can
count what the server saw (``texts_seen``) across the killed run and the re-run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import endpointr as er
from cases import CASES, FAST, Case, case_ids
from endpointr.cli import main as cli_main
from endpointr.cli.main import EXIT_ROW_ERRORS
from endpointr.testing import FakeServer, Fault

N = 3000
BATCH, CONCURRENT, CHUNK = 10, 4, 200
WINDOW = BATCH * CONCURRENT


def frame(n: int, prefix: str = "row") -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"{prefix} number {i}" for i in range(n)]})


def chunk_files(out: Path) -> list[Path]:
    return sorted(out.glob("chunk-[0-9][0-9][0-9][0-9][0-9].parquet"))


def committed(out: Path) -> pa.Table:
    tables = [pq.read_table(p) for p in chunk_files(out)]
    assert tables, f"no chunks in {out}"
    return pa.concat_tables(tables, promote_options="permissive")


def id_counts(out: Path) -> Counter[Any]:
    return Counter(committed(out).column("id").to_pylist()) if chunk_files(out) else Counter()


def assert_each_id_once(out: Path, n: int) -> pa.Table:
    counts = id_counts(out)
    assert sorted(counts) == list(range(n)), "rows lost, or ids that are not in the input"
    assert max(counts.values()) == 1, "an id is in more than one committed row"
    return committed(out)


# --- the command line in a subprocess ---------------------------------------------------


def embed_argv(data: Path, url: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "endpointr.cli",
        "embed",
        str(data),
        "--text-col",
        "text",
        "--id-col",
        "id",
        "--endpoint-url",
        url + "/embed",
        "--no-key",
        "--output-dir",
        str(out),
        "--batch-size",
        str(BATCH),
        "--concurrent-requests",
        str(CONCURRENT),
        "--chunk-size",
        str(CHUNK),
        "--no-progress",
        *extra,
    ]


def start(argv: list[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_chunks(proc: subprocess.Popen[str], out: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(chunk_files(out)) < count:
        assert proc.poll() is None, f"the run ended before {count} chunks: {proc.communicate()}"
        assert time.monotonic() < deadline, "no chunk appeared in time"
        time.sleep(0.005)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


@pytest.fixture
def slow_server() -> Iterator[FakeServer]:
    """3000 rows take ~1.5 s at batch 10 x 4 in flight: long enough to kill mid-run."""
    with FakeServer(latency=0.02, dim=8) as fake:
        yield fake


@pytest.fixture
def csv_input(tmp_path: Path) -> Path:
    path = tmp_path / "input.csv"
    frame(N).to_csv(path, index=False)
    return path


def test_kill_9_mid_run_then_rerun_completes_each_id_once(csv_input: Path, tmp_path: Path) -> None:
    out, chunk = tmp_path / "out", 500
    # large vectors make a chunk slow to write: the moment a kill costs the most
    with FakeServer(latency=0.005, dim=2048) as server:
        argv = embed_argv(csv_input, server.url, out, "--chunk-size", str(chunk))
        sent_before: set[str] = set()
        # kill once a chunk is committed; resume and kill while a chunk is being written;
        # then resume to the end
        for mid_write in (False, True):
            server.reset()
            proc = start(argv)
            wait_for_chunks(proc, out, len(chunk_files(out)) + 1)
            while mid_write and not list(out.glob(".chunk-*.tmp")):
                assert proc.poll() is None, "the run ended before a chunk was being written"
                time.sleep(0.0005)
            time.sleep(0.02 if mid_write else 0)
            proc.send_signal(signal.SIGKILL)
            assert finish(proc)[0] == -signal.SIGKILL
            assert max(id_counts(out).values()) == 1
            sent = set(server.stats.texts_seen)
            again = len(sent & sent_before)
            assert again <= WINDOW + chunk, f"{again} rows sent again after a kill"
            sent_before |= sent

        server.reset()
        code, _, stderr = finish(start(argv))
        assert code == 0, stderr
        table = assert_each_id_once(out, N)
        assert not any(table.column(".error").to_pylist())
        again = len(set(server.stats.texts_seen) & sent_before)
        assert again <= WINDOW + chunk, f"{again} rows sent again after the kill mid-write"
        assert set(server.stats.texts_seen) | sent_before == set(frame(N)["text"])
    assert json.loads((out / "_metadata.json").read_text())["status"] == "completed"


def test_partial_and_foreign_files_are_never_read_as_results(
    slow_server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    data = frame(300)
    run = functools.partial(
        er.hf_embed_df,
        backoff=FAST,
        text_var="text",
        id_var="id",
        endpoint_url=slow_server.url + "/embed",
        key_name=None,
        output_dir=out,
        chunk_size=100,
        progress=False,
    )
    slow_server.configure(latency=0.0)
    run(data.iloc[:100])  # one committed chunk; 200 rows still to do
    # what a crash and a careless user leave behind: a partly written chunk, a stale
    # result file and a chunk-looking file that is not a numbered chunk
    foreign = pa.table({"id": list(range(300)), ".error": [True] * 300})
    (out / ".chunk-00009.parquet.tmp").write_bytes(b"PAR1 half a file")
    pq.write_table(foreign, out / "other.parquet")
    pq.write_table(foreign, out / "chunk-old.parquet")
    pq.write_table(foreign, out / "chunk-00002.parquet.bak")

    slow_server.reset()
    result = run(data)
    assert result["id"].tolist() == list(range(300)) and not result[".error"].any()
    assert result["embedding"].notna().all()
    assert set(slow_server.stats.texts_seen) == set(data["text"][100:])
    assert_each_id_once(out, 300)
    meta = json.loads((out / "_metadata.json").read_text())
    assert meta["chunks"] == [p.name for p in chunk_files(out)]


def test_a_stray_numbered_chunk_with_foreign_ids_is_not_read_back(
    slow_server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    data = frame(50)
    slow_server.configure(latency=0.0)
    er.hf_embed_df(
        data,
        text_var="text",
        id_var="id",
        endpoint_url=slow_server.url + "/embed",
        key_name=None,
        output_dir=out,
        progress=False,
        backoff=FAST,
    )
    # ids that are not in this input never reach the result
    stray = committed(out).slice(0, 1).set_column(0, "id", pa.array([999]))
    pq.write_table(stray, out / "chunk-00077.parquet")
    result = er.hf_embed_df(
        data,
        text_var="text",
        id_var="id",
        endpoint_url=slow_server.url + "/embed",
        key_name=None,
        output_dir=out,
        progress=False,
        backoff=FAST,
    )
    assert result["id"].tolist() == list(range(50))


# --- Ctrl-C ---------------------------------------------------------------------------


def answered_texts(server: FakeServer) -> set[str]:
    return {t for r in server.stats.requests if r.status == 200 for t in r.json["inputs"]}


def test_ctrl_c_once_stops_sending_commits_what_finished_and_exits_130(
    csv_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with FakeServer(latency=0.15, dim=8) as server:
        argv = embed_argv(csv_input, server.url, out, "--chunk-size", "40")
        proc = start(argv)
        wait_for_chunks(proc, out, 1)
        proc.send_signal(signal.SIGINT)
        t_signal = time.monotonic()
        code, _, stderr = finish(proc)

        assert code == 130, stderr
        assert "resume" in stderr and "Traceback" not in stderr
        seen = server.stats.requests
        # at most the requests already on their way when the signal arrived
        late = [r for r in seen if r.t_start > t_signal]
        assert len(late) <= CONCURRENT, f"{len(late)} requests left after Ctrl-C"
        assert all(r.status == 200 for r in seen), "in-flight requests were let finish"
        table = committed(out)  # every chunk is readable
        ids = table.column("id").to_pylist()
        assert len(ids) == len(set(ids))
        texts = set(frame(N).set_index("id").loc[ids, "text"])
        assert texts == answered_texts(server), "every answered row was committed"
        meta = json.loads((out / "_metadata.json").read_text())
        assert meta["status"] == "interrupted"

        server.configure(latency=0.0)
        server.reset()
        code, _, stderr = finish(start(argv))
        assert code == 0, stderr
        assert_each_id_once(out, N)
        assert not set(server.stats.texts_seen) & texts, "committed rows were sent again"


def test_ctrl_c_twice_stops_now_and_keeps_what_was_committed(
    csv_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with FakeServer(latency=0.5, dim=8) as server:
        argv = embed_argv(
            csv_input, server.url, out, "--concurrent-requests", "8", "--chunk-size", "40"
        )
        proc = start(argv)
        wait_for_chunks(proc, out, 1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)  # requests are still in flight (latency 0.5 s)
        proc.send_signal(signal.SIGINT)
        code, _, stderr = finish(proc)

        assert code == 130, stderr
        assert "Traceback" not in stderr and "resume" in stderr
        table = committed(out)
        ids = table.column("id").to_pylist()
        assert len(ids) == len(set(ids))
        texts = set(frame(N).set_index("id").loc[ids, "text"])
        assert texts <= answered_texts(server)

        server.configure(latency=0.0)
        code, _, stderr = finish(start(argv))
        assert code == 0, stderr
        assert_each_id_once(out, N)


def test_ctrl_c_while_a_refused_batch_awaits_its_split_does_not_fail_its_rows(
    tmp_path: Path,
) -> None:
    data, out = tmp_path / "input.parquet", tmp_path / "out"
    df = frame(100)
    df.loc[3, "text"] = "row number 3 BAD"
    df.to_parquet(data)
    with FakeServer(latency=0.4, dim=8) as server:
        server.poison("BAD", status=413, message="payload too large")
        argv = embed_argv(data, server.url, out)
        proc = start(argv)
        deadline = time.monotonic() + 30
        while "row number 3 BAD" not in server.stats.texts_seen:  # its batch is in flight
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        code, _, stderr = finish(proc)
        assert code == 130, stderr
        assert not any(committed(out).column(".error").to_pylist()) if chunk_files(out) else True

        server.configure(latency=0.0)
        assert finish(start(argv))[0] == EXIT_ROW_ERRORS  # row 3 is an error row
        table = assert_each_id_once(out, 100)
        failed = table.filter(pa.compute.field(".error")).column("id").to_pylist()
        assert failed == [3], "only the row at fault is an error row"


def test_ctrl_c_in_a_notebook_stops_the_run_instead_of_leaving_it_running(
    tmp_path: Path,
) -> None:
    # A notebook calls the blocking function inside a running event loop, so the run goes
    # to a worker thread, and Ctrl-C lands in the main thread that waits for it.
    out = tmp_path / "out"
    with FakeServer(latency=0.1, dim=8) as server:

        async def cell() -> Any:
            return er.hf_embed_df(
                frame(2000),
                text_var="text",
                id_var="id",
                endpoint_url=server.url + "/embed",
                key_name=None,
                output_dir=out,
                batch_size=10,
                concurrent_requests=4,
                chunk_size=40,
                progress=False,
                backoff=FAST,
            )

        loop = asyncio.new_event_loop()  # like a notebook's: no SIGINT handler of its own
        main = threading.main_thread().ident
        assert main is not None
        threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
        loop.close()
        sent = server.stats.request_count
        time.sleep(0.3)
        assert server.stats.request_count == sent, "the run went on after Ctrl-C"
        assert not [t for t in threading.enumerate() if t.name == "endpointr-run"]
        ids = committed(out).column("id").to_pylist()
        assert ids and len(ids) == len(set(ids))
        assert json.loads((out / "_metadata.json").read_text())["status"] == "interrupted"

        server.configure(latency=0.0)
        er.hf_embed_df(
            frame(2000),
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            output_dir=out,
            progress=False,
            backoff=FAST,
        )
        assert_each_id_once(out, 2000)


# --- changed settings -----------------------------------------------------------------


def run_case(case: Case, server: FakeServer, df: pd.DataFrame, out: Path, **kw: Any) -> Any:
    kw = {"key_name": None, "output_dir": out, "progress": False, "batch_size": 4, **kw}
    return case.run(df, server.url, **kw)


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_a_different_endpoint_url_is_refused_before_any_request(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_case(case, server, frame(12), out)
    before = sorted(p.read_bytes() for p in chunk_files(out))
    server.reset()
    with FakeServer() as other, pytest.raises(er.CheckpointError, match=r"\burl\b") as caught:
        run_case(case, other, frame(12), out)
    assert other.stats.request_count == 0 and server.stats.request_count == 0
    assert "overwrite" in str(caught.value)
    assert sorted(p.read_bytes() for p in chunk_files(out)) == before

    result = run_case(case, server, frame(12), out, overwrite=True)
    assert server.stats.request_count > 0 and not result[".error"].any()
    assert_each_id_once(out, 12)


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_settings_that_do_not_change_answers_may_differ(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_case(case, server, frame(12).iloc[:6], out)
    server.reset()
    result = run_case(
        case,
        server,
        frame(12),
        out,
        batch_size=2,
        concurrent_requests=3,
        timeout=7,
        chunk_size=5,
        max_retries=2,
    )
    assert result["id"].tolist() == list(range(12)) and not result[".error"].any()
    assert set(server.stats.texts_seen) == set(frame(12)["text"][6:])
    assert_each_id_once(out, 12)


def _hf_embed(server: FakeServer, out: Path | str, df: Any, **kw: Any) -> Any:
    kw = {
        "text_var": "text",
        "id_var": "id",
        "endpoint_url": server.url + "/embed",
        "key_name": None,
        "output_dir": out,
        "progress": False,
        **kw,
    }
    return er.hf_embed_df(df, **kw, backoff=FAST)


def _chat(server: FakeServer, out: Path, df: pd.DataFrame, **kw: Any) -> Any:
    kw = {
        "text_var": "text",
        "id_var": "id",
        "endpoint_url": server.url + "/v1/chat/completions",
        "key_name": None,
        "output_dir": out,
        "progress": False,
        **kw,
    }
    return er.oai_complete_df(df, **kw, backoff=FAST)


def _ant(server: FakeServer, out: Path, df: pd.DataFrame, **kw: Any) -> Any:
    kw = {
        "text_var": "text",
        "id_var": "id",
        "endpoint_url": server.url + "/v1/messages",
        "key_name": None,
        "output_dir": out,
        "progress": False,
        **kw,
    }
    return er.ant_complete_df(df, **kw, backoff=FAST)


SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string"}},
    "required": ["sentiment"],
    "additionalProperties": False,
}
CHANGES = [
    pytest.param(_hf_embed, {}, {"parameters": {"normalize": False}}, "parameters", id="params"),
    pytest.param(_hf_embed, {}, {"text_var": "other"}, "text_var", id="text-column"),
    pytest.param(_hf_embed, {}, {"id_var": "other"}, "id_var", id="id-column"),
    pytest.param(_chat, {}, {"model": "gpt-other"}, "model", id="model"),
    pytest.param(_chat, {}, {"system_prompt": "Be terse."}, "system_prompt", id="prompt"),
    pytest.param(_chat, {}, {"schema": SCHEMA}, "schema", id="schema"),
    pytest.param(_chat, {}, {"temperature": 0.7}, "temperature", id="temperature"),
    pytest.param(_ant, {}, {"model": "claude-other"}, "model", id="anthropic-model"),
    pytest.param(_ant, {"system_prompt": "A"}, {"system_prompt": "B"}, "system_prompt", id="a-p"),
]


@pytest.mark.parametrize(("run", "first", "second", "named"), CHANGES)
def test_a_change_that_changes_answers_is_refused_and_named(
    run: Any,
    first: dict[str, Any],
    second: dict[str, Any],
    named: str,
    server: FakeServer,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    df = frame(6).assign(other=lambda d: d["text"] + " (other)")
    run(server, out, df, **first)
    server.reset()
    with pytest.raises(er.CheckpointError, match=rf"\b{named}\b"):
        run(server, out, df, **{**first, **second})
    assert server.stats.request_count == 0
    run(server, out, df, **{**first, **second}, overwrite=True)
    assert server.stats.request_count > 0
    ids = committed(out).column({**first, **second}.get("id_var", "id")).to_pylist()
    assert len(ids) == len(set(ids)) == 6


# --- retry_failed ---------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_retry_failed_resends_only_the_error_rows_and_replaces_them_in_place(
    case: Case, server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    df = frame(20)
    bad = {3, 11, 17}
    df.loc[list(bad), "text"] = [f"row number {i} BAD" for i in sorted(bad)]
    server.poison("BAD", status=400, message="not today")
    first = run_case(case, server, df, out, chunk_size=6)
    assert set(first.loc[first[".error"], "id"]) == bad

    server.reset()  # the poison is gone: the rows will now succeed
    result = run_case(case, server, df, out, chunk_size=6, retry_failed=True)
    assert set(server.stats.texts_seen) == set(df.loc[list(bad), "text"])
    assert server.stats.texts_seen.most_common(1)[0][1] == 1
    assert not result[".error"].any() and result["id"].tolist() == list(range(20))
    table = assert_each_id_once(out, 20)
    assert not any(table.column(".error").to_pylist())
    meta = json.loads((out / "_metadata.json").read_text())
    assert meta["failures"] == 0 and meta["successes"] == 20


def test_cli_retry_failed_resends_only_the_error_rows(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    data = tmp_path / "in.parquet"
    df = frame(30)
    df.loc[[4, 20], "text"] = ["BAD four", "BAD twenty"]
    df.to_parquet(data)
    server.poison("BAD", status=422, message="unprocessable")
    argv = embed_argv(data, server.url, out)[3:]
    assert cli_main(argv) == EXIT_ROW_ERRORS
    assert set(committed(out).filter(pa.compute.field(".error")).column("id").to_pylist()) == {
        4,
        20,
    }

    server.reset()
    assert cli_main(["retry-failed", str(out)]) == 0
    assert set(server.stats.texts_seen) == {"BAD four", "BAD twenty"}
    table = assert_each_id_once(out, 30)
    assert not any(table.column(".error").to_pylist())
    capsys.readouterr()


def test_rerun_after_completion_sends_nothing_and_reads_only_this_runs_chunks(
    server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _hf_embed(server, out, frame(40), chunk_size=15)
    server.reset()
    server.script(Fault.status(500))  # would show up if anything were sent
    again = _hf_embed(server, out, frame(40), chunk_size=15)
    assert server.stats.request_count == 0
    assert again["id"].tolist() == list(range(40)) and not again[".error"].any()


def test_a_second_run_on_a_directory_in_use_is_refused(server: FakeServer, tmp_path: Path) -> None:
    import fcntl

    out_dir = tmp_path / "busy"
    out_dir.mkdir()
    with open(out_dir / ".lock", "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(er.CheckpointError, match="another endpointr run is writing"):
            er.hf_embed_df(
                _lock_frame(),
                text_var="text",
                id_var="id",
                endpoint_url=server.url + "/embed",
                key_name=None,
                output_dir=out_dir,
                progress=False,
                backoff=FAST,
            )
    assert server.stats.request_count == 0
    out = er.hf_embed_df(
        _lock_frame(),
        text_var="text",
        id_var="id",
        endpoint_url=server.url + "/embed",
        key_name=None,
        output_dir=out_dir,
        progress=False,
        backoff=FAST,
    )
    assert not out[".error"].any()


def test_a_chunk_copied_in_from_another_run_is_refused(server: FakeServer, tmp_path: Path) -> None:
    import shutil

    def run(out_dir: Path, route: str, n: int = 6) -> object:
        return er.hf_embed_df(
            _lock_frame(n),
            text_var="text",
            id_var="id",
            endpoint_url=server.url + route,
            key_name=None,
            output_dir=out_dir,
            progress=False,
            chunk_size=3,
            backoff=FAST,
        )

    run(tmp_path / "a", "/embed")
    run(tmp_path / "b", "/", n=3)
    shutil.copy(tmp_path / "b" / "chunk-00001.parquet", tmp_path / "a" / "chunk-00009.parquet")
    sent = server.stats.request_count
    with pytest.raises(er.CheckpointError, match=r"chunk-00009\.parquet was written by a run"):
        run(tmp_path / "a", "/embed")
    assert server.stats.request_count == sent


def _lock_frame(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"text {i}" for i in range(n)]})


def test_the_output_directory_reads_as_a_parquet_dataset(
    server: FakeServer, tmp_path: Path
) -> None:
    import polars as pl
    import pyarrow.dataset as ds

    out = tmp_path / "out"
    df = frame(30)
    df.loc[7, "text"] = "BAD seven"
    server.poison("BAD", status=422, message="unprocessable")
    er.hf_embed_df(
        df,
        text_var="text",
        id_var="id",
        endpoint_url=server.url + "/embed",
        key_name=None,
        output_dir=out,
        chunk_size=8,
        batch_size=4,
        progress=False,
    )
    assert len(chunk_files(out)) > 1 and (out / "_metadata.json").is_file()
    for table in (
        pd.read_parquet(out),
        ds.dataset(out, format="parquet").to_table().to_pandas(),
        pl.read_parquet(out / "*.parquet").to_pandas(),
    ):
        assert sorted(table["id"]) == list(range(30))
        assert table.loc[table["id"] == 7, ".error"].item()


def test_a_directory_an_earlier_version_wrote_resumes_under_the_new_manifest_name(
    server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    keywords: dict[str, Any] = {
        "text_var": "text",
        "id_var": "id",
        "endpoint_url": server.url + "/embed",
        "key_name": None,
        "output_dir": out,
        "progress": False,
    }
    er.hf_embed_df(frame(10), **keywords)
    (out / "_metadata.json").rename(out / "metadata.json")  # as earlier versions named it
    server.reset()
    er.hf_embed_df(frame(15), **keywords)
    assert sum(server.stats.texts_seen.values()) == 5  # only the new rows were sent
    assert (out / "_metadata.json").is_file() and not (out / "metadata.json").exists()


# --- output_dir="auto": the same call resumes -----------------------------------------


def _auto_embed(server: FakeServer, data: Any, **kw: Any) -> Any:
    """:func:`_hf_embed` with the default output_dir."""
    return _hf_embed(server, "auto", data, **kw)


def _auto_dirs() -> list[Path]:
    return sorted(Path.cwd().glob("endpointr-hf-embed-*"))


def test_the_default_output_dir_resumes_the_same_call_and_says_where_it_is(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    df = frame(60)
    first = _auto_embed(server, df, chunk_size=20)
    (where,) = _auto_dirs()
    assert f"results go to {where.name}" in capsys.readouterr().err
    assert first.attrs["output_dir"] == str(where.resolve())
    assert server.stats.request_count > 0
    # a crash that lost the last chunk: the same call sends only its rows
    chunk_files(where)[-1].unlink()
    server.reset()
    again = _auto_embed(server, df, chunk_size=20)
    assert "resuming" in capsys.readouterr().err
    assert _auto_dirs() == [where]
    assert sum(server.stats.texts_seen.values()) == 20
    assert again["id"].tolist() == list(range(60)) and not again[".error"].any()
    manifest = json.loads((where / "_metadata.json").read_text())
    assert manifest["rows_resumed"] == 40


def test_a_changed_text_is_never_answered_from_stale_results(server: FakeServer) -> None:
    from endpointr.testing import fake_embedding

    df = frame(30)
    _auto_embed(server, df)
    changed = df.copy()
    changed.loc[7, "text"] = "a text the first run never saw"
    server.reset()
    out = _auto_embed(server, changed)
    assert len(_auto_dirs()) == 2  # a new input: a directory of its own
    assert server.stats.texts_seen["a text the first run never saw"] == 1
    got = out.loc[out["id"] == 7, "embedding"].iloc[0]
    assert got == pytest.approx(fake_embedding("a text the first run never saw"), abs=1e-6)


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_arrow_and_polars_frames_resume_into_the_same_directory(
    server: FakeServer, kind: str
) -> None:
    import polars as pl

    df = frame(25)
    data = pl.from_pandas(df) if kind == "polars" else pa.Table.from_pandas(df)
    _auto_embed(server, data)
    server.reset()
    _auto_embed(server, pl.from_pandas(df) if kind == "polars" else pa.Table.from_pandas(df))
    assert server.stats.request_count == 0 and len(_auto_dirs()) == 1


def test_a_file_input_that_changed_gets_a_new_directory(server: FakeServer) -> None:
    path = Path("in.csv")
    frame(12).to_csv(path, index=False)
    _auto_embed(server, path)
    _auto_embed(server, path)
    assert len(_auto_dirs()) == 1
    frame(12, prefix="edited").to_csv(path, index=False)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    server.reset()
    _auto_embed(server, path)
    assert len(_auto_dirs()) == 2
    assert server.stats.texts_seen["edited number 3"] == 1


def test_an_explicit_directory_notes_an_input_that_changed(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    _hf_embed(server, out, frame(10))
    capsys.readouterr()
    _hf_embed(server, out, frame(14))
    err = capsys.readouterr().err
    assert "resuming" in err and "10 rows already done" in err and "input changed" in err


# --- reading an output directory back ---------------------------------------------------


def test_chunks_keep_the_returned_frames_vector_type_also_for_a_chunk_of_error_rows(
    server: FakeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    df = frame(30)
    df.loc[10:19, "text"] = ""  # the second chunk: error rows only, never sent
    data = pa.Table.from_pandas(df, preserve_index=False)
    result = _hf_embed(server, out, data, chunk_size=10, batch_size=5, concurrent_requests=1)
    want = result.schema.field("embedding").type
    assert want == pa.list_(pa.float32(), 384)
    for chunk in chunk_files(out):
        assert pq.read_schema(chunk).field("embedding").type == want
    assert pd.read_parquet(out)["embedding"].notna().sum() == 20


def test_read_results_gives_one_row_per_id_in_input_order(
    server: FakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    df = frame(50).sample(frac=1.0, random_state=3)  # ids out of order in the file
    df.to_csv(path, index=False)
    server.script(*[Fault.status(502)] * 3)  # a few error rows to replace later
    out = tmp_path / "out"
    _hf_embed(server, out, path, batch_size=1, max_retries=1, concurrent_requests=2)
    _hf_embed(server, out, path, batch_size=1, retry_failed=True)
    read = er.read_results(out)
    assert read["id"].tolist() == df["id"].tolist()
    assert not read[".error"].any() and str(read[".status"].dtype) == "Int32"
    polars = er.read_results(out, kind="polars")
    assert polars["id"].to_list() == df["id"].tolist()
    # the frame given instead of the file: its order wins
    ordered = er.read_results(out, frame(50), kind="arrow")
    assert ordered.column("id").to_pylist() == list(range(50))
    assert pa.types.is_fixed_size_list(ordered.schema.field("embedding").type)


def test_read_results_of_a_folder_that_is_not_an_output_directory(tmp_path: Path) -> None:
    with pytest.raises(er.CheckpointError, match="not an endpointr output directory"):
        er.read_results(tmp_path)
