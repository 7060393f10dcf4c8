"""OpenAI chat completions and embeddings end to end against the fake server."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from pydantic import BaseModel

import endpointr as er
from endpointr.cli import main as cli_main
from endpointr.providers.openai import OpenAIEmbed
from endpointr.testing import FakeServer, Fault, count_tokens, fake_embedding
from endpointr.types import Row

SCHEMA = er.schema_object(
    sentiment=er.schema_enum(["pos", "neg", "neu"]),
    score=er.schema_integer(minimum=0, maximum=10),
    confident=er.schema_boolean(),
    tags=er.schema_array(er.schema_string()),
)


class Review(BaseModel):
    sentiment: str
    score: int


def frame(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": range(len(texts)), "text": texts})


def complete_df(server: FakeServer, df: object, **kw: object) -> pd.DataFrame:
    kw.setdefault("output_dir", None)
    kw.setdefault("progress", False)
    kw.setdefault("key_name", None)
    return er.oai_complete_df(  # type: ignore[no-any-return]
        df, text_var="text", id_var="id", base_url=server.url + "/v1", **kw
    )


def embed_df(server: FakeServer, df: object, **kw: object) -> pd.DataFrame:
    kw.setdefault("output_dir", None)
    kw.setdefault("progress", False)
    kw.setdefault("key_name", None)
    return er.oai_embed_df(  # type: ignore[no-any-return]
        df, text_var="text", id_var="id", base_url=server.url + "/v1", **kw
    )


def test_chat_request_body_and_bearer_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-1")
    with FakeServer(api_key="sk-secret-1") as server:
        out = er.oai_complete_text(
            "hello there",
            system_prompt="Be brief.",
            endpoint_url=server.url + "/v1/chat/completions",
            max_tokens=20,
        )
        seen = server.stats.requests[0]
    assert out == "echo: hello there"
    assert seen.path == "/v1/chat/completions"
    assert seen.json == {
        "model": "gpt-4.1-nano",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        "temperature": 0,
        "max_tokens": 20,
    }
    assert seen.headers["authorization"] == "Bearer sk-secret-1"


def test_compatible_server_by_base_url_without_a_key(server: FakeServer) -> None:
    out = complete_df(server, frame(["a b", "c"]), model="local-model", temperature=None)
    assert out["content"].tolist() == ["echo: a b", "echo: c"]
    assert out["finish_reason"].tolist() == ["stop", "stop"]
    for seen in server.stats.requests:
        assert "authorization" not in seen.headers
        assert seen.json["model"] == "local-model" and "temperature" not in seen.json
    assert server.stats.rows_per_request == [1, 1]


def test_usage_columns_per_row(server: FakeServer) -> None:
    out = complete_df(server, frame(["one two three"]), system_prompt="sys")
    prompt = count_tokens("sys") + count_tokens("one two three")
    completion = count_tokens("echo: one two three")
    assert out[["prompt_tokens", "completion_tokens", "total_tokens"]].iloc[0].tolist() == [
        prompt,
        completion,
        prompt + completion,
    ]


def test_schema_sends_strict_response_format_and_fields_become_columns(
    server: FakeServer,
) -> None:
    out = complete_df(
        server, pa.table({"id": [1, 2], "text": ["good film", "bad film"]}), schema=SCHEMA
    )
    body = server.stats.requests[0].json
    assert body["response_format"] == er.create_json_schema("response", SCHEMA).to_openai()
    assert body["response_format"]["json_schema"]["strict"] is True
    assert out.column_names[:6] == ["id", "content", "sentiment", "score", "confident", "tags"]
    assert out.schema.field("score").type == pa.int64()
    assert out.schema.field("confident").type == pa.bool_()
    row = out.to_pylist()[0]
    parsed = json.loads(row["content"])
    assert row["sentiment"] == parsed["sentiment"] and row["score"] == parsed["score"]
    assert json.loads(row["tags"]) == parsed["tags"]
    assert not any(out.column(".error").to_pylist())


def test_bad_answers_are_error_rows_that_keep_content_and_usage(server: FakeServer) -> None:
    texts = [
        "fine",
        "x <<refusal>>",
        "x <<invalid_json>>",
        "x <<schema_break>>",
        "x <<null_content>>",
        "x <<length>>",
    ]
    out = complete_df(server, frame(texts), schema=SCHEMA)
    assert out[".error"].tolist() == [False, True, True, True, True, True]
    msgs = out[".error_msg"].tolist()
    assert msgs[1] == "refused: I'm sorry, I can't help with that."
    assert msgs[2].startswith("answer is not valid JSON")
    assert msgs[3] == "field 'sentiment' is required but missing"
    assert msgs[4].startswith("no content")
    assert "not valid JSON" in msgs[5] and "'length'" in msgs[5]
    assert out["content"].notna().tolist() == [True, False, True, True, False, True]
    assert out["sentiment"].isna().tolist() == [False, True, True, True, True, True]
    assert out["prompt_tokens"].notna().all() and set(out[".status"]) == {200}
    assert server.stats.request_count == 6


def test_length_without_schema_is_a_value(server: FakeServer) -> None:
    out = complete_df(server, frame(["four words go here <<length>>"]))
    assert not out[".error"][0] and out["finish_reason"][0] == "length"
    assert out["content"][0]


def test_text_returns_dict_or_model_instance_and_raises_on_refusal(server: FakeServer) -> None:
    url = server.url + "/v1"
    as_dict = er.oai_complete_text("nice", schema=SCHEMA, base_url=url, key_name=None)
    assert set(as_dict) == {"sentiment", "score", "confident", "tags"}
    review = er.oai_complete_text("nice", schema=Review, base_url=url, key_name=None)
    assert isinstance(review, Review)
    with pytest.raises(er.ResponseFormatError, match="refused"):
        er.oai_complete_text("x <<refusal>>", base_url=url, key_name=None)


def test_provider_error_message_and_no_retry_on_400(server: FakeServer) -> None:
    server.poison("bad row", 400, "Invalid 'messages[1].content': too long.")
    server.script(Fault.status(401))
    out = complete_df(server, frame(["ok", "bad row"]), concurrent_requests=1)
    assert out[".error_msg"].tolist() == [
        "Unauthorized",
        "Invalid 'messages[1].content': too long.",
    ]
    assert out[".status"].tolist() == [401, 400]
    assert server.stats.request_count == 2


def test_429_with_retry_after_is_retried(server: FakeServer) -> None:
    server.script(Fault.status(429, retry_after=0.1), Fault.status(500))
    out = complete_df(server, frame(["hi"]))
    assert not out[".error"][0] and out[".attempts"][0] == 3
    assert [r.status for r in server.stats.requests] == [429, 500, 200]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schema": {"type": "string"}}, "top level"),
        (
            {
                "schema": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                    "additionalProperties": False,
                }
            },
            "clashes",
        ),
        ({"temperature": 3}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"endpoint_url": "http://x/v1/chat/completions"}, "not both"),
    ],
)
def test_bad_settings_fail_before_any_request(
    server: FakeServer, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(er.ConfigError, match=match):
        complete_df(server, frame(["a"]), **kwargs)
    assert server.stats.request_count == 0


def test_missing_key_mentions_key_name_none(server: FakeServer) -> None:
    with pytest.raises(er.MissingAPIKeyError, match="key_name=None"):
        er.oai_complete_df(
            frame(["a"]),
            text_var="text",
            id_var="id",
            base_url=server.url,
            output_dir=None,
            progress=False,
        )


def test_chunks_metadata_and_no_key_anywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-show-me")
    with FakeServer(api_key="sk-never-show-me") as server:
        out = complete_df(
            server,
            pl.from_pandas(frame(["a", "b", "c"])),
            key_name="OPENAI_API_KEY",
            output_dir=tmp_path / "run",
            chunk_size=2,
        )
    assert isinstance(out, pl.DataFrame) and out.height == 3
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["_metadata.json", "chunk-00001.parquet", "chunk-00002.parquet"]
    meta = json.loads((tmp_path / "run" / "_metadata.json").read_text())
    assert meta["endpoint"] == "openai.chat" and meta["batch_size"] == 1
    assert meta["successes"] == 3 and meta["model"] == "gpt-4.1-nano"
    for path in (tmp_path / "run").iterdir():
        assert b"sk-never-show-me" not in path.read_bytes()


def test_complete_batch_and_async_twin(server: FakeServer) -> None:
    out = er.oai_complete_batch(["a", None], base_url=server.url + "/v1", key_name=None)
    assert out["text"][0] == "a" and out[".error"].tolist() == [False, True]
    text = asyncio.run(er.aoai_complete_text("b", base_url=server.url + "/v1", key_name=None))
    assert text == "echo: b"


def test_embed_request_body_and_base64_decoding(server: FakeServer) -> None:
    out = embed_df(server, frame(["a b", "c d", "e"]), batch_size=2, concurrent_requests=1)
    assert server.stats.requests[0].json == {
        "model": "text-embedding-3-small",
        "input": ["a b", "c d"],
        "encoding_format": "base64",
    }
    assert server.stats.rows_per_request == [2, 1]
    np.testing.assert_allclose(out["embedding"][1], fake_embedding("c d", 384), rtol=1e-6)


def test_embed_float_encoding_and_dimensions(server: FakeServer) -> None:
    vector = er.oai_embed_text(
        "hello", base_url=server.url + "/v1", key_name=None, encoding_format="float", dimensions=64
    )
    assert vector.shape == (64,) and vector.dtype == np.float32
    assert server.stats.requests[0].json["dimensions"] == 64
    assert server.stats.requests[0].json["encoding_format"] == "float"


def test_embeddings_are_matched_by_index() -> None:
    texts = [f"text number {i}" for i in range(7)]
    with FakeServer(shuffle_embeddings=True) as server:
        out = embed_df(server, pa.table({"id": range(7), "text": texts}), batch_size=7)
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    for text, vector in zip(texts, out.column("embedding").to_pylist(), strict=True):
        np.testing.assert_allclose(vector, fake_embedding(text, 384), rtol=1e-6)


def test_embeddings_with_a_missing_or_repeated_index_are_refused() -> None:
    endpoint = OpenAIEmbed("http://x/v1/embeddings", "m")
    rows = [Row(1, "a"), Row(2, "b")]
    vec = base64.b64encode(np.ones(3, "<f4").tobytes()).decode()
    with pytest.raises(er.ResponseFormatError, match="repeated"):
        endpoint.parse_values(rows, {"data": [{"index": 0, "embedding": vec}] * 2})
    with pytest.raises(er.ResponseFormatError, match="expected 2"):
        endpoint.parse_values(rows, {"data": [{"index": 0, "embedding": vec}]})


def test_embed_short_answer_is_retried_then_error_rows(server: FakeServer) -> None:
    server.script(*[Fault.wrong_count()] * 2)
    out = embed_df(server, frame(["a", "b"]), batch_size=2, max_retries=2, wide=True)
    assert out[".error"].all() and "expected 2" in out[".error_msg"][0]


def test_cli_complete_openai_with_schema(server: FakeServer, tmp_path: Path) -> None:
    frame(["good", "bad"]).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "s.json").write_bytes(orjson.dumps(er.schema_object(mood=er.schema_string())))
    code = cli_main(
        [
            "complete",
            str(tmp_path / "in.csv"),
            "--text-col",
            "text",
            "--id-col",
            "id",
            "--base-url",
            server.url + "/v1",
            "--no-key",
            "--schema",
            str(tmp_path / "s.json"),
            "--system-prompt",
            "Rate it.",
            "--output-dir",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = pd.read_parquet(tmp_path / "out" / "chunk-00001.parquet").sort_values("id")
    assert out["mood"].tolist() == ["good", "bad"]
    assert server.stats.requests[0].json["messages"][0]["content"] == "Rate it."


def test_cli_embed_provider_openai(server: FakeServer, tmp_path: Path) -> None:
    frame(["a", "b", "c"]).to_csv(tmp_path / "in.csv", index=False)
    code = cli_main(
        [
            "embed",
            str(tmp_path / "in.csv"),
            "--text-col",
            "text",
            "--id-col",
            "id",
            "--provider",
            "openai",
            "--base-url",
            server.url + "/v1",
            "--no-key",
            "--dimensions",
            "32",
            "--output-dir",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == 0
    assert server.stats.rows_per_request == [3]
    assert server.stats.requests[0].json["dimensions"] == 32
    out = pd.read_parquet(tmp_path / "out" / "chunk-00001.parquet")
    assert len(out) == 3 and len(out["embedding"][0]) == 32


def test_cli_embed_openai_key_defaults_to_openai_api_key(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame(["a"]).to_csv(tmp_path / "in.csv", index=False)
    code = cli_main(
        [
            "embed",
            str(tmp_path / "in.csv"),
            "--text-col",
            "text",
            "--id-col",
            "id",
            "--provider",
            "openai",
            "--base-url",
            server.url + "/v1",
        ]
    )
    assert code == 2 and "OPENAI_API_KEY" in capsys.readouterr().err


def test_a_key_echoed_in_an_error_message_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-abcdefgh12345678")
    message = "Incorrect API key provided: sk-proj-abcdefgh12345678. Find yours at ..."
    with FakeServer() as server:
        server.script(Fault.status(401, body={"error": {"message": message}}))
        out = complete_df(server, frame(["a"]), key_name="OPENAI_API_KEY")
    assert out[".error_msg"][0] == "Incorrect API key provided: sk-***. Find yours at ..."
