"""Reading an output directory back: one row per id, in the input's order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CheckpointError, InputError
from ..providers.hf import fixed_size_embeddings
from .chunks import chunk_paths, read_chunks
from .frames import to_frame
from .manifest import MANIFEST, latest_per_id, read_manifest
from .readers import open_source

__all__ = ["read_results"]

_KINDS = ("pandas", "polars", "arrow")


def read_results(
    output_dir: str | os.PathLike[str], df: Any = None, *, kind: str = "pandas"
) -> Any:
    """The results in ``output_dir``: one row per id (the latest, where a re-run with
    ``retry_failed`` replaced an error row), error rows included.

    The rows come in the input's order: that of ``df`` (the frame or file the run was
    given) when passed, else that of the input file named in the manifest when it is
    still there, else the order the rows were committed in. Ids that are not in the
    input come last. ``kind`` is the frame type to return: ``"pandas"``, ``"polars"`` or
    ``"arrow"``. Reading the directory directly works too (``pd.read_parquet(dir)``);
    this adds the order and the one row per id.

    Raises :class:`~endpointr.errors.CheckpointError` when ``output_dir`` holds no
    endpointr results, and :class:`~endpointr.errors.InputError` for a ``df`` without
    the run's id column.
    """
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
    path = Path(output_dir)
    manifest = read_manifest(path)
    if manifest is None:
        raise CheckpointError(f"{path} is not an endpointr output directory (no {MANIFEST})")
    id_var, text_var = manifest.get("id_var"), manifest.get("text_var")
    if not isinstance(id_var, str) or not isinstance(text_var, str):
        raise CheckpointError(f"{path / MANIFEST} names no id and text columns")
    tables = read_chunks(chunk_paths(path))
    if not tables:
        raise CheckpointError(f"{path} holds no committed chunks yet")
    table = latest_per_id(pa.concat_tables(tables, promote_options="permissive"), id_var)
    if "embedding" in table.column_names:
        table = fixed_size_embeddings(table)
    order = _input_ids(df, manifest, text_var, id_var)
    if order is not None:
        table = _in_order(table, id_var, order)
    return to_frame(table, kind)


def _input_ids(df: Any, manifest: dict[str, Any], text_var: str, id_var: str) -> pa.Array | None:
    if df is not None:
        return open_source(df, text_var=text_var, id_var=id_var).ids
    named = manifest.get("input")
    if isinstance(named, str) and "://" not in named and Path(named).is_file():
        try:
            return open_source(named, text_var=text_var, id_var=id_var).ids
        except InputError:
            return None  # the file has changed past reading by the run's columns
    return None


def _in_order(table: pa.Table, id_var: str, ids: pa.Array) -> pa.Table:
    """``table`` with the rows of ``ids`` first, in that order, then any others."""
    done = table.column(id_var)
    if not done.type.equals(ids.type):
        try:
            ids = ids.cast(done.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return table
    position = pc.index_in(ids, value_set=done).drop_null()
    rest = pc.invert(pc.is_in(done, value_set=ids))
    others = pc.indices_nonzero(rest) if pc.any(rest).as_py() else pa.array([], pa.uint64())
    return table.take(pa.concat_arrays([position.cast(pa.int64()), others.cast(pa.int64())]))
