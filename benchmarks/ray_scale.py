"""One process against Ray Data stages with 1, 2 and 4 workers, one budget for all.

The fake server runs in its own process with a latency at which one process is not
CPU-bound (100 ms per request by default). Every run has the same global
``concurrent_requests`` and ``batch_size``: the point is that the workers together keep
to the budget, what the shared limiter costs per request, and how much memory each
worker takes. Rows/s run from the server's first request to its last answer, so Ray's
start-up (cluster, actors) is not in them; the wall time with it is shown beside.

    python benchmarks/ray_scale.py            # 20,000 rows, latency 0.1 s, 32 in flight
    python benchmarks/ray_scale.py --quick
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import pandas as pd
import psutil
import pyarrow as pa

import endpointr as er
from _common import fake_server, machine_line, markdown_table


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(rows), "text": [f"text number {i}." for i in range(rows)]})


class WorkerMemory:
    """The peak RSS of each Ray map worker process seen while it runs."""

    def __init__(self) -> None:
        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                line = " ".join(process.info["cmdline"] or [])
                if "MapWorker" in line and process.info["memory_info"] is not None:
                    rss = process.info["memory_info"].rss / 2**20
                    self.peak[process.pid] = max(self.peak.get(process.pid, 0.0), rss)
            time.sleep(0.2)


def one_process(url: str, rows: int, batch: int, concurrency: int) -> dict[str, Any]:
    start = time.perf_counter()
    out = er.hf_embed_df(
        frame(rows),
        text_var="text",
        id_var="id",
        endpoint_url=url,
        key_name=None,
        batch_size=batch,
        concurrent_requests=concurrency,
        output_dir=None,
        progress=False,
    )
    seconds = time.perf_counter() - start
    assert len(out) == rows and not out[".error"].any()
    rss = psutil.Process().memory_info().rss / 2**20
    return {"seconds": seconds, "rss": rss, "leases": None, "cost": None}


def on_ray(url: str, rows: int, batch: int, concurrency: int, workers: int) -> dict[str, Any]:
    import ray

    import endpointr.ray as er_ray

    data = frame(rows)
    size = -(-rows // (workers * 8))
    ds = ray.data.from_pandas([data[i : i + size] for i in range(0, rows, size)])
    stage = er_ray.hf_embed_ds(
        ds,
        text_var="text",
        id_var="id",
        endpoint_url=url,
        key_name=None,
        batch_size=batch,
        concurrent_requests=concurrency,
        workers=workers,
        batch_size_rows=size,
    )
    with WorkerMemory() as memory:
        start = time.perf_counter()
        table = pa.concat_tables(ray.get(stage.to_arrow_refs()))
        seconds = time.perf_counter() - start
    assert table.num_rows == rows and not pa.compute.any(table.column(".error")).as_py()
    budget = ray.get(stage._endpointr_budget.stats.remote())
    requests = max(1, budget["answers"])
    return {
        "seconds": seconds,
        "rss": max(memory.peak.values(), default=float("nan")),
        "leases": budget["reports"] / requests,
        "cost": budget["worker_seconds"] / requests * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrent-requests", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = 4000 if args.quick else args.rows
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    boot = time.perf_counter() - started
    ideal = args.concurrent_requests * args.batch_size / args.latency
    table = []
    with fake_server(latency=args.latency, dim=384) as server:
        runs = [
            (
                "one process",
                lambda: one_process(server.url, rows, args.batch_size, args.concurrent_requests),
            )
        ]
        for workers in (1, 2, 4):
            runs.append(
                (
                    f"ray, {workers} worker{'s' * (workers > 1)}",
                    lambda w=workers: on_ray(
                        server.url, rows, args.batch_size, args.concurrent_requests, w
                    ),
                )
            )
        for name, run in runs:
            server.reset()
            got = run()
            stats = server.stats()
            peak = stats["peak_in_flight"]
            sent = [r for r in stats["requests"] if r["t_end"] is not None]
            span = max(r["t_end"] for r in sent) - min(r["t_start"] for r in sent)
            rate = rows / span  # from the first request to the last answer
            table.append(
                [
                    name,
                    f"{rate:,.0f}",
                    f"{rate / ideal:.2f}",
                    f"{got['seconds']:.1f} s",
                    str(peak),
                    "–" if got["leases"] is None else f"{got['leases']:.3f}",
                    "–" if got["cost"] is None else f"{got['cost']:.1f}",
                    f"{got['rss']:.0f} MB",
                ]
            )
    ray.shutdown()
    print(machine_line())
    print(
        f"{rows:,} rows, latency {args.latency} s, batch {args.batch_size}, "
        f"{args.concurrent_requests} in flight in all (ideal {ideal:,.0f} rows/s); "
        f"ray.init took {boot:.1f} s (not in the times)"
    )
    headers = [
        "client",
        "rows/s (first request to last answer)",
        "of ideal",
        "wall (with actor start-up)",
        "server peak in flight",
        "leases per request",
        "limiter µs per request",
        "peak RSS per process",
    ]
    print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
