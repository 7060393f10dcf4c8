"""Soak: 200,000 rows through ``endpointr embed`` while 15% of requests fail at random.

The fake server runs in its own process with random faults of every kind (429 with and
without Retry-After, 500/502/503/504/529, resets before and during the answer, answers
slower than the timeout, malformed JSON, proxy HTML pages, short and empty answers). The
CLI runs in another process; its RSS is sampled every 100 ms. Afterwards the committed
chunks are read back: every id must be there exactly once, and with ``--max-retries`` high
enough no row should end as an error.

    python benchmarks/soak.py                    # 200,000 rows, 64 requests in flight
    python benchmarks/soak.py --rows 20000       # a quick look
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from _common import Sampler, fake_server, fmt, machine_line, make_texts

KINDS = [
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
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--concurrent-requests", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--chunk-size", type=int, default=5000)
    p.add_argument("--fault-rate", type=float, default=0.15)
    p.add_argument("--max-retries", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per attempt")
    p.add_argument("--slow", type=float, default=3.0, help="seconds a 'delay' fault waits")
    p.add_argument("--latency", type=float, default=0.01, help="server seconds per request")
    p.add_argument("--dim", type=int, default=64, help="embedding size")
    return p.parse_args()


def write_input(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": np.arange(rows, dtype=np.int64), "text": make_texts(rows, seed=5)})
    pq.write_table(table, path)


def read_results(out: Path) -> tuple[Counter[int], int]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids: Counter[int] = Counter()
    errors = 0
    for chunk in sorted(out.glob("chunk-[0-9][0-9][0-9][0-9][0-9].parquet")):
        table = pq.read_table(chunk, columns=["id", ".error"])
        ids.update(table.column("id").to_pylist())
        errors += pc.sum(table.column(".error")).as_py() or 0
    return ids, errors


def peaks(samples: list[tuple[float, float]]) -> list[float]:
    """Peak RSS (MB) in the first, middle and last third of the run."""
    if not samples:
        return [0.0, 0.0, 0.0]
    start, end = samples[0][0], samples[-1][0]
    third = (end - start) / 3 or 1.0
    out = []
    for k in range(3):
        window = [mb for t, mb in samples if start + k * third <= t <= start + (k + 1) * third]
        out.append(max(window, default=0.0))
    return out


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="endpointr-soak-") as tmp:
        data, out = Path(tmp) / "input.parquet", Path(tmp) / "out"
        write_input(data, args.rows)
        with fake_server(latency=args.latency, dim=args.dim) as server:
            server.post(
                "/_random_faults",
                {"rate": args.fault_rate, "kinds": KINDS, "seed": 11, "delay": args.slow},
            )
            argv = [sys.executable, "-m", "endpointr.cli", "embed", str(data)]
            argv += ["--text-col", "text", "--id-col", "id", "--no-key", "--no-progress"]
            argv += ["--endpoint-url", server.url + "/embed", "--output-dir", str(out)]
            argv += ["--batch-size", str(args.batch_size), "--chunk-size", str(args.chunk_size)]
            argv += ["--concurrent-requests", str(args.concurrent_requests)]
            argv += ["--max-retries", str(args.max_retries), "--timeout", str(args.timeout)]
            started = time.monotonic()
            proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
            ps = psutil.Process(proc.pid)
            with Sampler(lambda: ps.memory_info().rss / 2**20, interval=0.1) as rss:
                _, stderr = proc.communicate()
            wall = time.monotonic() - started
            seen = server.stats(requests=False)
        if proc.returncode != 0:
            print(stderr, file=sys.stderr)
            return 1
        meta: dict[str, Any] = json.loads((out / "_metadata.json").read_text())
        ids, errors = read_results(out)

    expected = set(range(args.rows))
    lost = len(expected - set(ids))
    duplicated = sum(c - 1 for c in ids.values() if c > 1)
    start_mb, middle_mb, end_mb = peaks(rss.samples)
    run = meta["this_run"]
    print(machine_line())
    print(
        f"{args.rows:,} rows, batch_size={args.batch_size}, "
        f"concurrent_requests={args.concurrent_requests}, chunk_size={args.chunk_size}, "
        f"{args.fault_rate:.0%} random faults of {len(KINDS)} kinds, "
        f"max_retries={args.max_retries}, timeout={args.timeout:g} s"
    )
    print(f"rows/s          {fmt(args.rows / run['seconds'])} (wall with start-up: {wall:.1f} s)")
    print(f"requests        {fmt(run['requests'])} ({fmt(seen['request_count'])} seen by server)")
    print(f"retries         {fmt(run['retries'])}")
    print(f"error rows      {fmt(errors)}")
    print(f"rows lost       {fmt(lost)}")
    print(f"rows duplicated {fmt(duplicated)}")
    print(f"peak RSS MB     start {start_mb:.0f} | middle {middle_mb:.0f} | end {end_mb:.0f}")
    ok = lost == 0 and duplicated == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
