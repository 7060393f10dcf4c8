"""Flow control: an overloaded server slows the run down and turns no row into an error.

Each scenario runs ``hf_embed_df`` against the fake server (its own process) with a sweep
of fixed ``concurrent_requests`` and with ``"auto"``, side by side in one run, and prints
rows/s, error rows, the share of requests answered 429/503 and the ratio of each setting's
rate to the best one's. Default settings otherwise (``max_retries=5``).

The last scenario stops the server (in this process) for a few seconds mid-run and starts
it again on the same port: a restart.

    python benchmarks/flow.py                # 2,000 rows per run
    python benchmarks/flow.py --rows 5000    # the issue's table
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pandas as pd

import endpointr
from _common import fake_server, fmt, machine_line, markdown_table

SCENARIOS: dict[str, dict[str, Any]] = {
    "capacity 10, 429 + Retry-After 0.05 s above it": {"capacity": 10, "retry_after": 0.05},
    "30% of requests answered 503 (no Retry-After)": {"random": ("503", 0.3)},
}
SETTINGS: tuple[int | str, ...] = (10, 20, 40, 80, "auto")


def run_one(server: Any, rows: int, concurrent: int | str) -> dict[str, Any]:
    df = pd.DataFrame(
        {"id": range(rows), "text": [f"row {i} of the flow run" for i in range(rows)]}
    )
    started = time.perf_counter()
    out = endpointr.hf_embed_df(
        df,
        text_var="text",
        id_var="id",
        endpoint_url=server.url + "/embed",
        key_name=None,
        output_dir=None,
        progress=False,
        batch_size=4,
        concurrent_requests=concurrent,
    )
    seconds = time.perf_counter() - started
    statuses = [r["status"] for r in server.stats()["requests"]]
    overloaded = sum(1 for s in statuses if s in (429, 503))
    return {
        "setting": concurrent,
        "rows/s": rows / seconds,
        "errors": int(out[".error"].sum()),
        "share": overloaded / max(1, len(statuses)),
        "requests": len(statuses),
        "seconds": seconds,
    }


def scenario(name: str, spec: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    results = []
    with fake_server(latency=0.2) as server:
        for setting in SETTINGS:
            server.reset()
            server.configure(**{k: v for k, v in spec.items() if k != "random"})
            if "random" in spec:
                kind, rate = spec["random"]
                server.post("/_random_faults", {"rate": rate, "kinds": [kind], "seed": 7})
            results.append(run_one(server, rows, setting))
    best = max(r["rows/s"] for r in results)
    print(f"\n### {name}\n")
    table = [
        [
            r["setting"],
            fmt(r["rows/s"], 1),
            r["errors"],
            f"{100 * r['share']:.1f}%",
            r["requests"],
            fmt(r["seconds"], 1),
            f"{r['rows/s'] / best:.2f}",
        ]
        for r in results
    ]
    headers = ["#concurrent_requests", "rows/s", "error rows", "429/503 share", "requests"]
    print(markdown_table([*headers, "seconds", "vs best"], table))
    return results


def outage(rows: int, down: float, after: float) -> None:
    """Stop the server ``after`` seconds into the run for ``down`` seconds, then start it
    again on the same port."""
    import socket
    import threading

    from endpointr.testing import FakeServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    servers = [FakeServer(port=port, latency=0.2).start()]

    def restart() -> None:
        time.sleep(after)
        servers[0].stop()
        time.sleep(down)
        servers.append(FakeServer(port=port, latency=0.2).start())

    bouncer = threading.Thread(target=restart)
    bouncer.start()
    texts = [f"row {i} of the outage run" for i in range(rows)]
    started = time.perf_counter()
    out = endpointr.hf_embed_df(
        pd.DataFrame({"id": range(rows), "text": texts}),
        text_var="text",
        id_var="id",
        endpoint_url=f"http://127.0.0.1:{port}/embed",
        key_name=None,
        output_dir=None,
        progress=False,
        batch_size=4,
        concurrent_requests=10,
    )
    seconds = time.perf_counter() - started
    bouncer.join()
    servers[-1].stop()
    print(f"\n### the server down for {down:g} s mid-run, then back\n")
    row = [rows, int(out[".error"].sum()), int(out[".attempts"].max()), fmt(seconds, 1)]
    print(markdown_table(["rows", "error rows", "most attempts", "seconds"], [row]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="400 rows, a 2 s outage")
    args = parser.parse_args()
    rows, down, after = (400, 2.0, 0.5) if args.quick else (args.rows, 5.0, 2.0)
    print(machine_line())
    print(f"{rows:,} rows, batch_size=4, server latency 0.2 s")
    for name, spec in SCENARIOS.items():
        scenario(name, spec, rows)
    outage(rows, down=down, after=after)


if __name__ == "__main__":
    main()
