"""batch_size x concurrent_requests grid through ``hf_embed_df`` against the fake server.

The fake server (its own process) answers each request after 46 ms + 2 ms per row, so the
ideal throughput of a cell is ``c * b / (0.046 + 0.002 * b)`` rows/s. Efficiency is the
measured rate (rows / wall time of the ``hf_embed_df`` call) over that ideal. Each cell also
runs a minimal aiohttp loop (same rows, ``c`` workers, orjson + numpy decode) right after,
so what the server and the machine allow is measured beside what endpointr gets.

    python benchmarks/grid.py            # full grid, median of 3 interleaved passes
    python benchmarks/grid.py --quick    # four corner cells, a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import endpointr
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
)

LATENCY, PER_ROW = 0.046, 0.002
BATCHES, CONCURRENCY = (1, 4, 8, 16, 32), (1, 5, 10, 20)
QUICK_BATCHES, QUICK_CONCURRENCY = (1, 32), (1, 20)


@dataclass(frozen=True)
class Cell:
    batch: int
    conc: int
    rows: int
    output: bool = False
    dim: int = 384

    @property
    def ideal(self) -> float:
        return ideal_rate(self.batch, self.conc)

    @property
    def label(self) -> str:
        return f"output_dir={'tmp' if self.output else 'None'}, dim={self.dim}"


def ideal_rate(batch: int, conc: int) -> float:
    return conc * batch / (LATENCY + PER_ROW * batch)


def cell_rows(batch: int, conc: int, sizes: tuple[int, float, float]) -> int:
    """Rows for a cell: ``max(min_rows, ideal * min_s)`` capped at ``ideal * max_s``,
    rounded up to whole waves of ``batch * conc`` rows so no request is partly filled."""
    min_rows, min_s, max_s = sizes
    ideal = ideal_rate(batch, conc)
    rows = min(max(min_rows, ideal * min_s), ideal * max_s)
    wave = batch * conc
    return max(wave, math.ceil(rows / wave) * wave)


def plan(quick: bool, only: set[tuple[int, int]] | None = None) -> tuple[list[Cell], list[Cell]]:
    """The grid's cells (``only`` those ``(b, c)`` when given) and the extra cells at b=32,
    c=20 and b=8, c=10: a real output dir, and dim 32."""
    batches, concs = (QUICK_BATCHES, QUICK_CONCURRENCY) if quick else (BATCHES, CONCURRENCY)
    sizes = (0, 0.3, 0.6) if quick else (2048, 3.0, 10.0)
    grid = [Cell(b, c, cell_rows(b, c, sizes)) for b in batches for c in concs]
    grid = [cell for cell in grid if only is None or (cell.batch, cell.conc) in only]
    extras = []
    for cell in grid:
        if (cell.batch, cell.conc) == (32, 20):
            extras += [replace(cell, output=True), replace(cell, dim=32)]
        if (cell.batch, cell.conc) == (8, 10):
            extras.append(replace(cell, output=True))
    return grid, extras


def parse_cells(text: str) -> set[tuple[int, int]]:
    """``"32x20,1x20"`` as ``{(32, 20), (1, 20)}``."""
    pairs = (item.split("x") for item in text.split(",") if item)
    return {(int(b), int(c)) for b, c in pairs}


def call(cell: Cell, frame: pd.DataFrame, url: str, output_dir: Path | None) -> pd.DataFrame:
    return endpointr.hf_embed_df(
        frame,
        text_var="text",
        id_var="id",
        endpoint_url=url,
        key_name=None,
        batch_size=cell.batch,
        concurrent_requests=cell.conc,
        output_dir=output_dir,
        progress=False,
    )


def timed_call(cell: Cell, frame: pd.DataFrame, server: ServerProcess) -> dict[str, Any]:
    """Run one cell; wall and CPU are taken right around the ``hf_embed_df`` call."""
    with tempfile.TemporaryDirectory(prefix="endpointr-grid-") as tmp:
        output_dir = Path(tmp) / "run" if cell.output else None
        cpu0, srv0, busy0 = cpu_seconds(), server.cpu_seconds(), busy_seconds()
        t0 = time.monotonic()
        result = call(cell, frame, server.url + "/embed", output_dir)
        t1 = time.monotonic()
        cpu1, srv1, busy1 = cpu_seconds(), server.cpu_seconds(), busy_seconds()
    if len(result) != cell.rows or bool(result[".error"].any()):
        raise RuntimeError(f"cell {cell} came back incomplete or with error rows")
    wall = t1 - t0
    client, srv = (cpu1 - cpu0) / wall, (srv1 - srv0) / wall
    return {
        "t0": t0,
        "t1": t1,
        "wall": wall,
        "rate": cell.rows / wall,
        "client_cpu": client,
        "server_cpu": srv,
        "other": (busy1 - busy0) / wall - client - srv,
    }


def reference_rate(cell: Cell, texts: Sequence[str], url: str) -> float:
    """Rows/s of the minimal aiohttp loop on the same rows."""
    batches = [list(texts[i : i + cell.batch]) for i in range(0, cell.rows, cell.batch)]
    t0 = time.monotonic()
    rows = asyncio.run(aiohttp_loop(url, batches, cell.conc))
    wall = time.monotonic() - t0
    if rows != cell.rows:
        raise RuntimeError(f"the aiohttp loop got {rows} of {cell.rows} rows")
    return cell.rows / wall


def run_cell(cell: Cell, texts: Sequence[str], server: ServerProcess) -> dict[str, Any]:
    frame = pd.DataFrame({"id": np.arange(cell.rows, dtype=np.int64), "text": texts[: cell.rows]})
    server.configure(dim=cell.dim)
    server.reset()
    run = timed_call(cell, frame, server)
    stats = server.stats()
    requests = stats["requests"]
    run["peak"] = stats["peak_in_flight"]
    run["per_request"] = sorted(set(stats["rows_per_request"]))
    run["first_ms"] = (min(r["t_start"] for r in requests) - run["t0"]) * 1e3
    run["tail_ms"] = (run["t1"] - max(r["t_end"] for r in requests)) * 1e3
    run["server_ms"] = statistics.median(r["t_end"] - r["t_start"] for r in requests) * 1e3
    run["ok"] = run["peak"] == cell.conc and run["per_request"] == [cell.batch]
    run["reference"] = reference_rate(cell, texts, server.url + "/embed")
    return run


def row(cell: Cell, runs: list[dict[str, Any]]) -> list[object]:
    m = median_by(runs, "rate")
    rates = [r["rate"] for r in runs]
    reference = statistics.median(r["reference"] for r in runs)
    return [
        cell.batch,
        cell.conc,
        f"{cell.rows:,}",
        fmt(cell.ideal, 1),
        fmt(m["rate"], 1),
        fmt(m["rate"] / cell.ideal, 3),
        f"{min(rates) / cell.ideal:.3f}–{max(rates) / cell.ideal:.3f}",
        fmt(reference / cell.ideal, 3),
        fmt(m["rate"] / reference, 2),
        m["peak"],
        "/".join(str(n) for n in m["per_request"]),
        "yes" if all(r["ok"] for r in runs) else "NO",
        f"{fmt(m['server_ms'], 1)} / {fmt((LATENCY + PER_ROW * cell.batch) * 1e3, 0)}",
        f"{fmt(m['first_ms'], 0)} / {fmt(m['tail_ms'], 0)}",
        fmt(m["client_cpu"], 2),
        fmt(m["server_cpu"], 2),
        fmt(m["other"], 2),
    ]


HEADERS = [
    "b",
    "c",
    "rows",
    "ideal rows/s",
    "endpointr rows/s",
    "efficiency",
    "eff. range",
    "aiohttp loop eff.",
    "endpointr / loop",
    "server peak in flight",
    "server rows/request",
    "peak = c, rows = b",
    "server ms/request (median / model)",
    "first request / tail ms",
    "client CPU/wall",
    "server CPU/wall",
    "other cores",
]


def measure(cells: list[Cell], repeats: int, server: ServerProcess) -> dict[Cell, list[Any]]:
    """Every cell ``repeats`` times, interleaved (pass after pass over all cells)."""
    texts = make_texts(max(1280, *(c.rows for c in cells)), seed=1).to_pylist()
    run_cell(Cell(32, 20, len(texts) // 640 * 640), texts, server)
    runs: dict[Cell, list[Any]] = {cell: [] for cell in cells}
    for _ in range(repeats):
        for cell in cells:
            runs[cell].append(run_cell(cell, texts, server))
    return runs


def report(grid: list[Cell], extras: list[Cell], runs: dict[Cell, list[Any]], repeats: int) -> None:
    print(f"## batch_size x concurrent_requests grid ({machine_line()})\n")
    print(
        f"Fake server latency {LATENCY * 1e3:.0f} ms + {PER_ROW * 1e3:.0f} ms/row, dim 384, "
        f"hf_embed_df(output_dir=None, progress=False); median of {repeats} interleaved "
        "passes (range over passes). 'aiohttp loop': a minimal client (one session, c "
        "workers, orjson + numpy) on the same rows right after, median over passes. 'server "
        "ms/request': time the server held a request (its sleep and answer), median, beside "
        "the model. 'first request': call start to the server's first request; 'tail': the "
        "server's last answer to the call's return. 'other cores': busy CPU outside client "
        "and server (kernel networking included).\n"
    )
    print(markdown_table(HEADERS, [row(cell, runs[cell]) for cell in grid]))
    if not extras:
        return
    print("\n### Same cells with a real output dir, and with dim 32\n")
    headers = ["#variant", *HEADERS]
    base = {(c.batch, c.conc): c for c in grid}
    rows = []
    for extra in extras:
        plain = base[(extra.batch, extra.conc)]
        rows += [[plain.label, *row(plain, runs[plain])], [extra.label, *row(extra, runs[extra])]]
    print(markdown_table(headers, rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="corner cells only, short runs")
    parser.add_argument("--repeats", type=int, default=None, help="passes (default 3, quick 1)")
    parser.add_argument(
        "--cells", type=parse_cells, default=None, help="only these, e.g. 32x20,1x5"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    grid, extras = plan(args.quick, args.cells)
    with fake_server(latency=LATENCY, per_row_latency=PER_ROW, dim=384) as server:
        runs = measure(grid + extras, repeats, server)
    report(grid, extras, runs, repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
