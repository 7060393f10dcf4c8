"""Peak memory of results held in memory: 96,000 x 384 float32 vectors, no output_dir.

Each run is its own process against one fake server (its own process, zero latency),
batch 32, 64 in flight. Printed side by side: the import baseline (RSS after ``import
endpointr``), the vectors' own size, the peak RSS (``VmHWM``), and the peak against the
target of issue 15, twice the vectors plus the baseline.

    python benchmarks/in_memory.py            # hf_embed_batch and oai_embed_batch
    python benchmarks/in_memory.py --rows 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import fake_server, machine_line, markdown_table, status_mb

DIM = 384


def child(url: str, api: str, rows: int) -> None:
    import endpointr as er

    baseline = status_mb("VmRSS")
    texts = [f"text number {i} " * 3 for i in range(rows)]
    start = time.perf_counter()
    if api == "oai":
        out = er.oai_embed_batch(
            texts, base_url=url + "/v1", key_name=None, batch_size=32, concurrent_requests=64
        )
    else:
        out = er.hf_embed_batch(
            texts, endpoint_url=url, key_name=None, batch_size=32, concurrent_requests=64
        )
    seconds = time.perf_counter() - start
    assert len(out) == rows and not out[".error"].any()
    print(json.dumps({"baseline": baseline, "peak": status_mb("VmHWM"), "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=96_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.rows)
        return
    vectors = args.rows * DIM * 4 / 2**20
    table = []
    with fake_server(dim=DIM) as server:
        for api in ("hf", "oai"):
            command = [
                sys.executable,
                __file__,
                "--rows",
                str(args.rows),
                "--child",
                server.url,
                api,
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            got = json.loads(done.stdout.strip().splitlines()[-1])
            target = 2 * vectors + got["baseline"]
            table.append(
                [
                    f"{api}_embed_batch",
                    f"{got['baseline']:.0f} MB",
                    f"{vectors:.0f} MB",
                    f"{got['peak']:.0f} MB",
                    f"{target:.0f} MB",
                    f"{got['peak'] / target:.2f}",
                    f"{got['seconds']:.1f} s",
                ]
            )
    print(machine_line())
    print(f"{args.rows:,} rows x {DIM} float32 in memory, batch 32, 64 in flight, zero latency")
    headers = ["call", "import RSS", "vectors", "peak RSS", "target", "peak/target", "time"]
    print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
