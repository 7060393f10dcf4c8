"""Chunk files: ``chunk-00001.parquet`` ... in an output directory.

A chunk is written to a hidden temporary name and renamed into place, so a chunk that
exists is whole. Only names matching :data:`CHUNK_PATTERN` are ever read back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import CheckpointError
from ..providers.base import Endpoint
from ..types import Result
from .vectors import VectorBlock

__all__ = [
    "CHUNK_PATTERN",
    "ChunkWriter",
    "chunk_paths",
    "drop_superseded",
    "read_chunks",
    "results_table",
]

CHUNK_PATTERN = re.compile(r"^chunk-(\d{5,})\.parquet$")
STAMP_KEY = b"endpointr.fingerprint"
ERROR_COLUMNS = (".error", ".error_msg", ".status", ".attempts")


def chunk_paths(directory: Path) -> list[Path]:
    """The committed chunks of ``directory``, in commit order."""
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in directory.iterdir() if (m := CHUNK_PATTERN.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def chunk_stamp(path: Path) -> str | None:
    """The fingerprint of the run that wrote the chunk at ``path`` (``None`` if unstamped)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise CheckpointError(
            f"cannot read {path} ({exc}); move it away and re-run to send its rows again"
        ) from None
    stamp = metadata.get(STAMP_KEY)
    return stamp.decode() if stamp else None


def next_chunk_index(directory: Path) -> int:
    """The number the next chunk of ``directory`` gets: one past the highest committed."""
    names = [CHUNK_PATTERN.match(p.name) for p in chunk_paths(directory)]
    return max((int(m.group(1)) for m in names if m), default=0) + 1


def read_chunks(paths: Sequence[Path], columns: list[str] | None = None) -> list[pa.Table]:
    """Each chunk as a table; a chunk that cannot be read is a :class:`CheckpointError`."""
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path, columns=columns))
        except (OSError, pa.ArrowException) as exc:
            raise CheckpointError(
                f"cannot read {path} ({exc}); move it away and re-run to send its rows again"
            ) from None
    return tables


def results_table(
    results: Sequence[Result], endpoint: Endpoint, id_var: str, id_type: pa.DataType
) -> pa.Table:
    """The output rows for ``results``: id, the endpoint's value columns, then error columns."""
    columns: dict[str, Any] = {id_var: pa.array([r.id for r in results], type=id_type)}
    columns.update(endpoint.columns([r.value for r in results]))
    columns[".error"] = pa.array([r.error for r in results], type=pa.bool_())
    columns[".error_msg"] = pa.array([r.error_msg for r in results], type=pa.string())
    columns[".status"] = pa.array([r.status for r in results], type=pa.int32())
    columns[".attempts"] = pa.array([r.attempts for r in results], type=pa.int32())
    return pa.table(columns)


class ChunkWriter:
    """Buffers results and commits a chunk every ``chunk_size`` rows.

    Each chunk carries ``stamp`` (the run's fingerprint) in its Parquet metadata, so a
    chunk copied in from another run is recognised on resume.

    With ``directory=None`` chunks are kept in memory (:attr:`tables`); with ``keep`` they
    are kept there as well as written, so the caller need not read them back. A commit runs in
    a worker thread while the requests in flight go on; results that finish meanwhile
    wait for it (backpressure), so at most one chunk of finished rows is ever uncommitted.
    ``expand`` adds rows to each chunk's table before it is committed (the copies of
    its results, for rows whose text repeats an earlier row's). Without a directory,
    ``vectors`` keeps the vector column of every chunk in one block in input order
    (:class:`~endpointr.io.vectors.VectorBlock`), the chunk tables keep the rest.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        chunk_size: int,
        endpoint: Endpoint,
        id_var: str,
        id_type: pa.DataType,
        stamp: str | None = None,
        keep: bool = False,
        expand: Callable[[pa.Table], pa.Table] | None = None,
        vectors: VectorBlock | None = None,
    ) -> None:
        self._dir, self._chunk_size = directory, chunk_size
        self._endpoint, self._id_var, self._id_type = endpoint, id_var, id_type
        self._stamp = {STAMP_KEY: stamp} if stamp else None
        self._buffer: list[Result] = []
        self._pending: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._next_index = next_chunk_index(directory) if directory else 1
        self._schema = _settled_schema(directory)
        self._keep, self._expand = keep, expand
        self.vectors = vectors if directory is None else None
        self.tables: list[pa.Table] = []
        self.written: list[Path] = []

    async def add(self, results: Sequence[Result]) -> None:
        """Buffer ``results``; commit a chunk whenever ``chunk_size`` rows are buffered."""
        # Finished rows wait while a chunk is being written, so that at any moment at most
        # one chunk of finished rows is uncommitted: a crash costs at most that chunk plus
        # the requests in flight (measured: ~3% slower when latency-bound, with 1024-d vectors).
        async with self._lock:
            if self._pending is not None:
                await self._wait()
            self._buffer.extend(results)
            while len(self._buffer) >= self._chunk_size:
                batch = self._buffer[: self._chunk_size]
                del self._buffer[: self._chunk_size]
                await self._commit(batch)

    async def close(self) -> None:
        """Commit what is buffered and wait for every commit to finish."""
        try:
            if self._buffer:
                batch, self._buffer = self._buffer, []
                await self._commit(batch)
            await self._wait()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
                self._thread = None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        # one thread of its own: a shared pool spreads the writes over several threads,
        # and each keeps its own malloc arena, so memory crept up with the rows written
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="endpointr-writer"
            )
        return self._thread

    async def _commit(self, results: list[Result]) -> None:
        table = self._conform(results_table(results, self._endpoint, self._id_var, self._id_type))
        if self._expand is not None:  # the rows whose text repeats one of these: after
            table = self._expand(table)  # _conform, fixed-size vectors take as one memcpy
        if self.vectors is not None:
            self.vectors.take(table, self._id_var, self.tables)
        elif self._dir is None or self._keep:
            self.tables.append(table)
        if self._dir is None:
            return
        await self._wait()
        path = self._dir / f"chunk-{self._next_index:05d}.parquet"
        self._next_index += 1
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(self._executor(), self._write, table, path)

    def _conform(self, table: pa.Table) -> pa.Table:
        """``table`` with the Arrow types the returned frame has (fixed-size vectors),
        and those of the chunks before it: a chunk of error rows alone, whose vector
        width it cannot know, takes the width the others have."""
        table = self._endpoint.finalize(table)
        if self._schema is None:
            if _settled(table.schema):
                self._schema = table.schema.remove_metadata()
            return table
        if table.schema.equals(self._schema, check_metadata=False):
            return table
        try:
            return table.cast(self._schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
            return table  # another layout (a new label column): as it is

    async def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _write(self, table: pa.Table, path: Path) -> None:
        if self._stamp:
            table = table.replace_schema_metadata(self._stamp)
        write_atomic(path, lambda tmp: write_chunk(table, tmp))
        self.written.append(path)


def _settled(schema: pa.Schema) -> bool:
    """Whether ``schema`` has every vector column's width (no variable-length lists)."""
    return not any(pa.types.is_list(f.type) or pa.types.is_large_list(f.type) for f in schema)


def _settled_schema(directory: Path | None) -> pa.Schema | None:
    """The layout of the last committed chunk of ``directory``, when it is settled."""
    paths = chunk_paths(directory) if directory else []
    if not paths:
        return None
    try:
        schema = pq.read_schema(paths[-1]).remove_metadata()
    except (OSError, pa.ArrowException):
        return None  # read (and reported) when the results are collected
    return schema if _settled(schema) else None


def write_chunk(table: pa.Table, where: Path) -> None:
    """Write ``table`` as Parquet; no dictionary for vector columns (it never pays off for
    floats, and building one costs memory on every chunk)."""
    flat = [f.name for f in table.schema if not pa.types.is_nested(f.type)]
    pq.write_table(table, where, compression="zstd", use_dictionary=flat)


def write_atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, flush it to disk, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def drop_superseded(directory: Path, new: Sequence[Path], id_var: str) -> int:
    """Remove from older chunks the rows whose ids the ``new`` chunks hold again.

    Used after re-sending error rows, so that each id is in exactly one chunk. Each
    rewrite is atomic; a crash half-way leaves an id twice, and readers take the row of
    the later chunk. Returns the number of rows removed.
    """
    fresh = [table.column(id_var) for table in read_chunks(new, columns=[id_var])]
    if not fresh:
        return 0
    value_set = pa.chunked_array(fresh).combine_chunks()
    removed = 0
    for path in chunk_paths(directory):
        if path in new:
            continue
        ids = read_chunks([path], columns=[id_var])[0].column(id_var)
        stale = pc.is_in(ids, value_set=value_set)
        count = pc.sum(stale).as_py() or 0
        if count:
            kept = read_chunks([path])[0].filter(pc.invert(stale))
            if kept.num_rows:
                write_atomic(path, lambda tmp, t=kept: write_chunk(t, tmp))
            else:
                path.unlink()
            removed += count
    return removed
