"""The subcommands: embed, complete, fake-server, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..providers.hf import HFEmbed
from .llm import add_embed_options, embed_openai, register_complete

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add every subcommand to the ``sub`` parsers."""
    from .main import _json_object, add_run_options

    embed = sub.add_parser(
        "embed",
        help="embed every row of a file",
        description="Embed every row of a CSV, Parquet or JSONL file.",
    )
    add_run_options(
        embed,
        batch_size=8,
        chunk_size=5000,
        timeout=15,
        key_name="HF_API_KEY; OPENAI_API_KEY with --provider openai",
    )
    embed.set_defaults(key_name=None, batch_size=None)
    embed.add_argument(
        "--endpoint-url",
        default=None,
        help="the endpoint's URL (required for --provider hf)",
    )
    add_embed_options(embed)
    embed.add_argument(
        "--parameters",
        type=_json_object,
        default=None,
        help="extra request fields as JSON, e.g. '{\"normalize\": true}'",
    )
    embed.set_defaults(handler=_embed)
    register_complete(sub)
    _register_classify(sub)

    fake = sub.add_parser(
        "fake-server",
        help="run the local fake endpoint server",
        description="Serve the HF/TEI, OpenAI and Anthropic wire formats "
        "on 127.0.0.1 with deterministic answers (for tests and demos).",
    )
    from ..testing.server import add_arguments

    add_arguments(fake)
    fake.set_defaults(handler=_fake_server)

    retry = sub.add_parser(
        "retry-failed",
        help="re-send the error rows of an earlier run",
        description="Re-run the command that made OUTPUT_DIR, sending only the rows that "
        "ended as errors; their new results replace the old ones in place.",
    )
    retry.add_argument("output_dir", help="an output directory made by an endpointr command")
    retry.set_defaults(handler=_retry_failed)

    demo = sub.add_parser(
        "demo",
        help="embed a sample file against the bundled fake server",
        description="Start the fake server, write a sample CSV and embed it "
        "end to end: no API key, no network.",
    )
    demo.add_argument("--rows", type=int, default=20_000, help="rows in the sample file")
    demo.add_argument("--output-dir", default="endpointr-demo", help="where results go")
    demo.set_defaults(handler=_demo)


def _embed(args: argparse.Namespace) -> int:
    from ..api.hf_utils import resolve_batch_size
    from ..errors import ConfigError
    from .main import endpoint_url, run_table, settings_from

    if args.provider == "openai":
        return embed_openai(args)
    if args.endpoint_url is None or args.base_url is not None:
        raise ConfigError("--provider hf needs --endpoint-url (and takes no --base-url)")
    args.key_name = args.key_name or "HF_API_KEY"
    if args.batch_size is None:
        args.batch_size = 8
    endpoint = HFEmbed(endpoint_url(args.endpoint_url), dict(args.parameters or {}))
    args.batch_size = asyncio.run(
        resolve_batch_size(
            endpoint.url,
            args.batch_size,
            None if args.no_key else args.key_name,
            verify=not args.insecure,
            ca_bundle=args.ca_bundle,
        )
    )
    settings = settings_from(args, extra_manifest={"parameters": endpoint.parameters})
    return run_table(args, endpoint, "embed", settings)


def _retry_failed(args: argparse.Namespace) -> int:
    import orjson

    from ..errors import CheckpointError
    from ..io.manifest import MANIFEST
    from .main import build_parser, run

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
    argv = [a for a in command if a not in ("--overwrite", "--retry-failed")]
    argv += ["--output-dir", str(args.output_dir), "--retry-failed"]
    again = build_parser().parse_args(argv)
    again.argv = command
    return run(again)


def _fake_server(args: argparse.Namespace) -> int:
    from ..testing.server import serve_forever, settings_from_args

    try:
        serve_forever(args.port, args.host, **settings_from_args(args))
    except (ValueError, OSError) as exc:
        print(f"endpointr fake-server: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from ..io.chunks import chunk_paths
    from ..testing import FakeServer
    from .main import run_table

    words = [
        "fast",
        "rows",
        "endpoint",
        "vector",
        "table",
        "stream",
        "retry",
        "chunk",
        "model",
        "server",
    ]
    texts = [
        " ".join(words[(i * 7 + j) % len(words)] for j in range(8)) + f" #{i}"
        for i in range(args.rows)
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
        parser_args = argparse.Namespace(input=str(path), text_col="text", id_col="id")
        from ..api._job import JobSettings

        settings = JobSettings(
            batch_size=32,
            concurrent_requests=20,
            output_dir=args.output_dir,
            overwrite=True,
            key_name=None,
            timeout=15,
        )
        code = run_table(parser_args, HFEmbed(server.url + "/embed"), "embed", settings)
    table = pa.concat_tables(pq.read_table(p) for p in chunk_paths(Path(args.output_dir)))
    print(table.slice(0, 3).to_pandas().to_string(max_colwidth=40))
    return code


def _register_classify(sub: Any) -> None:
    from .main import _json_object, add_run_options

    classify = sub.add_parser(
        "classify",
        help="classify every row of a file",
        description="Classify every row of a CSV, Parquet or JSONL file with a Hugging Face "
        "Inference Endpoint or TEI: one score column per label, then label and score.",
    )
    add_run_options(classify, batch_size=8, chunk_size=5000, timeout=60, key_name="HF_API_KEY")
    classify.add_argument("--endpoint-url", required=True, help="the endpoint's URL")
    classify.add_argument(
        "--label-map",
        type=_json_object,
        default=None,
        help='rename labels as JSON, e.g. \'{"LABEL_0": "negative"}\'',
    )
    classify.add_argument(
        "--max-length", type=int, default=512, help="truncate texts to N tokens (default 512)"
    )
    classify.add_argument(
        "--parameters",
        type=_json_object,
        default=None,
        help='extra request parameters as JSON, e.g. \'{"function_to_apply": "sigmoid"}\'',
    )
    classify.set_defaults(handler=_classify)


def _classify(args: argparse.Namespace) -> int:
    from ..api.hf_classify import classify_endpoint, fit_to_server, manifest_fields
    from .main import endpoint_url, run_table, settings_from

    endpoint = classify_endpoint(
        endpoint_url(args.endpoint_url),
        parameters=args.parameters,
        max_length=args.max_length,
        label_map=args.label_map,
        reserved=(args.id_col,),
    )
    settings = settings_from(args)
    settings.batch_size = asyncio.run(
        fit_to_server(
            endpoint,
            settings.batch_size,
            settings.key_name,
            verify=settings.verify,
            ca_bundle=settings.ca_bundle,
        )
    )
    settings.check()
    settings.extra_manifest = manifest_fields(endpoint)
    return run_table(args, endpoint, "classify", settings)
