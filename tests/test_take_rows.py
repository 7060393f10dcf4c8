"""The final reorder of in-memory results: vectors gathered chunk by chunk."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from endpointr.io.frames import take_rows


def vectors(values: np.ndarray, nulls: list[bool]) -> pa.Array:
    mask = pa.array(nulls) if any(nulls) else None
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1], mask=mask)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
    seed=st.integers(0, 2**16),
    dim=st.integers(1, 5),
)
def test_take_rows_equals_arrow_take(sizes: list[int], seed: int, dim: int) -> None:
    rng = np.random.default_rng(seed)
    chunks, ids = [], []
    start = 0
    for size in sizes:
        # a chunk that is a slice of a bigger array: its values start past an offset
        whole = rng.random((size + 2, dim), dtype=np.float32)
        nulls = list(rng.random(size + 2) < 0.3)
        chunks.append(vectors(whole, nulls).slice(1, size))
        ids.append(pa.array(range(start, start + size), pa.int64()))
        start += size
    table = pa.table({"id": pa.chunked_array(ids), "embedding": pa.chunked_array(chunks)})
    position = pa.array(rng.permutation(start), pa.int64())
    got, want = take_rows(table, position), table.take(position)
    assert got.schema == want.schema
    assert got.column("id").equals(want.column("id"))
    assert got.column("embedding").to_pylist() == want.column("embedding").to_pylist()


def test_take_rows_repeats_rows_and_keeps_other_columns() -> None:
    first = vectors(np.arange(4, dtype=np.float32).reshape(2, 2), [False, False])
    second = vectors(np.arange(4, 6, dtype=np.float32).reshape(1, 2), [True])
    table = pa.table(
        {
            "embedding": pa.chunked_array([first, second]),
            ".error": pa.chunked_array([pa.array([False, False]), pa.array([True])]),
        }
    )
    got = take_rows(table, pa.array([2, 0, 0, 1]))
    assert got.column("embedding").to_pylist() == [None, [0, 1], [0, 1], [2, 3]]
    assert got.column(".error").to_pylist() == [True, False, False, False]
