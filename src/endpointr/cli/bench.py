"""``endpointr bench``: the batch_size x concurrent_requests grid of an endpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bench import SEED_BATCH_SIZES, SEED_CONCURRENT_REQUESTS, SeedModel, bench, write_report
from ..errors import ConfigError

__all__ = ["add_arguments", "run"]


def _numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,4,8, got {text!r}") from None


def _numbers_or_auto(text: str) -> list[int | str]:
    out: list[int | str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "auto":
            out.append(part)
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected numbers or 'auto' like 1,5,10,20,auto, got {text!r}"
            ) from None
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_argument_group("the endpoint (default: the bundled fake server)")
    where.add_argument("--endpoint-url", help="a Hugging Face Inference Endpoint or TEI URL")
    where.add_argument("--provider", choices=["hf", "openai"], default="hf")
    where.add_argument("--base-url", help="with --provider openai: the server's /v1 URL")
    where.add_argument("--model", help="with --provider openai: the embedding model")
    where.add_argument("--local", action="store_true", help="the bundled local model")
    where.add_argument(
        "--key-name",
        default=argparse.SUPPRESS,
        help="environment variable holding the API key (default: the endpoint's)",
    )
    where.add_argument(
        "--no-key",
        action="store_const",
        const=None,
        dest="key_name",
        default=argparse.SUPPRESS,
        help="send no API key",
    )
    grid = p.add_argument_group("the grid")
    grid.add_argument(
        "--batch-sizes",
        type=_numbers,
        default=list(SEED_BATCH_SIZES),
        help="rows per request (default 1,4,8,16,32)",
    )
    grid.add_argument(
        "--concurrent-requests",
        type=_numbers_or_auto,
        default=list(SEED_CONCURRENT_REQUESTS),
        help="requests in flight, numbers or auto (default 1,5,10,20; try 1,5,10,20,50,100,"
        "200,auto to see where throughput stops growing)",
    )
    grid.add_argument(
        "--max-concurrent-requests", type=int, default=200, help="the most 'auto' may reach"
    )
    grid.add_argument("--rows", type=int, help="rows per cell (default: 2,000; fake: ~2 s each)")
    grid.add_argument("--input", help="a .csv, .parquet or .jsonl file whose texts to send")
    grid.add_argument("--text-col", default="text", help="the column of texts in --input")
    grid.add_argument("--out", default="endpointr-bench", help="where the report goes")
    seed = SeedModel()
    fake = p.add_argument_group("the fake server's latency model")
    fake.add_argument("--latency", type=float, default=seed.latency, help="seconds per request")
    fake.add_argument("--per-row-latency", type=float, default=seed.per_row)
    fake.add_argument(
        "--capacity", type=int, default=seed.capacity, help="requests at once, 429 beyond"
    )
    fake.add_argument(
        "--time-scale",
        type=float,
        default=seed.time_scale,
        help="multiplies every latency (default 0.1: ten times faster than the model)",
    )


def run(args: argparse.Namespace) -> int:
    for name in ("latency", "per_row_latency", "time_scale"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")
    if args.time_scale == 0 or args.capacity < 1:
        raise ConfigError("--time-scale must be > 0 and --capacity >= 1")
    model = SeedModel(args.latency, args.per_row_latency, args.capacity, args.time_scale)
    table = bench(
        endpoint_url=args.endpoint_url,
        provider=args.provider,
        base_url=args.base_url,
        model=args.model,
        local=args.local,
        batch_sizes=args.batch_sizes,
        concurrent_requests=args.concurrent_requests,
        rows=args.rows,
        df=Path(args.input) if args.input else None,
        text_var=args.text_col,
        key_name="default" if "key_name" not in vars(args) else args.key_name,
        seed_model=model,
        max_concurrent_requests=args.max_concurrent_requests,
    )
    written = write_report(table, args.out)
    print((Path(args.out) / "bench.md").read_text(encoding="utf-8"))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if not any(p.suffix == ".png" for p in written):
        print(
            'no pictures: matplotlib is not installed (pip install "endpointr[plot]")',
            file=sys.stderr,
        )
    return 0
