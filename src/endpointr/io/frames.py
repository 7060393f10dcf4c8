"""Give results back as the frame type the caller passed in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["take_rows", "to_frame", "widen_vectors"]


def take_rows(table: pa.Table, position: pa.Array) -> pa.Table:
    """``table.take(position)``, but a fixed-size float32 vector column made of several
    chunks is gathered chunk by chunk into one new block: Arrow's own take first joins
    the chunks into a copy of every vector, then copies them again."""
    columns = []
    for column in table.columns:
        vectors = (
            isinstance(column, pa.ChunkedArray)
            and column.num_chunks > 1
            and pa.types.is_fixed_size_list(column.type)
            and pa.types.is_float32(column.type.value_type)
        )
        columns.append(_gather(column, position) if vectors else column.take(position))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _gather(column: pa.ChunkedArray, position: pa.Array) -> pa.Array:
    size = column.type.list_size
    wanted = position.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    out = np.empty((len(wanted), size), dtype=np.float32)
    valid = np.zeros(len(wanted), dtype=bool)
    order = np.argsort(wanted, kind="stable")
    ordered = wanted[order]
    start = 0
    for chunk in column.chunks:
        low, high = np.searchsorted(ordered, [start, start + len(chunk)])
        if high > low:
            rows = ordered[low:high] - start
            values = chunk.values.slice(chunk.offset * size, len(chunk) * size)
            block = values.to_numpy(zero_copy_only=False).reshape(len(chunk), size)
            out[order[low:high]] = block[rows]
            valid[order[low:high]] = chunk.is_valid().to_numpy(zero_copy_only=False)[rows]
        start += len(chunk)
    mask = None if valid.all() else pa.array(~valid)
    return pa.FixedSizeListArray.from_arrays(pa.array(out.ravel()), size, mask=mask)


def to_frame(table: pa.Table, kind: str) -> Any:
    """``table`` as ``kind``: ``"pandas"``, ``"polars"`` or ``"arrow"``. In pandas,
    ``.status`` is the nullable ``Int32``, with or without rows that have no status."""
    if kind == "arrow":
        return table
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    import pandas as pd

    nullable_ints = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
    # ``.status`` is always nullable Int32, whether or not a row lacks one; other integer
    # columns become nullable where they hold nulls
    ints = {
        f.name
        for f in table.schema
        if f.type in nullable_ints and (f.name == ".status" or table.column(f.name).null_count)
    }
    if not ints:
        return table.to_pandas()
    frame = table.to_pandas()
    for name in ints:
        frame[name] = table.column(name).to_pandas(types_mapper=nullable_ints.get)
    return frame


def widen_vectors(table: pa.Table, column: str = "embedding") -> pa.Table:
    """Replace a vector column by EndpointR's ``V1..Vn`` float columns (nulls on error rows)."""
    index = table.schema.get_field_index(column)
    vectors = table.column(index).combine_chunks()
    if not pa.types.is_fixed_size_list(vectors.type):
        return table
    width = vectors.type.list_size
    valid = vectors.is_valid().to_numpy(zero_copy_only=False)
    dense = np.zeros((len(vectors), width), dtype=np.float32)
    dense[valid] = vectors.filter(vectors.is_valid()).flatten().to_numpy().reshape(-1, width)
    mask = None if valid.all() else ~valid
    table = table.remove_column(index)
    for j in range(width):
        table = table.add_column(index + j, f"V{j + 1}", pa.array(dense[:, j], mask=mask))
    return table
