"""Hugging Face / TEI text classification end to end against the fake server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import endpointr as er
from endpointr.cli import main as cli_main
from endpointr.providers.hf_classify import label_order
from endpointr.testing import FakeServer, Fault, ranked_labels

LABELS = ("NEGATIVE", "NEUTRAL", "POSITIVE")
HF_OPTIONS = {"top_k": None, "truncation": True, "max_length": 512}


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"row number {i}" for i in range(n)]})


def classify_df(server: FakeServer, df: Any, route: str = "/classify", **kw: Any) -> Any:
    kw.setdefault("output_dir", None)
    kw.setdefault("progress", False)
    return er.hf_classify_df(
        df, text_var="text", id_var="id", endpoint_url=server.url + route, key_name=None, **kw
    )


def expected(text: str, labels: tuple[str, ...] = LABELS) -> dict[str, float]:
    return dict(ranked_labels(text, labels))


def test_classify_text_returns_scores_highest_first(server: FakeServer) -> None:
    scores = er.hf_classify_text(
        "hello world", endpoint_url=server.url + "/classify", key_name=None
    )
    assert scores == pytest.approx(expected("hello world"))
    assert list(scores) == list(expected("hello world"))
    seen = server.stats.requests[0]
    assert seen.json == {"inputs": ["hello world"], "parameters": HF_OPTIONS}
    assert "authorization" not in seen.headers


def test_wide_and_top_label_output_in_input_order(server: FakeServer) -> None:
    df = frame(10).sample(frac=1, random_state=3)
    out = classify_df(server, df, batch_size=4)
    assert out["id"].tolist() == df["id"].tolist()
    assert list(out.columns) == [
        "id",
        *LABELS,
        "label",
        "score",
        ".error",
        ".error_msg",
        ".status",
        ".attempts",
    ]
    for _, row in out.iterrows():
        want = expected(df.loc[df["id"] == row["id"], "text"].iloc[0])
        assert {k: row[k] for k in LABELS} == pytest.approx(want)
        assert row["label"] == max(want, key=want.__getitem__)
        assert row["score"] == pytest.approx(max(want.values()))
    texts = df["text"].tolist()
    bodies = sorted(
        (r.json for r in server.stats.requests), key=lambda b: texts.index(b["inputs"][0])
    )
    assert bodies == [
        {"inputs": texts[i : i + 4], "parameters": HF_OPTIONS} for i in range(0, 10, 4)
    ]


def test_tei_predict_request_body_sends_each_text_in_its_own_list(server: FakeServer) -> None:
    out = classify_df(server, frame(3), route="/predict", batch_size=8, max_length=128)
    assert server.stats.requests[0].json == {
        "inputs": [["row number 0"], ["row number 1"], ["row number 2"]],
        "truncate": True,
        "raw_scores": False,
    }
    assert out["label"].tolist() == [next(iter(expected(t))) for t in frame(3)["text"]]


def test_parameters_are_merged_into_the_request(server: FakeServer) -> None:
    classify_df(server, frame(1), max_length=64, parameters={"function_to_apply": "sigmoid"})
    classify_df(server, frame(1), route="/predict", parameters={"raw_scores": True})
    first, second = (r.json for r in server.stats.requests)
    assert first["parameters"] == {**HF_OPTIONS, "max_length": 64, "function_to_apply": "sigmoid"}
    assert second == {"inputs": [["row number 0"]], "truncate": True, "raw_scores": True}


def test_root_of_a_tei_classifier_gets_the_tei_wire_format(server: FakeServer) -> None:
    server.configure(model_type="classifier")
    out = classify_df(server, frame(2), route="")
    assert server.stats.requests[0].json["inputs"] == [["row number 0"], ["row number 1"]]
    assert not out[".error"].any()


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ([[{"label": "a", "score": 0.75}, {"label": "b", "score": 0.25}]], {"a": 0.75, "b": 0.25}),
        ([{"label": "a", "score": 0.75}, {"label": "b", "score": 0.25}], {"a": 0.75, "b": 0.25}),
        ({"label": "b", "score": 0.5}, {"a": None, "b": 0.5}),
    ],
    ids=["all-labels-nested", "one-text-flat", "single-dict"],
)
def test_answer_shapes_for_one_text(
    server: FakeServer, body: Any, want: dict[str, float | None]
) -> None:
    server.script(Fault.status(200, body=body))
    table = pa.table({"id": [7, 8], "text": ["x", "y"]})
    out = classify_df(server, table, batch_size=1, concurrent_requests=1)
    first = out.slice(0, 1).to_pylist()[0]
    assert {k: first.get(k) for k in want} == want
    assert first["label"] == max((k for k in want if want[k] is not None), key=want.__getitem__)
    assert out.column("label").to_pylist()[1] in LABELS


def test_top1_answers_give_one_label_per_row_and_nulls_elsewhere(server: FakeServer) -> None:
    server.configure(classify_shape="top1")
    df = frame(6)
    out = classify_df(server, df, batch_size=3)
    for _, row in out.iterrows():
        top, score = next(iter(expected(df["text"][row["id"]]).items()))
        assert row["label"] == top and row["score"] == pytest.approx(score)
        assert row[top] == pytest.approx(score)
        assert sum(pd.notna(row[k]) for k in LABELS if k in out.columns) == 1


def test_label_map_renames_columns_and_top_label(server: FakeServer) -> None:
    label_map = {"POSITIVE": "pos", "NEGATIVE": "neg", "UNSEEN": "other"}
    out = classify_df(server, frame(5), label_map=label_map)
    assert list(out.columns[:6]) == ["id", "pos", "neg", "NEUTRAL", "label", "score"]
    assert set(out["label"]) <= {"pos", "neg", "NEUTRAL"}
    want = expected("row number 0")
    assert out["pos"][0] == pytest.approx(want["POSITIVE"])


def test_label_order_is_natural_and_follows_label_map() -> None:
    labels = ["LABEL_10", "label_2", "LABEL_1", "b"]
    assert label_order(labels) == ["b", "LABEL_1", "label_2", "LABEL_10"]
    assert label_order(labels, {"LABEL_10": "LABEL_10", "x": "y"}) == [
        "LABEL_10",
        "b",
        "LABEL_1",
        "label_2",
    ]


def test_chunks_with_different_labels_are_joined_in_one_order(
    server: FakeServer, tmp_path: Path
) -> None:
    server.configure(classify_shape="top1", labels=["LABEL_10", "LABEL_2", "LABEL_0"])
    out_dir = tmp_path / "run"
    out = classify_df(server, frame(12), output_dir=out_dir, chunk_size=1, batch_size=2)
    assert list(out.columns[:4]) == ["id", "LABEL_0", "LABEL_2", "LABEL_10"]
    per_chunk = {len(pq.read_schema(p).names) for p in out_dir.glob("chunk-*.parquet")}
    assert per_chunk == {8}
    assert out[["LABEL_0", "LABEL_2", "LABEL_10"]].notna().sum(axis=1).tolist() == [1] * 12
    sent = server.stats.request_count
    again = classify_df(server, frame(12), output_dir=out_dir, chunk_size=1, batch_size=2)
    assert server.stats.request_count == sent
    pd.testing.assert_frame_equal(again, out)


def test_metadata_records_the_settings_and_a_new_label_map_is_refused(
    server: FakeServer, tmp_path: Path
) -> None:
    out_dir = tmp_path / "run"
    classify_df(server, frame(4), output_dir=out_dir, label_map={"NEGATIVE": "neg"})
    meta = json.loads((out_dir / "_metadata.json").read_text())
    assert meta["label_map"] == {"NEGATIVE": "neg"} and meta["max_length"] == 512
    assert meta["status"] == "completed" and meta["successes"] == 4
    assert meta["wire_format"] == "inference-endpoints"
    with pytest.raises(er.CheckpointError, match="label_map"):
        classify_df(server, frame(4), output_dir=out_dir, label_map={"NEGATIVE": "bad"})


def test_single_row_frame(server: FakeServer) -> None:
    out = classify_df(server, frame(1))
    assert len(out) == 1 and out["label"][0] in LABELS and not out[".error"][0]
    assert server.stats.rows_per_request == [1]


def test_null_empty_and_non_string_texts_are_error_rows_not_sent(server: FakeServer) -> None:
    df = pd.DataFrame({"id": [1, 2, 3, 4], "text": ["ok", None, "", 5]})
    out = classify_df(server, df)
    assert out[".error"].tolist() == [False, True, True, True]
    assert out["label"].isna().tolist() == [False, True, True, True]
    assert server.stats.texts_seen == {"ok": 1}


def test_a_refused_request_becomes_an_error_row(server: FakeServer) -> None:
    server.script(Fault.status(400, body={"error": "input too long"}))
    out = classify_df(server, frame(1))
    assert out[".error"][0] and out[".status"][0] == 400
    assert out[".error_msg"][0] == "input too long" and pd.isna(out["label"][0])
    assert server.stats.request_count == 1


@pytest.mark.parametrize(
    "body",
    [
        {"labels": ["a"]},
        [[{"label": "a", "score": "high"}]],
        [[{"label": "a", "score": 0.5}], {"label": "b", "score": 0.5}],
        [{"label": "a", "score": 0.5}] * 3,
        [],
    ],
    ids=["object", "score-not-number", "mixed", "wrong-count", "empty"],
)
def test_unreadable_answers_are_retried_then_error_rows(server: FakeServer, body: Any) -> None:
    server.script(Fault.status(200, body=body), Fault.status(200, body=body))
    out = classify_df(server, frame(2), batch_size=2, max_retries=2)
    assert out[".error"].all() and set(out[".attempts"]) == {2}
    assert server.stats.request_count == 2


def test_a_short_answer_is_retried_and_succeeds(server: FakeServer) -> None:
    server.script(Fault.wrong_count())
    out = classify_df(server, frame(4), batch_size=4)
    assert not out[".error"].any() and set(out[".attempts"]) == {2}


def test_a_label_that_clashes_with_an_output_column_is_an_error_row(server: FakeServer) -> None:
    server.configure(labels=["id", "other"])
    out = classify_df(server, frame(2))
    assert out[".error"].all() and "clashes" in out[".error_msg"][0]
    with pytest.raises(er.ConfigError, match="output column"):
        classify_df(server, frame(2), label_map={"other": "score"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"label_map": {"a": "x", "b": "x"}}, "same name"),
        ({"label_map": ["a"]}, "label_map must be a dict"),
        ({"max_length": 0}, "max_length must be >= 1"),
        ({"batch_size": "big"}, "batch_size must be an integer >= 1 or 'auto'"),
        ({"endpoint_url": "ftp://x"}, "must start with http"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    server: FakeServer, kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {"endpoint_url": server.url + "/classify", **kwargs}
    with pytest.raises(er.ConfigError, match=match):
        er.hf_classify_df(
            frame(2), text_var="text", id_var="id", key_name=None, output_dir=None, **args
        )
    assert server.stats.request_count == 0


def test_batch_size_is_capped_at_the_servers_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer(max_client_batch_size=4) as server:
        out = classify_df(server, frame(10), route="/predict", batch_size=64)
        assert max(server.stats.rows_per_request) == 4
        assert sum(server.stats.rows_per_request) == 10 and not out[".error"].any()
    err = capsys.readouterr().err
    assert "batch_size 64 > the server's max_client_batch_size 4; using 4" in err


def test_auto_batch_size_takes_the_servers_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer(max_client_batch_size=5) as server:
        out = er.hf_classify_batch(
            [f"t {i}" for i in range(12)],
            endpoint_url=server.url + "/classify",
            key_name=None,
            batch_size="auto",
            concurrent_requests=1,
        )
        assert server.stats.rows_per_request == [5, 5, 2]
    assert list(out.columns[:2]) == ["text", "NEGATIVE"] and len(out) == 12
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_frame_type_is_preserved(server: FakeServer, kind: str) -> None:
    df = frame(5)
    data = pl.from_pandas(df) if kind == "polars" else pa.Table.from_pandas(df)
    out = classify_df(server, data)
    assert type(out) is type(data) and len(out) == 5


def test_classify_batch_keeps_text_and_error_rows(server: FakeServer) -> None:
    out = er.hf_classify_batch(
        ["good", "", "bad"], endpoint_url=server.url + "/classify", key_name=None
    )
    assert out["text"].tolist() == ["good", "", "bad"]
    assert out[".error"].tolist() == [False, True, False]


def test_async_twin(server: FakeServer) -> None:
    scores = asyncio.run(
        er.ahf_classify_text("hi", endpoint_url=server.url + "/predict", key_name=None)
    )
    assert scores == pytest.approx(expected("hi"))


def test_cli_classify_end_to_end(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    frame(7).to_csv(source, index=False)
    out_dir = tmp_path / "out"
    server.configure(max_client_batch_size=3)
    code = cli_main(
        [
            "classify",
            str(source),
            "--text-col",
            "text",
            "--id-col",
            "id",
            "--endpoint-url",
            server.url + "/predict",
            "--label-map",
            '{"NEGATIVE": "neg"}',
            "--batch-size",
            "16",
            "--output-dir",
            str(out_dir),
            "--no-key",
            "--no-progress",
        ]
    )
    assert code == 0
    table = pa.concat_tables(pq.read_table(p) for p in sorted(out_dir.glob("chunk-*.parquet")))
    assert table.column_names[:4] == ["id", "neg", "NEUTRAL", "POSITIVE"]
    assert sorted(table.column("id").to_pylist()) == list(range(7))
    assert max(server.stats.rows_per_request) == 3
    meta = json.loads((out_dir / "_metadata.json").read_text())
    assert meta["label_map"] == {"NEGATIVE": "neg"} and meta["batch_size"] == 3
    assert "max_client_batch_size 3; using 3" in capsys.readouterr().err
