"""``endpointr bench`` and ``endpointr.bench`` on tiny grids."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import endpointr as er
from endpointr.bench import SeedModel
from endpointr.cli import main
from endpointr.testing import FakeServer

FAST = SeedModel(latency=0.25, per_row=0.025, capacity=4, time_scale=0.02)


def test_the_fake_grid_gives_one_row_per_cell_and_the_four_files(tmp_path: Path) -> None:
    table = er.bench(
        batch_sizes=[1, 4],
        concurrent_requests=[2, 8, "auto"],
        rows=48,
        seed_model=FAST,
        out=tmp_path,
        progress=False,
    )
    assert isinstance(table, pd.DataFrame)
    assert list(zip(table["batch_size"], table["concurrent_requests"], strict=True)) == [
        (1, "2"),
        (1, "8"),
        (1, "auto"),
        (4, "2"),
        (4, "8"),
        (4, "auto"),
    ]
    assert (table["rows"] == 48).all() and (table["error_rows"] == 0).all()
    assert table.loc[table["batch_size"] == 4, "requests"].min() >= 12
    assert (table["peak_in_flight"] <= 4).all()  # the capacity: beyond it, 429
    over = table[table["concurrent_requests"] == "8"]
    assert (over["http_429"] > 0).all()  # asked for more than the server holds
    assert table["efficiency"].between(0.05, 1.2).all()
    assert (table["p95_ms"] >= table["p50_ms"]).all() and (table["p50_ms"] >= 5).all()
    for name in ("bench.csv", "bench.md", "throughput.png", "heatmap.png"):
        assert (tmp_path / name).stat().st_size > 100
    assert (tmp_path / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    again = pd.read_csv(tmp_path / "bench.csv")
    assert again["rows_per_s"].tolist() == table["rows_per_s"].tolist()
    md = (tmp_path / "bench.md").read_text()
    assert "| batch_size | c=2 | c=8 | c=auto |" in md


def test_bench_on_a_given_endpoint_sends_every_row(server: FakeServer, tmp_path: Path) -> None:
    texts = pd.DataFrame({"body": ["same text"] * 3 + ["other"]})
    table = er.bench(
        endpoint_url=server.url + "/embed",
        key_name=None,
        batch_sizes=[2],
        concurrent_requests=[1, 3],
        rows=10,
        df=texts,
        text_var="body",
        progress=False,
    )
    assert table["efficiency"].isna().all()  # no latency model to compare with
    assert sum(server.stats.texts_seen.values()) == 20  # dedupe is off: every row is sent
    assert server.stats.rows_per_request.count(2) == 10


def test_the_command_writes_the_report(server: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(5)]}).to_csv(path, index=False)
    argv = ["bench", "--endpoint-url", server.url + "/embed", "--no-key", "--rows", "6"]
    argv += ["--batch-sizes", "1,3", "--concurrent-requests", "2", "--input", str(path)]
    assert main([*argv, "--out", str(tmp_path / "report")]) == 0
    assert server.stats.row_count == 12
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {"bench.csv", "bench.md"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"batch_sizes": [0]}, "batch sizes must be positive"),
        ({"concurrent_requests": ["many"]}, "positive integers or 'auto'"),
        ({"rows": 0}, "rows must be a positive integer"),
        (
            {"provider": "openai", "base_url": None, "endpoint_url": "http://127.0.0.1:1"},
            "base_url",
        ),
    ],
)
def test_bad_grids_fail_before_any_request(kw: dict[str, object], message: str) -> None:
    with pytest.raises(er.ConfigError, match=message):
        er.bench(progress=False, **kw)  # type: ignore[arg-type]
