"""endpointr's endpoints as Ray Data stages on a local Ray cluster, against the fake
server: every row once, error rows typed, and one in-flight budget for all workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

import inspect  # noqa: E402

import endpointr as er  # noqa: E402
import endpointr.ray as er_ray  # noqa: E402
from endpointr.errors import ConfigError  # noqa: E402
from endpointr.testing import FakeServer, Fault  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def dataset(rows: int, blocks: int = 8) -> Any:
    frame = pd.DataFrame({"id": range(rows), "text": [f"text {i}." for i in range(rows)]})
    size = -(-rows // blocks)
    return ray.data.from_pandas([frame[i : i + size] for i in range(0, rows, size)])


def collect(ds: Any) -> pa.Table:
    return pa.concat_tables(ray.get(ds.to_arrow_refs()))


def test_four_workers_stay_within_one_in_flight_budget(cluster: None) -> None:
    with FakeServer(dim=8, latency=0.03) as server:
        server.poison("text 7.", status=400, message="input too long")
        out = er_ray.hf_embed_ds(
            dataset(1200),
            text_var="text",
            id_var="id",
            endpoint_url=server.url,
            key_name=None,
            batch_size=4,
            concurrent_requests=6,
            workers=4,
            batch_size_rows=100,
        )
        table = collect(out)
        stats = server.stats
    assert table.num_rows == 1200 and sorted(table.column("id").to_pylist()) == list(range(1200))
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    errors = table.filter(table.column(".error"))
    assert errors.column("id").to_pylist() == [7]
    assert "input too long" in errors.column(".error_msg")[0].as_py()
    assert 1 < stats.peak_in_flight <= 6
    budget = ray.get(out._endpointr_budget.stats.remote())
    assert budget["reports"] < budget["answers"] / 4  # leased in batches


def test_a_capacity_limited_server_gives_no_error_rows_by_default(cluster: None) -> None:
    with FakeServer(dim=8, latency=0.02, capacity=3) as server:
        out = er_ray.oai_embed_ds(
            dataset(600),
            text_var="text",
            id_var="id",
            base_url=server.url + "/v1",
            key_name=None,
            batch_size=4,
            workers=2,
            batch_size_rows=100,
        )
        table = collect(out)
        stats = server.stats
    assert table.num_rows == 600 and not pa.compute.any(table.column(".error")).as_py()
    assert len(set(table.column("id").to_pylist())) == 600
    assert any(r.status == 429 for r in stats.requests)  # the server did push back


def test_blocks_of_error_rows_only_write_to_parquet_with_the_others(
    cluster: None, tmp_path: Path
) -> None:
    with FakeServer(dim=8) as server:
        server.poison("text 1", status=400, message="refused")  # 1 and 10..19: a whole block
        out = er_ray.hf_embed_ds(
            dataset(40, blocks=4),
            text_var="text",
            id_var="id",
            endpoint_url=server.url,
            key_name=None,
            workers=2,
            batch_size_rows=10,
        )
        out.write_parquet(str(tmp_path / "vectors"))
    back = pq.read_table(tmp_path / "vectors")
    assert back.num_rows == 40
    failed = sorted(back.filter(back.column(".error")).column("id").to_pylist())
    assert failed == [1, *range(10, 20)]
    messages = back.filter(back.column(".error")).column(".error_msg").to_pylist()
    assert all("refused" in m for m in messages)
    # the worked path: re-run only the failed ids, once the server takes them; the ids
    # alone are read (two columns), then each block is filtered: no shuffle, no join
    redo = pq.read_table(
        tmp_path / "vectors", columns=["id"], filters=[(".error", "==", True)]
    ).column("id")

    def only_failed(batch: pa.Table) -> pa.Table:
        return batch.filter(pa.compute.is_in(batch.column("id"), value_set=redo))

    with FakeServer(dim=8) as server:
        again = er_ray.hf_embed_ds(
            dataset(40, blocks=4).map_batches(only_failed, batch_format="pyarrow"),
            text_var="text",
            id_var="id",
            endpoint_url=server.url,
            key_name=None,
            workers=2,
        )
        redone = collect(again)
    assert sorted(redone.column("id").to_pylist()) == failed
    assert not pa.compute.any(redone.column(".error")).as_py()


def test_completions_and_bad_keywords(cluster: None) -> None:
    with FakeServer() as server:
        out = collect(
            er_ray.oai_complete_ds(
                dataset(20, blocks=2),
                text_var="text",
                id_var="id",
                base_url=server.url + "/v1",
                key_name=None,
                workers=2,
            )
        )
    assert sorted(out.column("content").to_pylist()) == sorted(
        f"echo: text {i}." for i in range(20)
    )
    with pytest.raises(ConfigError, match="less than workers"):
        er_ray.oai_complete_ds(
            dataset(4),
            text_var="text",
            id_var="id",
            key_name=None,
            concurrent_requests=2,
            workers=4,
        )
    with pytest.raises(ConfigError, match="takes no keyword"):
        er_ray.hf_embed_ds(
            dataset(4), text_var="text", id_var="id", endpoint_url="http://127.0.0.1:9", batchsize=3
        )
    with pytest.raises(ConfigError, match="write_parquet"):
        er_ray.hf_embed_ds(
            dataset(4),
            text_var="text",
            id_var="id",
            endpoint_url="http://127.0.0.1:9",
            output_dir="x",
        )


def test_classification_blocks_share_their_label_columns(cluster: None) -> None:
    with FakeServer() as server:
        server.poison("text 2", status=400, message="refused")  # 2 and 20..29: a whole block
        blocks = ray.get(
            er_ray.hf_classify_ds(
                dataset(30, blocks=3),
                text_var="text",
                id_var="id",
                endpoint_url=server.url + "/classify",
                key_name=None,
                workers=2,
                batch_size_rows=10,
            ).to_arrow_refs()
        )
    assert all(b.schema.equals(blocks[0].schema) for b in blocks)  # error block included
    table = pa.concat_tables(blocks)
    assert table.num_rows == 30
    assert {"NEGATIVE", "NEUTRAL", "POSITIVE", "label", "score"} <= set(table.column_names)
    failed = table.filter(table.column(".error"))
    assert sorted(failed.column("id").to_pylist()) == [2, *range(20, 30)]
    assert failed.column("NEGATIVE").null_count == 11


def test_a_retry_after_pauses_every_worker(cluster: None) -> None:
    with FakeServer(dim=8, latency=0.05) as server:
        server.script(*[Fault.ok()] * 60, Fault.status(429, retry_after=2.0))
        out = er_ray.hf_embed_ds(
            dataset(1600, blocks=4),
            text_var="text",
            id_var="id",
            endpoint_url=server.url,
            key_name=None,
            batch_size=4,
            concurrent_requests=8,
            workers=2,
            batch_size_rows=400,
        )
        table = collect(out)
        records = server.stats.requests
    assert table.num_rows == 1600 and not pa.compute.any(table.column(".error")).as_py()
    (refused,) = [r for r in records if r.status == 429]
    assert refused.t_end is not None
    # the other worker learns of the pause from its next lease (a few tenths of a second):
    # from then on until the Retry-After is over, no worker sends
    quiet = [r for r in records if refused.t_end + 1.0 < r.t_start < refused.t_end + 1.8]
    assert quiet == []
    assert ray.get(out._endpointr_budget.stats.remote())["pauses"] >= 1


def test_the_stages_show_the_keywords_of_their_twins() -> None:
    pairs = [
        (er_ray.hf_embed_ds, er.hf_embed_df),
        (er_ray.hf_classify_ds, er.hf_classify_df),
        (er_ray.oai_embed_ds, er.oai_embed_df),
        (er_ray.oai_complete_ds, er.oai_complete_df),
        (er_ray.ant_complete_ds, er.ant_complete_df),
    ]
    files = {"df", "output_dir", "chunk_size", "overwrite", "retry_failed", "cache_dir"}
    for stage, twin in pairs:
        shown = inspect.signature(stage).parameters
        theirs = inspect.signature(twin).parameters
        assert set(shown) == {"ds", "workers", "batch_size_rows", "num_cpus"} | (
            set(theirs) - files - {"wide", "progress"}
        )
        for name in ("concurrent_requests", "batch_size", "timeout", "key_name"):
            if name in theirs:
                assert shown[name].default == theirs[name].default
