"""One run: rows from a source through an endpoint into committed chunks, or into memory.

This is the machinery under every public function: the output directory and its
manifest, the transport, the engine, the progress bar, Ctrl-C, and reading the results
back in input order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .._version import __version__
from ..config import redact_url, resolve_key
from ..errors import EndpointrError, RunStoppedError
from ..io.cache import ResponseCache
from ..io.chunks import ChunkWriter, chunk_paths, drop_superseded, read_chunks
from ..io.frames import take_rows
from ..io.manifest import (
    OutputDir,
    auto_dir,
    finish_manifest,
    latest_per_id,
    now_iso,
    prepare_output_dir,
)
from ..io.readers import Source
from ..io.vectors import VectorBlock
from ..providers.base import Endpoint
from ..types import Result
from .copies import Copies
from .flow import Flow
from .options import SHARED_FLOW, RunOptions
from .progress import Progress
from .reuse import Reuse
from .runner import Engine, RunStats, Sink
from .sync import INTERRUPT_HANDLERS
from .transport import Transport

__all__ = ["Outcome", "run_rows", "run_table"]


@dataclass
class Outcome:
    """What a run gives back: the result table (when collected), counters, the directory."""

    table: pa.Table | None
    stats: RunStats
    output_dir: Path | None


async def run_table(
    source: Source,
    endpoint: Endpoint,
    options: RunOptions,
    *,
    collect: bool = True,
    command: Sequence[str] | None = None,
) -> Outcome:
    """Send every row of ``source`` through ``endpoint``; commit, then read results back
    (``collect``; without it they stay on disk). ``command`` is the command line that
    started the run, kept in the manifest for ``endpointr retry-failed``.

    Raises :class:`KeyboardInterrupt` after committing what finished when interrupted.
    """
    key = resolve_key(options.key_name)
    cache = _open_cache(endpoint, options)  # a cache that cannot be used fails before all else
    try:
        out = _prepare(source, endpoint, options)
        try:
            stats, writer, copies = await _run(
                source, endpoint, options, key, out, collect, command, cache
            )
        finally:
            if out:
                out.release()
    finally:
        if cache is not None:
            cache.close()
    if stats.interrupted:
        where = f" in {out.path}" if out else ""
        print(
            f"Interrupted: {stats.done:,} rows committed{where}; run the same call again "
            "to resume.",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    table = _collect(source, endpoint, out, writer, copies) if collect else None
    return Outcome(table, stats, out.path if out else None)


async def run_rows(
    pairs: Iterable[tuple[Any, Any]], endpoint: Endpoint, options: RunOptions
) -> list[Result]:
    """The results of ``(id, text)`` pairs, in the order they finished; nothing written."""
    results: list[Result] = []

    async def keep(batch: list[Result]) -> None:
        results.extend(batch)

    key = resolve_key(options.key_name)
    cache = _open_cache(endpoint, options)
    try:
        await _send(pairs, endpoint, options, key, keep, RunStats(), progress=False, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    return results


async def _run(
    source: Source,
    endpoint: Endpoint,
    options: RunOptions,
    key: str | None,
    out: OutputDir | None,
    collect: bool,
    command: Sequence[str] | None,
    cache: ResponseCache | None,
) -> tuple[RunStats, ChunkWriter, Copies | None]:
    skip = out.done_ids if out else set()
    left = _left(source, skip)
    stats = RunStats(total=source.total if left is None else pc.sum(left).as_py() or 0)
    in_memory = options.dedupe and source.in_memory
    copies = _copies(source, left) if in_memory else None
    writer = ChunkWriter(
        out.path if out else None,
        chunk_size=options.chunk_size,
        endpoint=endpoint,
        id_var=source.id_var,
        id_type=source.ids.type,
        stamp=out.manifest["fingerprint"] if out else None,
        keep=collect,
        # in memory only, the copies are made once, by the final reorder (_collect)
        expand=copies.expand if copies and out else None,
        # in memory, every row its own text: vectors go straight to their input position
        vectors=VectorBlock(source.ids) if collect and not out and not copies else None,
    )
    sink: Sink = writer.add
    if copies is not None:
        sink = _counting_copies(copies, writer.add, stats)
    if out:
        manifest = _manifest(source, endpoint, options)
        if command:
            manifest["command"] = [redact_url(a) if "://" in a else a for a in command]
        out.save(status="running", started_at=now_iso(), ended_at=None, **manifest)
    down: RunStoppedError | None = None
    changes: list[str] = []
    served: dict[str, Any] | None = None
    try:
        endpoint, changes, served = await _send(
            copies.sent() if copies else source.pairs(skip),
            endpoint,
            options,
            key,
            sink,
            stats,
            progress=options.progress,
            dedupe=options.dedupe and not in_memory,  # in memory: done up front
            cache=cache,
        )
    except RunStoppedError as exc:
        down = exc
    finally:
        await writer.close()
    if out:
        if options.retry_failed and writer.written:
            drop_superseded(out.path, writer.written, source.id_var)
        if changes:
            out.save(changes=changes, **endpoint.manifest_fields())
        if served:
            out.save(served=served)
        stopped = stats.interrupted or down is not None
        finish_manifest(out, _counters(stats), id_var=source.id_var, interrupted=stopped)
    if down is not None:
        where = f" (output in {out.path})" if out else ""
        raise type(down)(f"{down}{where}") from None
    return stats, writer, copies


def _prepare(source: Source, endpoint: Endpoint, options: RunOptions) -> OutputDir | None:
    if options.output_dir is None:
        return None
    request_settings = {
        **endpoint.fingerprint(),
        "url": redact_url(endpoint.url),
        "text_var": source.text_var,
        "id_var": source.id_var,
    }
    digest = source.digest()
    auto = options.output_dir == "auto"
    where = (
        auto_dir(endpoint.name.replace(".", "-"), request_settings, digest)
        if auto
        else Path(options.output_dir)
    )
    out = prepare_output_dir(
        where,
        id_var=source.id_var,
        request_settings=request_settings,
        overwrite=options.overwrite,
        retry_failed=options.retry_failed,
    )
    before = out.manifest.get("input_digest")
    if out.resumed_rows:
        changed = before is not None and before != digest
        note = (
            " The input changed since then: the ids already there keep their results "
            "(overwrite=True, --overwrite, sends every row again)."
            if changed
            else ""
        )
        _note(f"resuming {out.path}: {out.resumed_rows:,} rows already done.{note}")
    elif auto:
        _note(f"results go to {out.path} (the same call again resumes from there)")
    out.manifest["input_digest"] = digest
    return out


def _copies(source: Source, left: pa.Array | None) -> Copies | None:
    """The repeated texts of the rows still to send (``left``: which they are; ``None``:
    all), when the input is in memory."""
    texts = source.text_values()
    if texts is None:
        return None
    ids = source.ids
    if left is not None:
        ids, texts = ids.filter(left), texts[left.to_numpy(zero_copy_only=False)]
    copies = Copies(ids, texts)
    return copies if copies.rows else None


def _counting_copies(copies: Copies, sink: Sink, stats: RunStats) -> Sink:
    """``sink``, counting the rows that copy each result as done with it."""

    async def add(results: list[Result]) -> None:
        rows, failed = copies.extra(results)
        if rows:
            stats.done += rows
            stats.failed += failed
            stats.succeeded += rows - failed
            stats.copies += rows
        await sink(results)

    return add


def _note(line: str) -> None:
    print(f"endpointr: {line}", file=sys.stderr)


def _left(source: Source, skip: set[Any]) -> pa.Array | None:
    """Which rows are still to send, when ``skip`` (the ids done) leaves out some."""
    if not skip:
        return None
    return pc.invert(pc.is_in(source.ids, value_set=pa.array(list(skip), type=source.ids.type)))


def _manifest(source: Source, endpoint: Endpoint, options: RunOptions) -> dict[str, Any]:
    return {
        "endpointr_version": __version__,
        "endpoint": endpoint.name,
        "endpoint_url": redact_url(endpoint.url),
        "key_name": options.key_name,
        "input": redact_url(source.label) if "://" in source.label else source.label,
        "text_var": source.text_var,
        "id_var": source.id_var,
        "batch_size": options.batch_size,
        "concurrent_requests": options.concurrent_requests,
        "chunk_size": options.chunk_size,
        "max_retries": options.max_retries,
        "timeout": options.timeout,
        "dedupe": options.dedupe,
        "cache_dir": str(Path(options.cache_dir).resolve()) if options.cache_dir else None,
        "row_count": source.total,
        **endpoint.manifest_fields(),
    }


def _counters(stats: RunStats) -> dict[str, Any]:
    counters: dict[str, Any] = {
        "succeeded": stats.succeeded,
        "failed": stats.failed,
        "retries": stats.retries,
        "requests": stats.requests,
        "seconds": round(stats.elapsed, 3),
    }
    if stats.input_tokens or stats.output_tokens:  # as the answers' usage reported them
        counters.update(input_tokens=stats.input_tokens, output_tokens=stats.output_tokens)
    if stats.copies:
        counters["deduplicated"] = stats.copies
    if stats.cache_hits is not None:
        counters.update(cache_hits=stats.cache_hits, cache_misses=stats.cache_misses)
    return counters


async def _send(
    pairs: Iterable[tuple[Any, Any]],
    endpoint: Endpoint,
    options: RunOptions,
    key: str | None,
    sink: Sink,
    stats: RunStats,
    *,
    progress: bool,
    dedupe: bool = False,
    cache: ResponseCache | None = None,
) -> tuple[Endpoint, list[str], dict[str, Any] | None]:
    """Run ``pairs``; the endpoint the run ended with, what it changed on the way, and
    what its answers said they were made with. ``dedupe``: rows whose text an earlier row
    of ``pairs`` has get a copy of its answer (see :class:`Reuse`)."""
    reuse = (
        Reuse(endpoint, stats, dedupe=dedupe, cache=cache) if dedupe or cache is not None else None
    )
    transport = Transport(
        timeout=options.timeout,
        auth_headers=endpoint.auth_headers(key) if key else None,
        auth_url=endpoint.url,
        verify=options.verify,
        ca_bundle=options.ca_bundle,
    )
    bar = Progress(stats, enabled=progress)
    async with transport:
        engine = Engine(
            endpoint,
            transport,
            sink,
            batch_size=options.rows_per_request,
            flow=_flow(options, endpoint),
            stats=stats,
            reuse=reuse,
        )
        bar.start()
        try:
            with _interrupts(engine):
                await engine.run(pairs)
        finally:
            await bar.finish()
    return engine.endpoint, engine.changes, engine.served


def _flow(options: RunOptions, endpoint: Endpoint) -> Flow:
    """The run's flow control; under a shared budget (``SHARED_FLOW``: the workers of a
    Ray Data stage) adapted to take its share of it."""
    flow = options.flow(time.monotonic(), endpoint.tokenizer_model)
    adapt = SHARED_FLOW.get()
    return adapt(flow) if adapt is not None else flow


def _open_cache(endpoint: Endpoint, options: RunOptions) -> ResponseCache | None:
    """The response cache of ``options.cache_dir`` for ``endpoint``'s request settings."""
    if options.cache_dir is None:
        return None
    settings = {**endpoint.fingerprint(), "url": redact_url(endpoint.url)}
    return ResponseCache.open(options.cache_dir, settings)


@contextlib.contextmanager
def _interrupts(engine: Engine) -> Iterator[None]:
    """First Ctrl-C: stop sending and let what is in flight finish. Second: stop now.

    In the main thread the signal is caught here; in a worker thread (:func:`run_sync`
    inside a notebook's loop) the waiting main thread forwards it through
    ``INTERRUPT_HANDLERS``.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    hard = False

    def on_sigint() -> None:
        nonlocal hard
        if engine.stats.interrupted and main is not None:
            print("\nStopping now...", file=sys.stderr)
            hard = True
            main.cancel()
            return
        print(
            "\nStopping: finishing the requests in flight (Ctrl-C again to stop now)...",
            file=sys.stderr,
        )
        engine.stop()

    installed = False
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
    ident = threading.get_ident()
    INTERRUPT_HANDLERS[ident] = lambda: loop.call_soon_threadsafe(on_sigint)
    try:
        yield
    except asyncio.CancelledError:
        if not hard or main is None:
            raise
        # our own cancel: the run ends as interrupted, what finished is still committed
        main.uncancel()
    finally:
        INTERRUPT_HANDLERS.pop(ident, None)
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _collect(
    source: Source,
    endpoint: Endpoint,
    out: OutputDir | None,
    writer: ChunkWriter,
    copies: Copies | None = None,
) -> pa.Table:
    # this run's chunks are still in memory; only earlier runs' chunks are read back
    earlier = [p for p in chunk_paths(out.path) if p not in writer.written] if out else []
    tables = read_chunks(earlier) + writer.tables
    if not tables:
        raise EndpointrError("no results were recorded")
    table = latest_per_id(pa.concat_tables(tables, promote_options="permissive"), source.id_var)
    block = writer.vectors if writer.vectors is not None and writer.vectors.holds else None
    if block is None:
        # fixed-size vectors before the reorder: taking from them is a plain strided copy
        table = endpoint.finalize(table)
    # without an output directory the copies were never made: each row takes the result
    # of the row its text was sent with, and its own id
    wanted = source.ids if copies is None or out else copies.sent_with()
    position = pc.index_in(wanted, value_set=table.column(source.id_var))
    if position.null_count:
        raise EndpointrError(
            f"{position.null_count} input rows have no result in the output; re-run to send them"
        )
    table = take_rows(table, position)
    if block is not None:  # the vectors, in input order already
        table = endpoint.finalize(block.attach(table, wanted))
    if wanted is not source.ids:
        table = table.set_column(0, table.schema.field(0), source.ids)
    return table
