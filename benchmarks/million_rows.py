"""One million rows through the ``endpointr embed`` CLI: start-up, throughput, flat memory.

The input Parquet file (``id`` int64, ``text`` of 60-100 characters) is generated once into
``benchmarks/out/``. The CLI runs as a subprocess against the fake server (zero latency)
with ``--batch-size 32 --concurrent-requests 20``; its RSS is sampled every 50 ms and its
peak also read from ``ru_maxrss``. Afterwards the chunks must hold every id exactly once.

    python benchmarks/million_rows.py            # 1,000,000 rows
    python benchmarks/million_rows.py --quick    # 50,000 rows
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from _common import (
    OUT,
    Sampler,
    ServerProcess,
    busy_seconds,
    fake_server,
    fmt,
    machine_line,
    make_texts,
    markdown_table,
    status_mb,
)

CHUNK_SIZE = 5000
PROGRESS_MARKS = (0.1, 0.5, 0.9)


def write_input(path: Path, rows: int, distinct: int) -> None:
    """Write the input file (run in a child process, so this one stays small)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = make_texts(rows, seed=3, distinct=distinct)
    table = pa.table({"id": pa.array(np.arange(rows, dtype=np.int64)), "text": texts})
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=65_536)
    os.replace(tmp, path)


def ensure_input(rows: int, distinct: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"rows-{rows}-distinct-{distinct}.parquet"
    if not path.exists():
        args = [sys.executable, __file__, "--make", str(path), "--rows", str(rows)]
        subprocess.run([*args, "--distinct", str(distinct)], check=True)
    return path


def cli_args(path: Path, url: str, out: Path) -> list[str]:
    exe = Path(sys.executable).with_name("endpointr")
    return [
        str(exe),
        "embed",
        str(path),
        *("--text-col", "text", "--id-col", "id"),
        *("--endpoint-url", url + "/embed", "--no-key"),
        *("--batch-size", "32", "--concurrent-requests", "20"),
        *("--output-dir", str(out), "--no-progress"),
    ]


def chunk_count(out: Path) -> int:
    try:
        return sum(1 for e in os.scandir(out) if e.name.startswith("chunk-"))
    except FileNotFoundError:
        return 0


def first_request(server: ServerProcess, proc: subprocess.Popen[bytes]) -> float | None:
    """The server's ``t_start`` of the first request, polled every 5 ms."""
    while proc.poll() is None:
        if server.stats(requests=False)["request_count"]:
            return float(min(r["t_start"] for r in server.stats()["requests"]))
        time.sleep(0.005)
    return None


def run_cli(server: ServerProcess, path: Path, out: Path) -> dict[str, Any]:
    """Run the CLI once; timings are ``time.monotonic`` values comparable with the server's."""
    parent_hwm = status_mb("VmHWM")
    srv0, busy0 = server.cpu_seconds(), busy_seconds()
    t0 = time.monotonic()
    proc = subprocess.Popen(cli_args(path, server.url, out), stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    with Sampler(lambda: (ps.memory_info().rss / 2**20, chunk_count(out))) as sampler:
        first = first_request(server, proc)
        _, status, usage = os.wait4(proc.pid, 0)
        t1 = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"endpointr embed failed ({proc.returncode}): {stderr}")
    return {
        "t0": t0,
        "t1": t1,
        "first": first,
        "samples": sampler.samples,
        "cli_cpu": usage.ru_utime + usage.ru_stime,
        "ru_maxrss_mb": usage.ru_maxrss / 1024,
        "parent_hwm_mb": parent_hwm,
        "server_cpu": server.cpu_seconds() - srv0,
        "busy": busy_seconds() - busy0,
    }


def verify(out: Path, rows: int) -> dict[str, Any]:
    """Count rows, unique ids and error rows over every committed chunk."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    paths = sorted(out.glob("chunk-*.parquet"))
    table = pa.concat_tables(pq.read_table(p, columns=["id", ".error"]) for p in paths)
    unique = pc.count_distinct(table.column("id")).as_py()
    expected = pa.array(range(rows), pa.int64())
    missing = len(expected) - pc.sum(pc.is_in(expected, value_set=table.column("id"))).as_py()
    return {
        "chunks": len(paths),
        "rows": table.num_rows,
        "unique": unique,
        "missing": missing,
        "errors": pc.sum(table.column(".error")).as_py() or 0,
        "bytes": sum(p.stat().st_size for p in paths),
    }


def rss_at(samples: list[tuple[float, Any]], rows: int, fraction: float) -> float | None:
    for _, (rss, chunks) in samples:
        if chunks * CHUNK_SIZE >= fraction * rows:
            return float(rss)
    return None


def timing_rows(run: dict[str, Any], rows: int) -> list[list[object]]:
    wall = run["t1"] - run["t0"]
    first = run["first"] - run["t0"] if run["first"] is not None else None
    cli, srv = run["cli_cpu"] / wall, run["server_cpu"] / wall
    return [
        ["first request (s)", fmt(first, 3), "< 1 s"],
        ["total wall (s)", fmt(wall, 2), ""],
        ["rows/s, whole process", fmt(rows / wall), ""],
        ["rows/s, first request to exit", fmt(rows / (wall - (first or 0.0))), ""],
        ["CLI CPU / wall", fmt(cli, 2), ""],
        ["server CPU / wall", fmt(srv, 2), ""],
        ["other busy cores (incl. kernel)", fmt(run["busy"] / wall - cli - srv, 2), ""],
    ]


def memory_rows(run: dict[str, Any], rows: int) -> list[list[object]]:
    peak = max((s[1][0] for s in run["samples"]), default=None)
    marks: list[list[object]] = [
        [f"RSS at {m:.0%} of rows committed (MB)", fmt(rss_at(run["samples"], rows, m)), "flat"]
        for m in PROGRESS_MARKS
    ]
    return [
        ["peak RSS, sampled (MB)", fmt(peak), "< 400 MB"],
        ["peak RSS, ru_maxrss (MB)", fmt(run["ru_maxrss_mb"]), "< 400 MB"],
        *marks,
    ]


def check_rows(check: dict[str, Any], rows: int) -> list[list[object]]:
    ok = check["rows"] == check["unique"] == rows and not check["missing"] and not check["errors"]
    counts = f"{check['chunks']} / {check['rows']:,} / {check['unique']:,}"
    return [
        ["chunks / rows / unique ids", counts, f"{rows:,} unique"],
        ["missing ids / error rows", f"{check['missing']} / {check['errors']}", "0 / 0"],
        ["output size (MB)", fmt(check["bytes"] / 2**20), ""],
        ["verdict", "every id exactly once" if ok else "FAILED", ""],
    ]


def report(run: dict[str, Any], check: dict[str, Any], rows: int, dim: int) -> None:
    print(f"## {rows:,} rows through the CLI ({machine_line()})\n")
    print(
        f"`endpointr embed` as a subprocess, --batch-size 32 --concurrent-requests 20, against "
        f"the fake server (zero latency, dim {dim}). 'first request': from just before Popen "
        "to the server's first request. RSS sampled every 50 ms (psutil); ru_maxrss from "
        "os.wait4 (Linux carries the parent's high-water mark into it: parent VmHWM "
        f"{run['parent_hwm_mb']:.0f} MB at spawn).\n"
    )
    table = timing_rows(run, rows) + memory_rows(run, rows) + check_rows(check, rows)
    print(markdown_table(["#measure", "value", "#target"], table))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    parser.add_argument("--rows", type=int, default=None, help="rows (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension")
    parser.add_argument(
        "--distinct", type=int, default=65_536, help="distinct texts, cycled (server cache)"
    )
    parser.add_argument("--make", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    if args.make:
        write_input(Path(args.make), rows, args.distinct)
        return 0
    path = ensure_input(rows, args.distinct)
    tmp = Path(tempfile.mkdtemp(prefix="endpointr-million-"))
    try:
        with fake_server(dim=args.dim) as server:
            run = run_cli(server, path, tmp / "out")
        check = verify(tmp / "out", rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(run, check, rows, args.dim)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
