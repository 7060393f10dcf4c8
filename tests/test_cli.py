"""The endpointr command: embed, its errors, the batch-size cap, demo and fake-server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from endpointr.cli import main
from endpointr.testing import FakeServer


def write_input(tmp_path: Path, n: int = 40, suffix: str = ".csv") -> Path:
    df = pd.DataFrame({"id": range(n), "text": [f"line {i}" for i in range(n)]})
    path = tmp_path / f"in{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    return path


def embed_args(path: Path, server: FakeServer, out: Path, *extra: str) -> list[str]:
    return [
        "embed",
        str(path),
        "--text-col",
        "text",
        "--id-col",
        "id",
        "--endpoint-url",
        server.url + "/embed",
        "--no-key",
        "--output-dir",
        str(out),
        "--no-progress",
        *extra,
    ]


def read_output(out: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(out.glob("chunk-*.parquet")))


def test_embed_writes_chunks_and_manifest(server: FakeServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        embed_args(
            write_input(tmp_path),
            server,
            out,
            "--batch-size",
            "4",
            "--chunk-size",
            "15",
            "--concurrent-requests",
            "3",
        )
    )
    assert code == 0
    table = read_output(out)
    assert sorted(table.column("id").to_pylist()) == list(range(40))
    assert set(server.stats.rows_per_request) == {4}
    meta = json.loads((out / "_metadata.json").read_text())
    assert meta["concurrent_requests"] == 3 and meta["chunk_size"] == 15
    assert meta["command"][0] == "embed"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--text-col", "nope"], "text_var='nope' is not a column"),
        (["--batch-size", "0"], "batch_size must be"),
        (["--timeout", "-1"], "timeout must be a positive number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    code = main(embed_args(write_input(tmp_path), server, tmp_path / "out", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("endpointr: error:") and message in err
    assert len(err.splitlines()) == 1
    assert server.stats.request_count == 0


def test_missing_file_and_bad_extension(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(embed_args(tmp_path / "absent.csv", server, tmp_path / "o")) == 2
    assert "not found" in capsys.readouterr().err
    odd = tmp_path / "in.xlsx"
    odd.write_text("x")
    assert main(embed_args(odd, server, tmp_path / "o")) == 2
    assert "unknown extension" in capsys.readouterr().err


def test_batch_size_is_capped_by_the_servers_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeServer(max_client_batch_size=16) as server:
        assert (
            main(embed_args(write_input(tmp_path), server, tmp_path / "a", "--batch-size", "64"))
            == 0
        )
        assert max(server.stats.rows_per_request) == 16
        assert "max_client_batch_size 16; using 16" in capsys.readouterr().err
        server.reset()
        assert (
            main(embed_args(write_input(tmp_path), server, tmp_path / "b", "--batch-size", "auto"))
            == 0
        )
        assert max(server.stats.rows_per_request) == 16


def test_progress_summary_line(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = embed_args(write_input(tmp_path, 10), server, tmp_path / "o")
    args.remove("--no-progress")
    assert main(args) == 0
    assert "10 succeeded, 0 failed, 0 retries in" in capsys.readouterr().err


def test_no_progress_keeps_the_summary_line(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(embed_args(write_input(tmp_path, 10), server, tmp_path / "o")) == 0
    err = capsys.readouterr().err
    assert "10 succeeded, 0 failed, 0 retries in" in err and "\r" not in err


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "endpointr", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("embed", "classify", "complete", "retry-failed", "fake-server", "demo"):
        assert command in out


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "endpointr",
            "demo",
            "--rows",
            "500",
            "--output-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "500 succeeded, 0 failed" in result.stderr
    assert read_output(tmp_path / "demo").num_rows == 500


def test_fake_server_command_prints_its_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "endpointr", "fake-server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("endpointr fake server listening on http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_exit_status_says_whether_rows_failed_or_the_run_stopped(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_input(tmp_path, n=12)
    assert main(embed_args(path, server, tmp_path / "clean")) == 0
    server.poison("line 3", status=422, message="no such word")
    assert main(embed_args(path, server, tmp_path / "some", "--batch-size", "4")) == 3
    manifest = json.loads((tmp_path / "some" / "_metadata.json").read_text())
    assert manifest["failures"] == 1
    # nobody listens on this port: the run holds, then stops, what it had committed kept
    args = embed_args(path, server, tmp_path / "down", "--down-timeout", "0.5")
    dead = [a.replace(server.url, "http://127.0.0.1:9") for a in args]
    assert main(dead) == 4
    assert "no connection" in capsys.readouterr().err
