"""One run of a table through an endpoint: the machinery under every public function."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from .._version import __version__
from ..config import check_int, check_seconds, redact_url, resolve_key
from ..engine.limits import ConcurrencyLimit, RateLimiter
from ..engine.progress import Progress
from ..engine.retry import RetryPolicy
from ..engine.runner import Engine, RunStats
from ..engine.transport import Transport, ssl_context
from ..errors import ConfigError, EndpointrError
from ..io.chunks import ChunkWriter, chunk_paths, drop_superseded, read_chunks
from ..io.manifest import OutputDir, latest_per_id, now_iso, prepare_output_dir
from ..io.readers import Source
from ..providers.base import Endpoint

__all__ = ["JobOutcome", "JobSettings", "run_job", "run_sync", "synced"]

T = TypeVar("T")
AUTO_START = 8
# thread id -> its run's Ctrl-C handler, for runs in a worker thread (see run_sync)
_FORWARD: dict[int, Callable[[], Any]] = {}


@dataclass
class JobSettings:
    """How to run: everything that does not change the answers, plus where to write."""

    batch_size: int = 8
    concurrent_requests: int | str = 5
    max_retries: int = 5
    timeout: float = 15.0
    chunk_size: int = 5000
    output_dir: str | Path | None = "auto"
    progress: bool = True
    key_name: str | None = None
    overwrite: bool = False
    retry_failed: bool = False
    verify: bool = True
    ca_bundle: str | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    extra_manifest: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`ConfigError` for any setting out of range, naming it."""
        check_int(self.batch_size, "batch_size")
        if self.concurrent_requests != "auto":
            check_int(self.concurrent_requests, "concurrent_requests")
        check_int(self.max_retries, "max_retries", minimum=0)
        check_seconds(self.timeout, "timeout")
        check_int(self.chunk_size, "chunk_size")
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None:
                check_seconds(value, name)
        if self.output_dir is not None and not isinstance(self.output_dir, str | Path):
            raise ConfigError(
                f"output_dir must be a path, 'auto' or None, got {type(self.output_dir).__name__}"
            )
        ssl_context(self.verify, self.ca_bundle)  # a bad ca_bundle fails before any file is made

    def limit(self) -> ConcurrencyLimit:
        if self.concurrent_requests == "auto":
            return ConcurrencyLimit(AUTO_START, auto=True)
        return ConcurrencyLimit(int(self.concurrent_requests))


@dataclass
class JobOutcome:
    """What a run gives back: the result table (when collected), counters, the directory."""

    table: pa.Table | None
    stats: RunStats
    output_dir: Path | None


async def run_job(
    source: Source,
    endpoint: Endpoint,
    settings: JobSettings,
    *,
    task: str,
    collect: bool = True,
) -> JobOutcome:
    """Send every row of ``source`` through ``endpoint``; commit, then read results back.

    Every check runs before the first request. Raises :class:`KeyboardInterrupt` after
    committing what finished when the run was interrupted.
    """
    settings.check()
    key = resolve_key(settings.key_name)
    out = _prepare(source, endpoint, settings, task)
    try:
        stats, writer = await _run(source, endpoint, settings, key, out, collect)
    finally:
        if out:
            out.release()
    if stats.interrupted:
        where = f" in {out.path}" if out else ""
        print(
            f"Interrupted: {stats.done:,} rows committed{where}; run the same call again "
            "to resume.",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    table = _collect(source, endpoint, out, writer) if collect else None
    return JobOutcome(table, stats, out.path if out else None)


async def _run(
    source: Source,
    endpoint: Endpoint,
    settings: JobSettings,
    key: str | None,
    out: OutputDir | None,
    collect: bool,
) -> tuple[RunStats, ChunkWriter]:
    skip = out.done_ids if out else set()
    stats = RunStats(total=_remaining(source, skip))
    writer = ChunkWriter(
        out.path if out else None,
        chunk_size=settings.chunk_size,
        endpoint=endpoint,
        id_var=source.id_var,
        id_type=source.ids.type,
        stamp=out.manifest["fingerprint"] if out else None,
        keep=collect,
    )
    if out:
        out.save(
            status="running",
            started_at=now_iso(),
            ended_at=None,
            **_manifest(source, endpoint, settings),
        )
    await _drive(source, endpoint, settings, key, stats, writer, skip)
    if out:
        if settings.retry_failed and writer.written:
            drop_superseded(out.path, writer.written, source.id_var)
        _finish_manifest(out, stats, source.id_var)
    return stats, writer


def _prepare(
    source: Source, endpoint: Endpoint, settings: JobSettings, task: str
) -> OutputDir | None:
    if settings.output_dir is None:
        return None
    request_settings = {
        **endpoint.fingerprint(),
        "url": redact_url(endpoint.url),
        "text_var": source.text_var,
        "id_var": source.id_var,
    }
    return prepare_output_dir(
        settings.output_dir,
        prefix=task,
        id_var=source.id_var,
        request_settings=request_settings,
        overwrite=settings.overwrite,
        retry_failed=settings.retry_failed,
    )


def _remaining(source: Source, skip: set[Any]) -> int:
    if not skip:
        return source.total
    done = pc.is_in(source.ids, value_set=pa.array(list(skip), type=source.ids.type))
    return source.total - (pc.sum(done).as_py() or 0)


def _manifest(source: Source, endpoint: Endpoint, settings: JobSettings) -> dict[str, Any]:
    return {
        "endpointr_version": __version__,
        "endpoint": endpoint.name,
        "endpoint_url": redact_url(endpoint.url),
        "key_name": settings.key_name,
        "input": redact_url(source.label) if "://" in source.label else source.label,
        "text_var": source.text_var,
        "id_var": source.id_var,
        "batch_size": settings.batch_size,
        "concurrent_requests": settings.concurrent_requests,
        "chunk_size": settings.chunk_size,
        "max_retries": settings.max_retries,
        "timeout": settings.timeout,
        "row_count": source.total,
        **settings.extra_manifest,
    }


async def _drive(
    source: Source,
    endpoint: Endpoint,
    settings: JobSettings,
    key: str | None,
    stats: RunStats,
    writer: ChunkWriter,
    skip: set[Any],
) -> None:
    rate = None
    if settings.requests_per_minute or settings.tokens_per_minute:
        rate = RateLimiter(
            requests_per_minute=settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
            now=asyncio.get_running_loop().time(),
        )
    transport = Transport(
        timeout=settings.timeout,
        auth_headers=endpoint.auth_headers(key) if key else None,
        auth_url=endpoint.url,
        verify=settings.verify,
        ca_bundle=settings.ca_bundle,
    )
    progress = Progress(stats, enabled=settings.progress)
    async with transport:
        engine = Engine(
            endpoint,
            transport,
            writer.add,
            batch_size=settings.batch_size,
            limit=settings.limit(),
            policy=RetryPolicy(max_attempts=max(1, settings.max_retries)),
            rate_limiter=rate,
            stats=stats,
        )
        progress.start()
        try:
            with _interrupts(engine):
                await engine.run(source.pairs(skip))
        finally:
            await writer.close()
            await progress.finish()


@contextlib.contextmanager
def _interrupts(engine: Engine) -> Iterator[None]:
    """First Ctrl-C: stop sending and let what is in flight finish. Second: stop now.

    In the main thread the signal is caught here; in a worker thread (:func:`run_sync`
    inside a notebook's loop) the waiting main thread forwards it through ``_FORWARD``.
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
    _FORWARD[ident] = lambda: loop.call_soon_threadsafe(on_sigint)
    try:
        yield
    except asyncio.CancelledError:
        if not hard or main is None:
            raise
        # our own cancel: the run ends as interrupted, what finished is still committed
        main.uncancel()
    finally:
        _FORWARD.pop(ident, None)
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _finish_manifest(out: OutputDir, stats: RunStats, id_var: str) -> None:
    """Record this run's counters and the totals over every committed chunk."""
    paths = chunk_paths(out.path)
    tables = read_chunks(paths, columns=[id_var, ".error"])
    errors = latest_per_id(pa.concat_tables(tables), id_var).column(".error") if tables else None
    failures = (pc.sum(errors).as_py() or 0) if errors is not None else 0
    out.save(
        status="interrupted" if stats.interrupted else "completed",
        ended_at=now_iso(),
        successes=(len(errors) if errors is not None else 0) - failures,
        failures=failures,
        this_run={
            "succeeded": stats.succeeded,
            "failed": stats.failed,
            "retries": stats.retries,
            "requests": stats.requests,
            "seconds": round(stats.elapsed, 3),
        },
        rows_resumed=out.resumed_rows,
        chunks=[p.name for p in paths],
    )


def _collect(
    source: Source, endpoint: Endpoint, out: OutputDir | None, writer: ChunkWriter
) -> pa.Table:
    # this run's chunks are still in memory; only earlier runs' chunks are read back
    earlier = [p for p in chunk_paths(out.path) if p not in writer.written] if out else []
    tables = read_chunks(earlier) + writer.tables
    if not tables:
        raise EndpointrError("no results were recorded")
    table = pa.concat_tables(tables, promote_options="permissive")
    # fixed-size vectors before the reorder: taking from them is a plain strided copy
    table = endpoint.finalize(latest_per_id(table, source.id_var))
    position = pc.index_in(source.ids, value_set=table.column(source.id_var))
    if position.null_count:
        raise EndpointrError(
            f"{position.null_count} input rows have no result in the output; re-run to send them"
        )
    return table.take(position)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also inside a running loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    async def main() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        if task is not None:
            box["cancel"] = lambda: loop.call_soon_threadsafe(task.cancel)
        return await coro

    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, name="endpointr-run", daemon=True)
    thread.start()
    interrupted = _wait_passing_interrupts(thread, done, box)
    error = box.get("error")
    if interrupted and isinstance(error, asyncio.CancelledError):
        raise KeyboardInterrupt
    if error is not None:
        raise error
    return box["value"]


def _wait_passing_interrupts(
    thread: threading.Thread, done: threading.Event, box: dict[str, Any]
) -> bool:
    """Wait for the run in ``thread``; a Ctrl-C meanwhile (in a notebook it lands here) is
    passed to the run, which stops and commits, rather than leave it sending unseen.
    Returns whether there was one."""
    interrupted = False
    while not done.is_set():
        try:
            done.wait()  # not thread.join(): an interrupted join() marks the thread ended
        except KeyboardInterrupt:
            interrupted = True
            forward = _FORWARD.get(thread.ident or 0) or box.get("cancel")
            if forward is not None:
                forward()
    thread.join()
    return interrupted


P = ParamSpec("P")


def synced(afunc: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The blocking twin of the coroutine function ``afunc`` (same arguments and docs).

    It works from plain scripts and inside a running event loop (Jupyter) alike.
    """

    @functools.wraps(afunc)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(afunc(*args, **kwargs))

    wrapper.__name__ = wrapper.__qualname__ = afunc.__name__.removeprefix("a")
    return wrapper
