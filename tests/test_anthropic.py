"""Anthropic Messages end to end against the fake server."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pandas as pd
import pytest
from pydantic import BaseModel

import endpointr as er
from endpointr.cli import main as cli_main
from endpointr.testing import FakeServer, Fault, count_tokens

SCHEMA = er.schema_object(topic=er.schema_string(), stars=er.schema_integer())
SYSTEM = "You are a careful and consistent rater of short product reviews."


class Topic(BaseModel):
    topic: str
    stars: int


def frame(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": range(len(texts)), "text": texts})


def messages_df(server: FakeServer, df: object, **kw: object) -> pd.DataFrame:
    kw.setdefault("output_dir", None)
    kw.setdefault("progress", False)
    kw.setdefault("key_name", None)
    return er.ant_complete_df(  # type: ignore[no-any-return]
        df, text_var="text", id_var="id", base_url=server.url, **kw
    )


def test_request_body_and_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    with FakeServer(api_key="sk-ant-secret") as server:
        out = er.ant_complete_text(
            "hello", endpoint_url=server.url + "/v1/messages", max_tokens=50, temperature=0.5
        )
        seen = server.stats.requests[0]
    assert out == "echo: hello"
    assert seen.path == "/v1/messages"
    assert seen.json == {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}],
        "temperature": 0.5,
    }
    assert seen.headers["x-api-key"] == "sk-ant-secret"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["content-type"] == "application/json"
    assert "authorization" not in seen.headers


def test_system_prompt_is_a_cached_block_read_from_cache_on_the_next_row(
    server: FakeServer,
) -> None:
    out = messages_df(
        server,
        frame(["first row", "second row"]),
        system_prompt=SYSTEM,
        concurrent_requests=1,
        cache_system_prompt=True,
    )
    assert server.stats.requests[0].json["system"] == [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]
    tokens = count_tokens(SYSTEM)
    assert out["cache_creation_input_tokens"].tolist() == [tokens, 0]
    assert out["cache_read_input_tokens"].tolist() == [0, tokens]
    assert out["input_tokens"].tolist() == [2, 2]
    assert out["output_tokens"].tolist() == [3, 3]
    assert out["stop_reason"].tolist() == ["end_turn", "end_turn"]


def test_structured_output_config_and_field_columns(server: FakeServer) -> None:
    out = messages_df(server, frame(["a fine kettle"]), schema=SCHEMA)
    body = server.stats.requests[0].json
    assert body["output_config"] == er.create_json_schema("r", SCHEMA).to_anthropic()
    assert body["output_config"]["format"]["type"] == "json_schema"
    row = out.iloc[0]
    assert not row[".error"] and out["stars"].dtype == "int64"
    assert json.loads(row["content"]) == {"topic": row["topic"], "stars": row["stars"]}


def test_constraints_anthropic_rejects_move_to_descriptions_but_are_still_checked(
    server: FakeServer,
) -> None:
    bounded = er.schema_object(stars=er.schema_integer(minimum=100, maximum=100))
    out = messages_df(server, frame(["rate it"]), schema=bounded)
    sent = server.stats.requests[0].json["output_config"]["format"]["schema"]
    assert sent["properties"]["stars"] == {
        "type": "integer",
        "description": "{minimum: 100, maximum: 100}",
    }
    assert out[".error"][0] and out[".error_msg"][0].startswith("field 'stars'")


def test_refusal_and_bad_answers_are_error_rows_with_usage(server: FakeServer) -> None:
    texts = ["ok", "x <<refusal>>", "x <<schema_break>>", "x <<invalid_json>>", "x <<length>>"]
    out = messages_df(server, frame(texts), schema=SCHEMA)
    assert out[".error"].tolist() == [False, True, True, True, True]
    msgs = out[".error_msg"].tolist()
    assert msgs[1] == "refused: I'm sorry, I can't help with that."
    assert msgs[2] == "field 'topic' is required but missing"
    assert msgs[3].startswith("answer is not valid JSON")
    assert "'max_tokens'" in msgs[4]
    assert out["stop_reason"].tolist()[1] == "refusal"
    assert out["content"][1] == "I'm sorry, I can't help with that."
    assert out["output_tokens"].notna().all() and out["topic"].isna().sum() == 4


def test_null_content_is_an_error_row(server: FakeServer) -> None:
    out = messages_df(server, frame(["x <<null_content>>"]))
    assert out[".error"][0] and out[".error_msg"][0].startswith("no content")


def test_529_overloaded_is_retried(server: FakeServer) -> None:
    server.script(Fault.status(529), Fault.status(529, retry_after=0.05))
    out = messages_df(server, frame(["hi"]))
    assert not out[".error"][0] and out[".attempts"][0] == 3
    assert [r.status for r in server.stats.requests] == [529, 529, 200]


def test_error_rows_carry_anthropics_message(server: FakeServer) -> None:
    server.poison("too long", 400, "prompt is too long: 250000 tokens > 200000 maximum")
    out = messages_df(server, frame(["fine", "too long"]))
    assert out[".error_msg"][1] == "prompt is too long: 250000 tokens > 200000 maximum"
    assert out[".status"].tolist() == [200, 400]


def test_text_with_pydantic_schema_returns_a_model(server: FakeServer) -> None:
    topic = er.ant_complete_text("tea", schema=Topic, base_url=server.url + "/v1", key_name=None)
    assert isinstance(topic, Topic) and topic.topic == "tea"
    assert server.stats.requests[0].path == "/v1/messages"


def test_text_raises_on_refusal_and_missing_key(server: FakeServer) -> None:
    with pytest.raises(er.ResponseFormatError, match="refused"):
        er.ant_complete_text("<<refusal>>", base_url=server.url, key_name=None)
    with pytest.raises(er.MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        er.ant_complete_text("hi", base_url=server.url)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"temperature": 1.5}, "from 0 to 1"), ({"model": ""}, "model"), ({"schema": 3}, "schema")],
)
def test_bad_settings_fail_before_any_request(
    server: FakeServer, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(er.ConfigError, match=match):
        messages_df(server, frame(["a"]), **kwargs)
    assert server.stats.request_count == 0


def test_batch_returns_pandas(server: FakeServer) -> None:
    out = er.ant_complete_batch(["a", "b"], base_url=server.url, key_name=None)
    assert out["text"].tolist() == ["a", "b"]
    assert out["content"].tolist() == ["echo: a", "echo: b"]


def test_cli_complete_anthropic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cli")
    frame(["x", "y"]).to_parquet(tmp_path / "in.parquet")
    (tmp_path / "s.json").write_bytes(orjson.dumps(SCHEMA))
    with FakeServer(api_key="sk-ant-cli") as server:
        code = cli_main(
            [
                "complete",
                str(tmp_path / "in.parquet"),
                "--text-col",
                "text",
                "--id-col",
                "id",
                "--provider",
                "anthropic",
                "--endpoint-url",
                server.url + "/v1/messages",
                "--schema",
                str(tmp_path / "s.json"),
                "--max-tokens",
                "64",
                "--output-dir",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        seen = server.stats.requests[0]
    assert code == 0
    assert seen.headers["x-api-key"] == "sk-ant-cli" and seen.json["max_tokens"] == 64
    out = pd.read_parquet(tmp_path / "out" / "chunk-00001.parquet")
    assert sorted(out["topic"]) == ["x", "y"] and not out[".error"].any()
    meta = (tmp_path / "out" / "_metadata.json").read_text()
    assert "sk-ant-cli" not in meta and '"key_name": "ANTHROPIC_API_KEY"' in meta
