"""Hugging Face / TEI embeddings end to end against the fake server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import endpointr as er
from cases import embed_df, frame
from endpointr.testing import FakeServer, Fault, fake_embedding


def test_embed_text_returns_the_servers_vector(server: FakeServer) -> None:
    vector = er.hf_embed_text("hello world", endpoint_url=server.url + "/embed", key_name=None)
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, fake_embedding("hello world", 384), rtol=1e-6)
    seen = server.stats.requests[0]
    assert seen.json == {"inputs": ["hello world"], "truncate": True}
    assert "authorization" not in seen.headers


def test_rows_per_request_equal_batch_size(server: FakeServer) -> None:
    out = embed_df(server, frame(100), batch_size=16, concurrent_requests=1)
    assert sorted(server.stats.rows_per_request) == sorted([16] * 6 + [4])
    assert out["id"].tolist() == list(range(100))
    assert not out[".error"].any()


def test_peak_in_flight_equals_concurrent_requests() -> None:
    with FakeServer(latency=0.05) as server:
        embed_df(server, frame(200), batch_size=4, concurrent_requests=7)
        assert server.stats.peak_in_flight == 7


def test_values_match_ids_and_order_is_restored() -> None:
    with FakeServer(latency=0.001, per_row_latency=0.002) as server:
        df = frame(300).sample(frac=1, random_state=1)
        out = embed_df(server, df, batch_size=5, concurrent_requests=10)
    assert out["id"].tolist() == df["id"].tolist()
    for row_id, text, vector in zip(
        df["id"][:20], df["text"][:20], out["embedding"][:20], strict=True
    ):
        np.testing.assert_allclose(vector, fake_embedding(text, 384), rtol=1e-6)
        assert out.loc[out["id"] == row_id, "embedding"].iloc[0] is not None


def test_retries_after_429_with_retry_after_and_503(server: FakeServer) -> None:
    server.script(Fault.status(429, retry_after=0.2), Fault.status(503))
    out = embed_df(server, frame(8), batch_size=8, concurrent_requests=1)
    times = [r.t_start for r in server.stats.requests]
    assert [r.status for r in server.stats.requests] == [429, 503, 200]
    assert times[1] - times[0] >= 0.2
    assert not out[".error"].any()
    assert out[".attempts"].tolist() == [3] * 8


def test_final_client_error_becomes_error_rows_with_the_servers_message(
    server: FakeServer,
) -> None:
    server.script(Fault.status(401, body={"error": "Authorization header is invalid"}))
    out = embed_df(server, frame(4), batch_size=4)
    assert out[".error"].all()
    assert set(out[".status"]) == {401}
    assert set(out[".error_msg"]) == {"Authorization header is invalid"}
    assert len(server.stats.requests) == 1


def test_retryable_errors_end_as_error_rows_after_max_retries(server: FakeServer) -> None:
    server.script(*[Fault.status(502)] * 3)
    out = embed_df(server, frame(2), batch_size=2, max_retries=3)
    assert out[".error"].all() and set(out[".status"]) == {502}
    assert len(server.stats.requests) == 3


def test_overload_spends_no_attempt(server: FakeServer) -> None:
    server.script(*[Fault.status(503)] * 3, *[Fault.status(429, retry_after=0.01)] * 3)
    fast = er.Backoff(base=0.01, cap=0.05)
    out = embed_df(server, frame(2), batch_size=2, max_retries=1, backoff=fast)
    assert not out[".error"].any()
    assert [r.status for r in server.stats.requests] == [503] * 3 + [429] * 3 + [200]
    assert out[".attempts"].tolist() == [7, 7]


def test_overload_past_its_budget_becomes_error_rows_that_say_so(server: FakeServer) -> None:
    server.random_faults(rate=1.0, kinds=("503",))
    out = embed_df(server, frame(2), batch_size=2, max_retries=1, overload_timeout=0.2)
    assert out[".error"].all() and set(out[".status"]) == {503}
    assert out[".error_msg"].str.startswith("still overloaded after").all()
    assert len(server.stats.requests) >= 2  # more than max_retries=1 allows


def test_null_empty_and_non_string_texts_are_error_rows_not_sent(server: FakeServer) -> None:
    df = pd.DataFrame({"id": [1, 2, 3, 4, 5], "text": ["ok", None, "", "   ", 42]})
    out = embed_df(server, df, batch_size=8)
    assert out[".error"].tolist() == [False, True, True, True, True]
    assert "missing" in out[".error_msg"][1] and "empty" in out[".error_msg"][2]
    assert "not a string" in out[".error_msg"][4]
    assert server.stats.texts_seen == {"ok": 1}


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_frame_type_is_preserved(server: FakeServer, kind: str) -> None:
    df = frame(20)
    data = {"pandas": df, "polars": pl.from_pandas(df), "arrow": pa.Table.from_pandas(df)}[kind]
    out = embed_df(server, data, batch_size=3)
    assert type(out) is type(data)
    assert len(out) == 20


def test_arrow_output_has_fixed_size_float32_vectors(server: FakeServer) -> None:
    out = embed_df(server, pa.Table.from_pandas(frame(5)))
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 384)


def test_wide_gives_v_columns(server: FakeServer) -> None:
    out = embed_df(server, frame(3), wide=True)
    assert [c for c in out.columns if c.startswith("V")][:2] == ["V1", "V2"]
    assert "V384" in out.columns and "embedding" not in out.columns


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_file_inputs(server: FakeServer, tmp_path: Path, suffix: str) -> None:
    df = frame(50)
    path = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_json(path, orient="records", lines=True)
    out = embed_df(server, path, batch_size=7)
    assert out["id"].tolist() == list(range(50)) and not out[".error"].any()
    assert sum(server.stats.rows_per_request) == 50


def test_output_dir_chunks_and_metadata(server: FakeServer, tmp_path: Path) -> None:
    import json

    out_dir = tmp_path / "run"
    out = embed_df(server, frame(25), output_dir=out_dir, chunk_size=10, batch_size=4)
    chunks = sorted(p.name for p in out_dir.glob("chunk-*.parquet"))
    assert chunks == ["chunk-00001.parquet", "chunk-00002.parquet", "chunk-00003.parquet"]
    ids = pa.concat_tables(pq.read_table(out_dir / c) for c in chunks).column("id").to_pylist()
    assert sorted(ids) == list(range(25))
    meta = json.loads((out_dir / "_metadata.json").read_text())
    assert meta["row_count"] == 25 and meta["successes"] == 25 and meta["failures"] == 0
    assert meta["batch_size"] == 4 and meta["key_name"] is None
    assert meta["status"] == "completed"
    assert len(out) == 25


def test_rerun_on_same_output_dir_sends_nothing_again(server: FakeServer, tmp_path: Path) -> None:
    embed_df(server, frame(30), output_dir=tmp_path / "run", batch_size=4)
    sent = server.stats.request_count
    out = embed_df(server, frame(30), output_dir=tmp_path / "run", batch_size=4)
    assert server.stats.request_count == sent
    assert out["id"].tolist() == list(range(30))


def test_embed_batch_returns_pandas_with_text_column(server: FakeServer) -> None:
    out = er.hf_embed_batch(
        ["a b", "c d", None], endpoint_url=server.url + "/embed", key_name=None, batch_size=2
    )
    assert isinstance(out, pd.DataFrame)
    assert out["text"].tolist()[:2] == ["a b", "c d"]
    assert out[".error"].tolist() == [False, False, True]


def test_api_key_is_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_API_KEY", "hf_secret_123")
    with FakeServer(api_key="hf_secret_123") as server:
        er.hf_embed_text("x", endpoint_url=server.url + "/embed")
        assert server.stats.requests[0].headers["authorization"] == "Bearer hf_secret_123"


def test_missing_key_names_the_variable(server: FakeServer) -> None:
    with pytest.raises(er.MissingAPIKeyError, match="HF_API_KEY"):
        er.hf_embed_df(
            frame(3),
            text_var="text",
            id_var="id",
            endpoint_url=server.url,
            output_dir=None,
            progress=False,
        )
    assert server.stats.request_count == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text_var": "nope"}, "text_var='nope' is not a column"),
        ({"id_var": "nope"}, "id_var='nope' is not a column"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"concurrent_requests": 0}, "concurrent_requests must be >= 1"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"endpoint_url": "ftp://x"}, "must start with http"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    server: FakeServer, kwargs: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {
        "text_var": "text",
        "id_var": "id",
        "endpoint_url": server.url,
        "key_name": None,
        "output_dir": None,
        "progress": False,
        **kwargs,
    }
    with pytest.raises(er.EndpointrError, match=match):
        er.hf_embed_df(frame(3), **args)  # type: ignore[arg-type]
    assert server.stats.request_count == 0


@pytest.mark.parametrize(
    ("ids", "match"), [([1, 1, 2], "duplicated"), ([1, None, 2], "missing value")]
)
def test_bad_ids_fail_before_any_request(server: FakeServer, ids: list[object], match: str) -> None:
    df = pd.DataFrame({"id": ids, "text": ["a", "b", "c"]})
    with pytest.raises(er.InputError, match=match):
        embed_df(server, df)
    assert server.stats.request_count == 0


def test_empty_frame_is_refused(server: FakeServer) -> None:
    with pytest.raises(er.InputError, match="no rows"):
        embed_df(server, frame(0))


def test_sync_function_works_inside_a_running_loop(server: FakeServer) -> None:
    import asyncio

    async def inside() -> object:
        return er.hf_embed_text("hi", endpoint_url=server.url + "/embed", key_name=None)

    assert len(asyncio.run(inside())) == 384  # type: ignore[arg-type]


def test_async_twin(server: FakeServer) -> None:
    import asyncio

    out = asyncio.run(
        er.ahf_embed_df(
            frame(10),
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            output_dir=None,
            progress=False,
        )
    )
    assert len(out) == 10
