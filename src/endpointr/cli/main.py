"""Commands of the ``endpointr`` CLI."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from .._version import __version__
from ..api._job import JobSettings, run_job
from ..config import check_url, redact_url
from ..errors import EndpointrError
from ..io.readers import open_source
from ..providers.base import Endpoint
from . import commands

__all__ = ["build_parser", "run"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _positive_int_or_auto(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {value!r}") from None


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"normalize\": true}'")
    return parsed


def add_run_options(
    p: argparse.ArgumentParser, *, batch_size: int, chunk_size: int, timeout: float, key_name: str
) -> None:
    """The options every table-running command shares (the *_df keywords)."""
    p.add_argument("input", help="a .csv, .parquet or .jsonl file")
    p.add_argument("--text-col", required=True, help="column holding the text (text_var)")
    p.add_argument("--id-col", required=True, help="column holding a unique row id (id_var)")
    p.add_argument(
        "--key-name",
        default=key_name,
        help=f"environment variable holding the API key (default {key_name})",
    )
    p.add_argument(
        "--no-key", action="store_true", help="send no API key (self-hosted and local servers)"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int_or_auto,
        default=batch_size,
        help=f"rows per request, or 'auto' for the server's limit (default {batch_size})",
    )
    p.add_argument(
        "--concurrent-requests",
        type=_positive_int_or_auto,
        default=5,
        help="requests in flight at once, or 'auto' (default 5)",
    )
    p.add_argument(
        "--output-dir",
        default="auto",
        help="directory for chunks and metadata.json (default: a new timestamped one)",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=chunk_size,
        help=f"rows per output chunk file (default {chunk_size})",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=5,
        help="attempts per request, the first included (default 5)",
    )
    p.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds per attempt (default {timeout:g})"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete results of an earlier run in --output-dir and start over",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="resume, also re-sending rows that ended as errors",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--ca-bundle", default=None, help="extra CA certificates (PEM file)")
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="endpointr",
        description="Push the rows of a table through ML inference endpoints, "
        "as fast as they allow, without losing a row.",
    )
    parser.add_argument("--version", action="version", version=f"endpointr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    return parser


def settings_from(args: argparse.Namespace, **extra: Any) -> JobSettings:
    """The :class:`JobSettings` the shared run options describe."""
    return JobSettings(
        batch_size=args.batch_size,
        concurrent_requests=args.concurrent_requests,
        max_retries=args.max_retries,
        timeout=args.timeout,
        chunk_size=args.chunk_size,
        output_dir=args.output_dir,
        progress=not args.no_progress,
        key_name=None if args.no_key else args.key_name,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        verify=not args.insecure,
        ca_bundle=args.ca_bundle,
        **extra,
    )


def run_table(
    args: argparse.Namespace, endpoint: Endpoint, task: str, settings: JobSettings
) -> int:
    """Run a file through ``endpoint``; results stay on disk (nothing is collected).

    The command line is kept in the manifest (URLs redacted) for ``endpointr retry-failed``.
    """
    settings.check()
    argv = getattr(args, "argv", None)
    if argv:
        settings.extra_manifest["command"] = [redact_url(a) if "://" in a else a for a in argv]
    source = open_source(Path(args.input), text_var=args.text_col, id_var=args.id_col)
    outcome = asyncio.run(run_job(source, endpoint, settings, task=task, collect=False))
    print(f"results: {outcome.output_dir}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen command; bad input is one line on stderr and exit status 2."""
    try:
        return int(args.handler(args))
    except EndpointrError as exc:
        print(f"endpointr: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def endpoint_url(value: str) -> str:
    return check_url(value, "--endpoint-url")
