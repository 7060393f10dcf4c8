"""Client cost at zero server latency: endpointr beside minimal aiohttp loops.

Every client runs as its own process against one fake server (zero latency, dim 384), 64
requests in flight, interleaved client by client, median of 3 runs. Wall time and CPU are
taken inside the client around the work (imports and input building excluded); peak RSS
is the client process's ``VmHWM`` at the end (imports included).

    python benchmarks/client_overhead.py            # b=1 x 20,000 and b=32 x 3,000 requests
    python benchmarks/client_overhead.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (
    ServerProcess,
    aiohttp_loop,
    busy_seconds,
    cpu_seconds,
    fake_server,
    fmt,
    machine_line,
    make_texts,
    markdown_table,
    median_by,
    status_mb,
)

CLIENTS = (
    "endpointr",
    "endpointr-plain",
    "aiohttp+json",
    "aiohttp+orjson",
    "aiohttp+orjson+numpy",
)
CONCURRENCY = 64
DISTINCT_TEXTS = 512


def texts_for(pool_file: Path, batch: int, requests: int) -> list[str]:
    pool: list[str] = json.loads(pool_file.read_text())
    return [pool[i % len(pool)] for i in range(batch * requests)]


def run_endpointr(url: str, texts: list[str], batch: int) -> Callable[[], int]:
    import numpy as np
    import pandas as pd

    import endpointr

    frame = pd.DataFrame({"id": np.arange(len(texts), dtype=np.int64), "text": texts})

    def work() -> int:
        out = endpointr.hf_embed_df(
            frame,
            text_var="text",
            id_var="id",
            endpoint_url=url,
            key_name=None,
            batch_size=batch,
            concurrent_requests=CONCURRENCY,
            output_dir=None,
            progress=False,
            dedupe=False,  # the texts repeat (a pool cycled); the loops send every row too
        )
        return int((~out[".error"]).sum())

    return work


def run_aiohttp(name: str, url: str, texts: list[str], batch: int) -> Callable[[], int]:
    batches = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    decode = name.removeprefix("aiohttp+")
    return lambda: asyncio.run(aiohttp_loop(url, batches, CONCURRENCY, decode))


def client_main(args: argparse.Namespace) -> None:
    """Client process: build inputs, then time the work and print one JSON line."""
    texts = texts_for(Path(args.texts), args.batch, args.requests)
    if args.client.startswith("endpointr"):
        import endpointr.providers.matrix

        # endpointr-plain: vectors read through orjson, as without the fast extra
        endpointr.providers.matrix.FAST_JSON &= args.client != "endpointr-plain"
        work = run_endpointr(args.url, texts, args.batch)
    else:
        work = run_aiohttp(args.client, args.url, texts, args.batch)
    cpu0, t0 = cpu_seconds(), time.monotonic()
    rows = work()
    wall, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    report = {"wall": wall, "cpu": cpu, "rows": rows, "rss_mb": status_mb("VmHWM")}
    print(json.dumps(report), flush=True)


def spawn(
    name: str, server: ServerProcess, pool: Path, batch: int, requests: int
) -> dict[str, Any]:
    """Run one client process; adds server CPU, other load and peak RSS to its report."""
    args = [sys.executable, str(Path(__file__).resolve()), "--client", name, "--texts", str(pool)]
    args += ["--url", server.url + "/embed", "--batch", str(batch), "--requests", str(requests)]
    server.reset()
    srv0, busy0, t0 = server.cpu_seconds(), busy_seconds(), time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lifetime = time.monotonic() - t0
    srv, busy = server.cpu_seconds() - srv0, busy_seconds() - busy0
    if proc.returncode != 0:
        raise RuntimeError(f"client {name} failed with exit status {proc.returncode}")
    run: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    run.update(name=name, batch=batch, requests=requests, server_cpu=srv)
    run["seen"] = server.stats(requests=False)["request_count"]
    run["other"] = (busy - srv - usage.ru_utime - usage.ru_stime) / lifetime
    run["rate"] = requests / run["wall"]
    return run


def row(runs: list[dict[str, Any]]) -> list[object]:
    m = median_by(runs, "rate")
    rates = [r["rate"] for r in runs]
    ok = all(r["rows"] == r["batch"] * r["requests"] and r["seen"] == r["requests"] for r in runs)
    return [
        m["batch"],
        m["name"],
        f"{m['requests']:,}",
        f"{fmt(m['rate'])} [{fmt(min(rates))}–{fmt(max(rates))}]",
        fmt(m["rate"] * m["batch"]),
        fmt(m["cpu"] / m["requests"] * 1e3, 3),
        fmt(m["cpu"] / m["wall"], 2),
        fmt(m["rss_mb"]),
        fmt(m["server_cpu"] / m["requests"] * 1e3, 3),
        f"{m['server_cpu'] / m['wall']:.0%}",
        fmt(m["other"], 2),
        "yes" if ok else "NO",
    ]


HEADERS = [
    "b",
    "#client",
    "requests",
    "req/s [range]",
    "rows/s",
    "client CPU s / 1k req",
    "client CPU / wall",
    "peak RSS MB",
    "server CPU s / 1k req",
    "server CPU % of a core",
    "other cores",
    "all rows ok",
]


def measure(plan: list[tuple[int, int]], repeats: int) -> list[list[dict[str, Any]]]:
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="endpointr-bench-") as tmp, fake_server() as server:
        pool = Path(tmp) / "texts.json"
        pool.write_text(json.dumps(make_texts(DISTINCT_TEXTS, seed=2).to_pylist()))
        spawn("aiohttp+orjson", server, pool, 1, 200)
        for batch, requests in plan:
            for _ in range(repeats):
                for name in CLIENTS:
                    run = spawn(name, server, pool, batch, requests)
                    results.setdefault((batch, name), []).append(run)
    return list(results.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one repetition")
    parser.add_argument("--repeats", type=int, default=None, help="runs per client (default 3)")
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client_main(args)
        return 0
    plan = [(1, 1000), (32, 150)] if args.quick else [(1, 20_000), (32, 3_000)]
    repeats = args.repeats or (1 if args.quick else 3)
    groups = measure(plan, repeats)
    print(f"## Client overhead at zero latency ({machine_line()})\n")
    print(
        f"Fake server (one process, zero latency, dim 384), {CONCURRENCY} requests in flight, "
        f"{DISTINCT_TEXTS} distinct texts cycled; median of {repeats} interleaved runs "
        "(range of req/s in brackets). 'other cores': busy CPU outside client and server "
        "(kernel networking included), averaged over the client process's life. The fake "
        "server answers at once without awaiting, so it cannot report requests in flight.\n"
    )
    print(markdown_table(HEADERS, [row(runs) for runs in groups]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
