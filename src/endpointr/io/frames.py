"""Give results back as the frame type the caller passed in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["to_frame", "widen_vectors"]


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
