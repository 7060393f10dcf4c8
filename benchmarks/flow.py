"""Flow control: an overloaded server slows the run down and turns no row into an error.

Each scenario runs one public function against the fake server (its own process, latency
0.2 s) with a sweep of fixed ``concurrent_requests`` and with ``"auto"``, side by side in
one run, and prints rows/s, error rows, the share of requests answered 429/503 and the
ratio of each setting's rate to the best one's. Default settings otherwise
(``max_retries=5``). Embedding scenarios send ``batch_size=4``; the Anthropic one sends
one row per request, so it runs a quarter of the rows.

The RPM, TPM and Anthropic windows are 2 s long (the fake server's ``rate_window``) so
that a run meets them within seconds; their headers carry the budgets as the provider's
would. The last scenario stops the server (in this process) for a few seconds mid-run
and starts it again on the same port: a restart.

    python benchmarks/flow.py                # 2,000 rows per run
    python benchmarks/flow.py --rows 5000    # the issue's table
    python benchmarks/flow.py --quick        # 200 rows, three settings, a 2 s outage
    python benchmarks/flow.py --only 503     # only the scenarios whose name says 503
    python benchmarks/flow.py --repeats 3    # each setting 3 times, the median shown
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

import endpointr
from _common import fake_server, fmt, machine_line, markdown_table

SETTINGS: tuple[int | str, ...] = (10, 20, 40, 80, "auto")
QUICK_SETTINGS: tuple[int | str, ...] = (10, 80, "auto")
LATENCY = 0.2
WINDOW = 2.0
MAX_TOKENS = 16
COMMON: dict[str, Any] = {
    "text_var": "text",
    "id_var": "id",
    "key_name": None,
    "output_dir": None,
    "progress": False,
}


def _hf(server: Any, df: pd.DataFrame, concurrent: int | str) -> pd.DataFrame:
    return endpointr.hf_embed_df(
        df,
        endpoint_url=server.url + "/embed",
        batch_size=4,
        concurrent_requests=concurrent,
        **COMMON,
    )


def _openai(server: Any, df: pd.DataFrame, concurrent: int | str) -> pd.DataFrame:
    return endpointr.oai_embed_df(
        df, base_url=server.url + "/v1", batch_size=4, concurrent_requests=concurrent, **COMMON
    )


def _anthropic(server: Any, df: pd.DataFrame, concurrent: int | str) -> pd.DataFrame:
    return endpointr.ant_complete_df(
        df, base_url=server.url, max_tokens=MAX_TOKENS, concurrent_requests=concurrent, **COMMON
    )


# The function a scenario runs and the share of the rows it runs.
APIS: dict[str, tuple[Callable[[Any, pd.DataFrame, int | str], pd.DataFrame], float]] = {
    "hf": (_hf, 1.0),
    "openai": (_openai, 1.0),
    "anthropic": (_anthropic, 0.25),
}


def scenarios(rows: int) -> dict[str, dict[str, Any]]:
    """Name -> spec: ``api`` (a key of :data:`APIS`, default ``"hf"``), ``random``
    (``(kind, rate)`` of random faults) and fake-server settings for ``/_configure``."""
    tokens = 6 * 4  # "row N of the flow run" is 6 tokens, 4 rows a request
    half_way = rows / 4 / (10 / LATENCY) / 2  # capacity 10 at full speed
    # OpenAI's and Anthropic's limits are token buckets; the IETF fields describe windows
    bucket = {"rate_window": WINDOW, "rate_model": "bucket"}
    return {
        "capacity 10, 429 + Retry-After 0.05 s above it": {"capacity": 10, "retry_after": 0.05},
        "capacity 10, 429 without Retry-After above it": {"capacity": 10, "retry_after": None},
        f"capacity 10, halved to 5 after {half_way:g} s": {
            "capacity": 10,
            "capacity_schedule": [[half_way, 5]],
        },
        "30% of requests answered 503 (no Retry-After)": {"random": ("503", 0.3)},
        "503 bursts: 0.2 s of every 0.5 s, Retry-After 0.2 s": {
            "burst_every": 0.5,
            "burst_length": 0.2,
            "retry_after": 0.2,
        },
        "a device serving 4 requests at once, the rest queued (no 429)": {"device_slots": 4},
        f"OpenAI RPM bucket: 40 requests per {WINDOW:g} s": {"api": "openai", "rpm": 40, **bucket},
        f"OpenAI TPM bucket: {40 * tokens} tokens per {WINDOW:g} s": {
            "api": "openai",
            "tpm": 40 * tokens,
            **bucket,
        },
        f"Anthropic bucket: 40 requests and {30 * (6 + MAX_TOKENS)} tokens per {WINDOW:g} s": {
            "api": "anthropic",
            "rpm": 40,
            "tpm": 30 * (6 + MAX_TOKENS),
            **bucket,
        },
        f"IETF RateLimit fields, a window of 40 requests per {WINDOW:g} s": {
            "rpm": 40,
            "rate_window": WINDOW,
            "ratelimit_headers": "ietf",
        },
    }


def run_one(server: Any, api: str, rows: int, concurrent: int | str) -> dict[str, Any]:
    function, share = APIS[api]
    rows = max(1, int(rows * share))
    df = pd.DataFrame(
        {"id": range(rows), "text": [f"row {i} of the flow run" for i in range(rows)]}
    )
    started = time.perf_counter()
    out = function(server, df, concurrent)
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


def scenario(
    name: str,
    spec: dict[str, Any],
    rows: int,
    settings: tuple[int | str, ...],
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Each setting ``repeats`` times, interleaved; the run of median rate is shown."""
    runs: dict[int | str, list[dict[str, Any]]] = {setting: [] for setting in settings}
    configure = {k: v for k, v in spec.items() if k not in ("random", "api")}
    with fake_server(latency=LATENCY) as server:
        for _ in range(repeats):
            for setting in settings:
                server.reset()
                server.configure(**configure)
                if "random" in spec:
                    kind, rate = spec["random"]
                    server.post("/_random_faults", {"rate": rate, "kinds": [kind], "seed": 7})
                runs[setting].append(run_one(server, spec.get("api", "hf"), rows, setting))
    results = [sorted(done, key=lambda r: r["rows/s"])[len(done) // 2] for done in runs.values()]
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
    servers = [FakeServer(port=port, latency=LATENCY).start()]

    def restart() -> None:
        time.sleep(after)
        servers[0].stop()
        time.sleep(down)
        servers.append(FakeServer(port=port, latency=LATENCY).start())

    bouncer = threading.Thread(target=restart)
    bouncer.start()
    texts = [f"row {i} of the outage run" for i in range(rows)]
    started = time.perf_counter()
    out = endpointr.hf_embed_df(
        pd.DataFrame({"id": range(rows), "text": texts}),
        endpoint_url=f"http://127.0.0.1:{port}/embed",
        batch_size=4,
        concurrent_requests=10,
        **COMMON,
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
    parser.add_argument(
        "--quick", action="store_true", help="200 rows, settings 10, 80 and auto, a 2 s outage"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of each setting, interleaved; the median is shown (default 1)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORDS",
        help="run only the scenarios whose name holds WORDS (repeatable; 'down' for the outage)",
    )
    args = parser.parse_args()
    rows, down, after = (200, 2.0, 0.5) if args.quick else (args.rows, 5.0, 2.0)
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    print(machine_line())
    print(f"{rows:,} rows, server latency {LATENCY:g} s")
    for name, spec in scenarios(rows).items():
        if not args.only or any(words in name for words in args.only):
            scenario(name, spec, rows, settings, args.repeats)
    if not args.only or "down" in args.only:
        outage(rows, down=down, after=after)


if __name__ == "__main__":
    main()
