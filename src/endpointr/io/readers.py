"""Sources of rows: pandas, polars and Arrow frames, and CSV, Parquet or JSONL files.

A :class:`Source` knows its id column (read up front, to check ids before any request
and to put results back in input order) and streams ``(id, text)`` pairs in bounded
pieces, so the first request leaves before a large file is read to the end.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import InputError

__all__ = ["FILE_SUFFIXES", "Source", "duplicated", "open_source"]

PIECE_ROWS = 8192
FILE_SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

Pairs = Iterator[tuple[Any, Any]]


@dataclass
class Source:
    """Rows to send. ``kind`` is the frame type to give back (``"pandas"``, ``"polars"``,
    ``"arrow"``; files give pandas). ``ids`` is the whole id column, checked."""

    kind: str
    ids: pa.Array
    id_var: str
    text_var: str
    _pairs: Callable[[], Pairs]
    label: str = "frame"
    path: Path | None = None
    table: pa.Table | None = None  # the id and text columns, for an Arrow or polars frame
    texts: Callable[[], Any] | None = None  # the whole text column, when it is in memory

    @property
    def total(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """What identifies this input's rows: for a file its absolute path, size and
        modification time (read without reading the file); for a frame a hash of every
        id and text. Any change to a text changes it."""
        if self.path is not None:
            stat = self.path.stat()
            seen = f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
            return hashlib.blake2b(seen, digest_size=8).hexdigest()
        hasher = hashlib.blake2b(digest_size=8)
        if self.table is not None:  # the Arrow stream of the two columns, ~0.4 s a million
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.table.schema) as writer:
                writer.write_table(self.table)
            hasher.update(sink.getvalue())
            return hasher.hexdigest()
        piece: list[Any] = []
        for pair in self._pairs():
            piece.append(pair)
            if len(piece) == PIECE_ROWS:
                hasher.update(_piece_bytes(piece))
                piece.clear()
        hasher.update(_piece_bytes(piece))
        return hasher.hexdigest()

    @property
    def in_memory(self) -> bool:
        """Whether every text is at hand (a frame or a list), not read as it streams."""
        return self.table is not None or self.texts is not None

    def text_values(self) -> np.ndarray | None:
        """Every text, as an object array, when the input is in memory (a frame or a
        list); ``None`` for a file, which is read as it streams."""
        if self.table is not None:
            return np.asarray(self.table.column(self.text_var).to_numpy(), dtype=object)
        if self.texts is None:
            return None
        texts = self.texts()
        if isinstance(texts, list):
            values = np.empty(len(texts), dtype=object)
            values[:] = texts
            return values
        return np.asarray(texts.to_numpy(dtype=object), dtype=object)

    def pairs(self, skip: set[Any] | frozenset[Any] = frozenset()) -> Pairs:
        """``(id, text)`` for every row whose id is not in ``skip``, in input order."""
        if not skip:
            return self._pairs()
        return ((i, t) for i, t in self._pairs() if i not in skip)


def _piece_bytes(piece: list[Any]) -> bytes:
    try:
        return orjson.dumps(piece, default=repr)
    except TypeError:  # a lone surrogate: not UTF-8, but still a text to tell apart
        return repr(piece).encode("utf-8", "surrogatepass")


def open_source(data: Any, *, text_var: str, id_var: str) -> Source:
    """A :class:`Source` over ``data``: a frame, an Arrow table, or a path to a file.

    Raises :class:`InputError` naming what to fix: a missing column, a null or duplicate
    id, an empty input, a missing or unreadable file, an unknown file extension.
    """
    for name, value in (("text_var", text_var), ("id_var", id_var)):
        if not isinstance(value, str) or not value:
            raise InputError(f"{name} must be a column name (a non-empty string), got {value!r}")
    if isinstance(data, str | os.PathLike):
        source = _file_source(Path(data), text_var, id_var)
    else:
        source = _frame_source(data, text_var, id_var)
    _check_ids(source.ids, id_var)
    return source


def _frame_source(data: Any, text_var: str, id_var: str) -> Source:
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        _need_columns(list(map(str, data.columns)), text_var, id_var, "the data frame")
        ids = _python_ids(data[id_var], id_var)
        return Source(
            "pandas",
            ids,
            id_var,
            text_var,
            lambda: _pandas_pairs(data, id_var, text_var),
            texts=lambda: data[text_var],
        )
    if module == "polars" and hasattr(data, "columns"):
        _need_columns(data.columns, text_var, id_var, "the data frame")
        table = data.select([id_var, text_var]).to_arrow()
        return _arrow_source("polars", table, text_var, id_var)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        _need_columns(data.column_names, text_var, id_var, "the table")
        return _arrow_source("arrow", data.select([id_var, text_var]), text_var, id_var)
    raise InputError(
        "df must be a pandas or polars DataFrame, a pyarrow Table, or a path to a "
        f".csv, .parquet or .jsonl file; got {type(data).__name__}"
    )


def _arrow_source(kind: str, table: pa.Table, text_var: str, id_var: str) -> Source:
    ids = table.column(id_var).combine_chunks()

    def pairs() -> Pairs:
        for batch in table.to_batches(max_chunksize=PIECE_ROWS):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)

    return Source(kind, ids, id_var, text_var, pairs, table=table)


def _pandas_pairs(df: Any, id_var: str, text_var: str) -> Pairs:
    ids, texts = df[id_var], df[text_var]
    for start in range(0, len(df), PIECE_ROWS):
        stop = start + PIECE_ROWS
        yield from zip(ids.iloc[start:stop].tolist(), texts.iloc[start:stop].tolist(), strict=True)


def _need_columns(columns: list[str], text_var: str, id_var: str, where: str) -> None:
    for role, name in (("text_var", text_var), ("id_var", id_var)):
        if name not in columns:
            shown = ", ".join(map(repr, columns[:20])) + (" ..." if len(columns) > 20 else "")
            raise InputError(f"{role}={name!r} is not a column of {where}; columns are: {shown}")


def _to_arrow_ids(build: Callable[[], pa.Array], id_var: str) -> pa.Array:
    try:
        ids = build()
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"id column {id_var!r} mixes types or holds values that are not ids ({exc}); "
            "make every id a string or every id an integer"
        ) from None
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def _python_ids(values: Any, id_var: str) -> pa.Array:
    """Ids from Python objects (a list, or a pandas column); ``True`` mixed with numbers
    would silently become 1, so it is refused."""
    ids = _to_arrow_ids(lambda: pa.array(values, from_pandas=True), id_var)
    numeric = pa.types.is_integer(ids.type) or pa.types.is_floating(ids.type)
    python_objects = str(getattr(values, "dtype", "object")) == "object"
    if numeric and python_objects and any(isinstance(v, bool) for v in values):
        raise InputError(
            f"id column {id_var!r} mixes true/false with numbers; "
            "make every id a string or every id an integer"
        )
    return ids


def _check_ids(ids: pa.Array, id_var: str) -> None:
    if len(ids) == 0:
        raise InputError("the input has no rows; nothing to do")
    if pa.types.is_null(ids.type):
        raise InputError(f"id column {id_var!r} is entirely null; give every row an id")
    nulls = ids.null_count
    if pa.types.is_floating(ids.type):
        nulls += pc.sum(pc.is_nan(ids)).as_py() or 0
    if nulls:
        first = _first_index(pc.or_kleene(pc.is_null(ids, nan_is_null=True), pa.scalar(False)))
        raise InputError(
            f"id column {id_var!r} has {nulls} missing value(s) (first at row {first}); "
            "every row needs an id"
        )
    if not (
        pa.types.is_integer(ids.type)
        or pa.types.is_string(ids.type)
        or pa.types.is_large_string(ids.type)
        or pa.types.is_floating(ids.type)
    ):
        raise InputError(
            f"id column {id_var!r} has type {ids.type}; ids must be integers or strings"
        )
    dupes = duplicated(ids)
    if len(dupes):
        shown = ", ".join(repr(v) for v in dupes.to_pylist()[:5])
        raise InputError(
            f"id column {id_var!r} has {len(dupes)} duplicated id(s), e.g. {shown}; "
            "ids must be unique"
        )


def duplicated(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The ids that occur more than once, each once. Sort-based: a hash table over
    millions of ids leaves far more memory behind in Arrow's allocator."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    ordered = ids.take(pc.sort_indices(ids))
    head, tail = ordered.slice(0, len(ordered) - 1), ordered.slice(1)
    same = pc.equal(head, tail)
    if not pc.any(same).as_py():
        return ordered.slice(0, 0)
    return pc.unique(tail.filter(same))


def _first_index(mask: pa.Array) -> int:
    return int(pc.index(mask, True).as_py())


def _file_source(path: Path, text_var: str, id_var: str) -> Source:
    fmt = FILE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot read {str(path)!r}: unknown extension {path.suffix!r}; "
            "use a .csv, .parquet or .jsonl file"
        )
    if not path.is_file():
        raise InputError(f"input file not found: {str(path)!r}")
    try:
        source = {"csv": _csv_source, "parquet": _parquet_source, "jsonl": _jsonl_source}[fmt](
            path, text_var, id_var
        )
    except (OSError, pa.ArrowException, orjson.JSONDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r} as {fmt.upper()}: {exc}") from None
    source.label, source.path = str(path), path
    return source


def _parquet_source(path: Path, text_var: str, id_var: str) -> Source:
    meta = pq.ParquetFile(path, pre_buffer=False)
    _need_columns(meta.schema_arrow.names, text_var, id_var, str(path))
    ids = _to_arrow_ids(lambda: meta.read(columns=[id_var]).column(0), id_var)

    def pairs() -> Pairs:
        # pre_buffer reads whole column chunks ahead; page by page keeps memory flat
        with pq.ParquetFile(path, pre_buffer=False) as reader:
            for batch in reader.iter_batches(batch_size=PIECE_ROWS, columns=[id_var, text_var]):
                ids_, texts = batch.column(id_var), batch.column(text_var)
                yield from zip(ids_.to_pylist(), texts.to_pylist(), strict=True)

    return Source("pandas", ids, id_var, text_var, pairs)


def _csv_source(path: Path, text_var: str, id_var: str) -> Source:
    with path.open("rb") as fh:
        header = pacsv.open_csv(fh).schema.names
    _need_columns(header, text_var, id_var, str(path))
    id_table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=[id_var]))
    ids = _to_arrow_ids(lambda: id_table.column(0), id_var)
    convert = pacsv.ConvertOptions(
        include_columns=[id_var, text_var],
        column_types={id_var: ids.type, text_var: pa.string()},
        strings_can_be_null=False,
    )

    def pairs() -> Pairs:
        reader = pacsv.open_csv(
            path, convert_options=convert, read_options=pacsv.ReadOptions(block_size=1 << 20)
        )
        for batch in reader:
            yield from zip(
                batch.column(id_var).to_pylist(), batch.column(text_var).to_pylist(), strict=True
            )

    return Source("pandas", ids, id_var, text_var, pairs)


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{str(path)!r} line {number} is not valid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise InputError(f"{str(path)!r} line {number} is not a JSON object")
            yield number, record


def _jsonl_source(path: Path, text_var: str, id_var: str) -> Source:
    raw_ids: list[Any] = []
    for number, record in _jsonl_records(path):
        if number == 1 or not raw_ids:
            _need_columns(list(record), text_var, id_var, str(path))
        raw_ids.append(record.get(id_var))
    ids = _python_ids(raw_ids, id_var)

    def pairs() -> Pairs:
        for _, record in _jsonl_records(path):
            text = record.get(text_var)
            yield (
                record.get(id_var),
                (None if isinstance(text, float) and math.isnan(text) else text),
            )

    return Source("pandas", ids, id_var, text_var, pairs)
