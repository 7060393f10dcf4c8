"""What identical texts cost: a 100,000-row frame of 1,000 distinct texts beside 1,000 rows.

With ``dedupe=True`` (the default) each distinct text is sent once and its answer given
to every row that has it; the question is what the other 99,000 rows cost the client
(reading them, copying answers, building the result). Each pass runs, against one fake
server (its own process; latency 46 ms + 2 ms per row, the seed's latency model):

- ``1k``: 1,000 rows, 1,000 distinct texts;
- ``100k``: 100,000 rows of the same 1,000 texts, shuffled;
- ``100k no dedupe``: the same with ``dedupe=False`` (``--no-dedupe-rows`` rows of it,
  since every row is sent), to show what dedupe saves;

and reports the wall time of the call, the texts the server saw and the ratio to ``1k``.
Passes are interleaved; the median pass is shown.

    python benchmarks/dedupe.py                 # 3 passes, output_dir=None and a folder
    python benchmarks/dedupe.py --passes 1 --output none
    python benchmarks/dedupe.py --latency 0.25 --per-row-latency 0.025   # the seed's endpoint
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import endpointr
from _common import ServerProcess, fake_server, fmt, machine_line, make_texts, markdown_table

LATENCY, PER_ROW = 0.046, 0.002


def frame(rows: int, distinct: int, seed: int = 0) -> pd.DataFrame:
    texts = make_texts(rows, distinct=distinct).to_numpy(zero_copy_only=False)
    order = np.random.default_rng(seed).permutation(rows)
    return pd.DataFrame({"id": np.arange(rows), "text": texts[order]})


def run(server: ServerProcess, df: pd.DataFrame, output: str, **kw: Any) -> dict[str, Any]:
    server.reset()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        out = endpointr.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            progress=False,
            output_dir=None if output == "none" else Path(tmp) / "out",
            **kw,
        )
        seconds = time.perf_counter() - started
    assert len(out) == len(df) and not out[".error"].any()
    seen = server.stats(requests=False)
    return {"seconds": seconds, "texts": sum(seen["texts_seen"].values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows of 100, one pass")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=1_000)
    parser.add_argument("--no-dedupe-rows", type=int, default=10_000)
    parser.add_argument("--output", choices=["none", "dir", "both"], default="both")
    parser.add_argument("--latency", type=float, default=LATENCY, help="seconds per request")
    parser.add_argument("--per-row-latency", type=float, default=PER_ROW)
    args = parser.parse_args()
    if args.quick:
        args.passes, args.rows, args.distinct, args.no_dedupe_rows = 1, 10_000, 100, 1_000
    small = frame(args.distinct, args.distinct)
    big = frame(args.rows, args.distinct, seed=1)
    plain = big.iloc[: args.no_dedupe_rows]
    outputs = ["none", "dir"] if args.output == "both" else [args.output]
    cases = [
        (f"{args.distinct:,} rows", small, {}),
        (f"{args.rows:,} rows", big, {}),
        (f"{len(plain):,} rows, dedupe=False", plain, {"dedupe": False}),
    ]
    print(machine_line())
    latency, per_row = args.latency, args.per_row_latency
    print(f"fake server: latency {latency} s + {per_row} s per row; default settings\n")
    with fake_server(latency=latency, per_row_latency=per_row) as server:
        run(server, small.iloc[:100], "none")  # warm up imports and the connection pool
        for output in outputs:
            seen: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in cases}
            for _ in range(args.passes):
                for name, df, kw in cases:
                    seen[name].append(run(server, df, output, **kw))
            base = statistics.median(r["seconds"] for r in seen[cases[0][0]])
            rows = []
            for name, df, _ in cases:
                secs = statistics.median(r["seconds"] for r in seen[name])
                texts = seen[name][0]["texts"]
                rows.append(
                    [name, fmt(secs, 2), f"{secs / base:.2f}x", fmt(texts), fmt(len(df) / secs)]
                )
            print(f"output_dir={'None' if output == 'none' else 'a folder'}:")
            print(markdown_table(["#input", "seconds", "vs 1k rows", "texts sent", "rows/s"], rows))
            print()


if __name__ == "__main__":
    main()
