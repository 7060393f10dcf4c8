"""Vectors held in memory in one block in input order (runs without an output_dir)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

import endpointr as er
from endpointr.io.vectors import VectorBlock
from endpointr.testing import FakeServer


def chunk(ids: list[int], width: int, nulls: list[bool] | None = None) -> pa.Table:
    values = np.array([[i + k / 10 for k in range(width)] for i in ids], dtype=np.float32)
    mask = pa.array(nulls) if nulls else None
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), width, mask=mask)
    return pa.table(
        {"id": pa.array(ids, pa.int64()), "embedding": vectors, ".error": [False] * len(ids)}
    )


def test_vectors_land_at_their_input_positions_and_come_back_without_a_copy() -> None:
    block = VectorBlock(pa.array([10, 11, 12, 13], pa.int64()))
    tables: list[pa.Table] = []
    block.take(chunk([12, 10], 3), "id", tables)
    block.take(chunk([13, 11], 3, nulls=[False, True]), "id", tables)
    assert block.holds and all("embedding" not in t.column_names for t in tables)
    order = pa.array([10, 11, 12, 13], pa.int64())
    whole = pa.concat_tables(tables).take(pa.array([1, 3, 0, 2]))
    out = block.attach(whole, order)
    assert out.column_names == ["id", "embedding", ".error"]
    got = out.column("embedding").to_pylist()
    assert got[1] is None
    np.testing.assert_allclose(got[0], [10, 10.1, 10.2], rtol=1e-6)
    np.testing.assert_allclose(got[3], [13, 13.1, 13.2], rtol=1e-6)


def test_a_width_change_gives_the_vectors_back_to_their_chunks() -> None:
    block = VectorBlock(pa.array([1, 2, 3], pa.int64()))
    tables: list[pa.Table] = []
    block.take(chunk([2], 4), "id", tables)
    block.take(chunk([1, 3], 8), "id", tables)
    assert not block.active and not block.holds
    assert [t.column_names for t in tables] == [["id", "embedding", ".error"]] * 2
    np.testing.assert_allclose(tables[0].column("embedding").to_pylist()[0], [2, 2.1, 2.2, 2.3])
    assert len(tables[1].column("embedding").to_pylist()[1]) == 8


def test_in_memory_results_equal_the_output_dir_results(server: FakeServer) -> None:
    server.poison("bad", status=400, message="input too long")
    texts = [f"text {i}" for i in range(300)] + ["bad one"] + [f"more {i}" for i in range(40)]
    df = pd.DataFrame({"id": [f"k{i}" for i in range(len(texts))][::-1], "text": texts})
    keywords = {"text_var": "text", "id_var": "id", "endpoint_url": server.url, "key_name": None}
    memory = er.hf_embed_df(df, **keywords, output_dir=None, chunk_size=64, progress=False)
    disk = er.hf_embed_df(df, **keywords, output_dir="out", chunk_size=64, progress=False)
    assert memory["id"].tolist() == df["id"].tolist() == disk["id"].tolist()
    assert memory[".error"].tolist() == disk[".error"].tolist()
    assert memory[".error"].sum() == 1 and memory["embedding"][300] is None
    np.testing.assert_array_equal(
        np.stack(memory["embedding"].drop(300)), np.stack(disk["embedding"].drop(300))
    )
    table = er.hf_embed_df(pa.Table.from_pandas(df), **keywords, output_dir=None, progress=False)
    assert pa.types.is_fixed_size_list(table.schema.field("embedding").type)


def test_a_run_of_error_rows_only_keeps_its_vector_column(server: FakeServer) -> None:
    server.poison("x", status=400, message="input too long")
    out = er.hf_embed_batch(["x1", "x2"], endpoint_url=server.url, key_name=None)
    assert out.columns.tolist()[:2] == ["text", "embedding"]
    assert out["embedding"].isna().all() and out[".error"].all()
