"""``endpointr jobs``: provider Batch-API jobs from the command line.

``submit`` sends a file's rows as jobs (``--wait`` follows them to the end), ``status``
shows a job directory's jobs as the provider sees them, ``fetch`` collects their results
into the directory's chunks, ``cancel`` cancels what has not ended and collects what had
finished, and ``list`` lists the provider's own batches.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..api.batch import (
    aant_batch_df,
    aant_batch_list,
    ajobs_cancel,
    ajobs_fetch,
    ajobs_status,
    aoai_batch_df,
    aoai_batch_list,
)
from ..batch.jobs import Estimate
from ..engine.sync import run_sync
from ..errors import ConfigError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    submit = verbs.add_parser(
        "submit",
        help="submit every row of a file as Batch-API jobs",
        description="Submit the rows of a CSV, Parquet or JSONL file as OpenAI Batch or "
        "Anthropic Message Batches jobs, split over the provider's limits. The jobs are "
        "recorded in --output-dir at once; the same command again re-attaches to them.",
    )
    submit.add_argument("input", help="a .csv, .parquet or .jsonl file")
    submit.add_argument("--provider", choices=["openai", "anthropic"], default="openai")
    submit.add_argument(
        "--task", choices=["complete", "embed"], default="complete", help="embed: OpenAI only"
    )
    submit.add_argument("--text-col", required=True, help="the column with the texts")
    submit.add_argument("--id-col", required=True, help="the column with the row ids")
    submit.add_argument("--output-dir", default="auto", help="where jobs and results go")
    submit.add_argument("--model", help="the model (default: the endpoint's)")
    submit.add_argument("--system-prompt", help="the system prompt of every row")
    submit.add_argument("--schema", help="a JSON schema file whose fields become columns")
    submit.add_argument("--temperature", type=float, default=0)
    submit.add_argument("--max-tokens", type=int, default=500)
    submit.add_argument("--dimensions", type=int, help="with --task embed: vector size")
    submit.add_argument("--max-requests", type=int, help="requests at most per job")
    submit.add_argument("--max-bytes", type=int, help="bytes at most per job")
    submit.add_argument("--dry-run", action="store_true", help="estimate only, send nothing")
    submit.add_argument(
        "--wait", action="store_true", help="follow the jobs to their end and collect them"
    )
    submit.add_argument(
        "--resubmit-failed", action="store_true", help="with --wait: send failed rows once more"
    )
    submit.add_argument("--overwrite", action="store_true", help="start --output-dir over")
    _common(submit)

    for verb, about in (
        ("status", "show the jobs of a job directory as the provider sees them"),
        ("fetch", "collect the results of a job directory's ended jobs"),
        ("cancel", "cancel a job directory's unfinished jobs and collect what they did"),
    ):
        q = verbs.add_parser(verb, help=about, description=about[0].upper() + about[1:] + ".")
        q.add_argument("output_dir", help="a directory made by `endpointr jobs submit`")
        if verb != "status":
            q.add_argument(
                "--no-wait",
                action="store_true",
                help="collect only the jobs that have ended, then return",
            )
        if verb == "fetch":
            q.add_argument(
                "--resubmit-failed", action="store_true", help="send the failed rows once more"
            )
        _common(q, key=False)

    listing = verbs.add_parser("list", help="list the provider's batches")
    listing.add_argument("--provider", choices=["openai", "anthropic"], default="openai")
    listing.add_argument("--limit", type=int, default=20)
    _common(listing)
    p.set_defaults(handler=run)


def _common(p: argparse.ArgumentParser, *, key: bool = True) -> None:
    p.add_argument("--base-url", help="the API root: .../v1 for OpenAI, the host for Anthropic")
    if key:
        p.add_argument("--key-name", help="environment variable holding the API key")
        p.add_argument("--no-key", action="store_true", help="send no key (local servers)")
    p.add_argument("--poll-interval", type=float, default=30.0, help="seconds between polls")


def _key_name(args: argparse.Namespace, provider: str) -> str | None:
    if args.no_key:
        return None
    default = "ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY"
    return str(args.key_name or default)


def run(args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "submit":
        return _submit(args)
    if verb == "list":
        call = aant_batch_list if args.provider == "anthropic" else aoai_batch_list
        page = run_sync(
            call(args.limit, key_name=_key_name(args, args.provider), base_url=args.base_url)
        )
        for batch in page.get("data") or []:
            status = batch.get("status") or batch.get("processing_status")
            counts = orjson.dumps(batch.get("request_counts") or {}).decode()
            print(f"{batch.get('id')}\t{status}\t{counts}")
        return 0
    if verb == "status":
        frame = run_sync(ajobs_status(args.output_dir, base_url=args.base_url))
        _print_jobs(frame)
        return 0
    wait = not args.no_wait
    if verb == "fetch":
        frame = run_sync(
            ajobs_fetch(
                args.output_dir,
                wait=wait,
                resubmit_failed=args.resubmit_failed,
                poll_interval=args.poll_interval,
                base_url=args.base_url,
            )
        )
    else:
        frame = run_sync(
            ajobs_cancel(
                args.output_dir, wait=wait, poll_interval=args.poll_interval, base_url=args.base_url
            )
        )
    _print_jobs(frame)
    return 0


def _submit(args: argparse.Namespace) -> int:
    if args.provider == "anthropic" and args.task == "embed":
        raise ConfigError("Anthropic has no embeddings; use --provider openai with --task embed")
    keywords: dict[str, Any] = {
        "text_var": args.text_col,
        "id_var": args.id_col,
        "model": args.model,
        "base_url": args.base_url,
        "key_name": _key_name(args, args.provider),
        "output_dir": args.output_dir,
        "wait": args.wait,
        "poll_interval": args.poll_interval,
        "resubmit_failed": args.resubmit_failed,
        "dry_run": args.dry_run,
        "overwrite": args.overwrite,
        "max_requests": args.max_requests,
        "max_bytes": args.max_bytes,
    }
    if args.task == "complete":
        keywords.update(
            system_prompt=args.system_prompt,
            schema=args.schema,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        )
        if args.dimensions is not None:
            raise ConfigError("--dimensions is for --task embed")
    elif args.system_prompt or args.schema:
        raise ConfigError("--system-prompt and --schema are for --task complete")
    else:
        keywords["dimensions"] = args.dimensions
    if args.provider == "anthropic":
        outcome = run_sync(aant_batch_df(args.input, **keywords))
    else:
        outcome = run_sync(aoai_batch_df(args.input, task=args.task, **keywords))
    if isinstance(outcome, Estimate):
        print(orjson.dumps(outcome.as_dict(), option=orjson.OPT_INDENT_2).decode())
        print(f"endpointr: {outcome}", file=sys.stderr)
        return 0
    if not args.wait:
        _print_jobs(outcome)
        return 0
    failed = int(outcome[".error"].sum()) if ".error" in outcome else 0
    where = outcome.attrs.get("output_dir", args.output_dir)
    print(f"endpointr: {len(outcome):,} rows, {failed:,} error rows, in {where}", file=sys.stderr)
    return 3 if failed else 0


def _print_jobs(frame: Any) -> None:
    columns = ["job_id", "status", "requests", "fetched", "resubmission", "provider_counts"]
    print("\t".join(columns))
    for row in frame[columns].itertuples(index=False):
        print("\t".join("" if v is None else str(v) for v in row))
