"""The fake server itself, observed from plain HTTP clients over real sockets."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import numpy as np
import pytest

from endpointr.testing import (
    FAULT_KINDS,
    SHORTCUT_KINDS,
    FakeServer,
    Fault,
    Settings,
    fake_embedding,
    fill_schema,
)
from endpointr.testing.providers import go_duration
from endpointr.testing.replies import FAULT_REPLIES
from endpointr.testing.server import add_arguments, settings_from_args

SRC = Path(__file__).resolve().parents[1] / "src"
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "flag": {"type": "boolean"},
        "detail": {"$ref": "#/$defs/Detail"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["sentiment", "confidence", "stars", "topics", "flag", "detail", "note"],
    "additionalProperties": False,
    "$defs": {
        "Detail": {
            "type": "object",
            "properties": {"summary": {"type": "string", "maxLength": 12}},
            "required": ["summary"],
        }
    },
}


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(dim=16) as server:
        yield server


def post(
    url: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def post_json(url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    status, _, raw = post(url, body, headers)
    assert status == 200, raw
    return json.loads(raw)


def chat(server: FakeServer, prompt: str, **extra: Any) -> Any:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": prompt}], **extra}
    return post_json(server.url + "/v1/chat/completions", body)


def message(server: FakeServer, prompt: str, **extra: Any) -> Any:
    body = {
        "model": "claude-x",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": prompt}],
    }
    return post_json(server.url + "/v1/messages", {**body, **extra}, ANTHROPIC_HEADERS)


async def _parallel_posts(url: str, bodies: list[Any]) -> list[tuple[int, dict[str, str]]]:
    async with aiohttp.ClientSession() as session:

        async def one(body: Any) -> tuple[int, dict[str, str]]:
            async with session.post(url, json=body) as answer:
                await answer.read()
                return answer.status, dict(answer.headers)

        return list(await asyncio.gather(*(one(body) for body in bodies)))


def parallel_posts(url: str, bodies: list[Any]) -> list[tuple[int, dict[str, str]]]:
    return asyncio.run(_parallel_posts(url, bodies))


async def _aio_post(url: str, body: Any, timeout: float = 5.0) -> tuple[int, bytes, str]:
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.post(url, json=body) as answer,
    ):
        return answer.status, await answer.read(), answer.content_type


def aio_post(url: str, body: Any, timeout: float = 5.0) -> tuple[int, bytes, str]:
    return asyncio.run(_aio_post(url, body, timeout))


# --- HF / TEI -------------------------------------------------------------------------


def test_embed_answers_one_vector_per_input(fake: FakeServer) -> None:
    vectors = post_json(fake.url + "/embed", {"inputs": ["a b", "c"], "truncate": True})
    assert np.allclose(vectors, [fake_embedding("a b", 16), fake_embedding("c", 16)])
    assert post_json(fake.url + "/embed", {"inputs": "a b"}) == [vectors[0]]
    assert post_json(fake.url + "/", {"inputs": "a b"}) == vectors[0]
    assert post_json(fake.url + "/", {"inputs": ["a b", "c"]}) == vectors


def test_vectors_are_unit_float32_and_the_same_in_another_process() -> None:
    vector = fake_embedding("hello world", 384)
    assert vector.dtype == np.float32 and vector.shape == (384,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    code = (
        "from endpointr.testing import fake_embedding; "
        "print(fake_embedding('hello world', 384).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == vector.tobytes().hex()


def test_embed_validation_errors_use_tei_shapes(fake: FakeServer) -> None:
    status, _, raw = post(fake.url + "/embed", {"text": "no inputs"})
    assert status == 422 and json.loads(raw)["error_type"] == "Validation"
    status, _, raw = post(fake.url + "/embed", {"inputs": ["ok", ""]})
    assert status == 422
    status, _, raw = post(fake.url + "/embed", {"inputs": [f"t{i}" for i in range(40)]})
    assert status == 413
    assert json.loads(raw) == {
        "error": "batch size 40 > maximum allowed batch size 32",
        "error_type": "Validation",
    }
    assert fake.stats.rows_per_request == [0, 2, 40]


def test_classify_shapes(fake: FakeServer) -> None:
    url = fake.url + "/classify"
    nested = post_json(url, {"inputs": ["good", "bad"]})
    assert len(nested) == 2 and all(len(per_text) == 3 for per_text in nested)
    for per_text in nested:
        scores = [item["score"] for item in per_text]
        assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-9
        assert {item["label"] for item in per_text} == {"NEGATIVE", "NEUTRAL", "POSITIVE"}
    assert post_json(url, {"inputs": "good"}) == nested[0]
    cut = post_json(url, {"inputs": ["good", "bad"], "parameters": {"top_k": 1}})
    assert cut == [[nested[0][0]], [nested[1][0]]]
    fake.configure(classify_shape="top1", labels=["no", "yes"])
    top1 = post_json(url, {"inputs": ["good", "bad"]})
    assert [set(item) for item in top1] == [{"label", "score"}] * 2


def test_predict_shapes(fake: FakeServer) -> None:
    flat = post_json(fake.url + "/predict", {"inputs": "good"})
    assert [set(item) for item in flat] == [{"score", "label"}] * 3
    nested = post_json(fake.url + "/predict", {"inputs": ["good", "bad"]})
    assert nested[0] == flat and len(nested) == 2
    raw = post_json(fake.url + "/predict", {"inputs": "good", "raw_scores": True})
    assert abs(sum(item["score"] for item in raw) - 1) > 1e-6


def test_info_and_health(fake: FakeServer) -> None:
    with urllib.request.urlopen(fake.url + "/info") as answer:
        info = json.loads(answer.read())
    assert info["max_client_batch_size"] == 32 and info["model_id"] == "fake/embedder"
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    fake.configure(model_type="classifier", max_client_batch_size=8)
    with urllib.request.urlopen(fake.url + "/info") as answer:
        info = json.loads(answer.read())
    assert info["max_client_batch_size"] == 8
    assert info["model_type"]["classifier"]["id2label"]["2"] == "POSITIVE"
    with urllib.request.urlopen(fake.url + "/health") as answer:
        assert answer.status == 200 and answer.read() == b""
    assert fake.stats.request_count == 0


# --- OpenAI ---------------------------------------------------------------------------


def test_openai_embeddings(fake: FakeServer) -> None:
    url = fake.url + "/v1/embeddings"
    status, headers, raw = post(url, {"model": "m", "input": ["one two", "three"]})
    answer = json.loads(raw)
    assert status == 200 and answer["object"] == "list" and answer["model"] == "m"
    assert [item["index"] for item in answer["data"]] == [0, 1]
    assert np.allclose(answer["data"][1]["embedding"], fake_embedding("three", 16))
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert int(headers["x-ratelimit-remaining-requests"]) > 0
    assert "x-ratelimit-reset-tokens" in headers
    encoded = post_json(url, {"model": "m", "input": "three", "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(decoded, fake_embedding("three", 16))
    short = post_json(url, {"model": "m", "input": "three", "dimensions": 4})["data"][0]
    assert len(short["embedding"]) == 4
    assert abs(np.linalg.norm(short["embedding"]) - 1) < 1e-5


def test_shuffled_openai_embeddings_keep_their_index(fake: FakeServer) -> None:
    fake.configure(shuffle_embeddings=True)
    texts = ["a", "b", "c"]
    data = post_json(fake.url + "/v1/embeddings", {"model": "m", "input": texts})["data"]
    assert [item["index"] for item in data] == [2, 1, 0]
    for item in data:
        assert np.allclose(item["embedding"], fake_embedding(texts[item["index"]], 16))


def test_chat_echo_and_shape(fake: FakeServer) -> None:
    answer = chat(fake, "hello there")
    assert answer["object"] == "chat.completion" and answer["id"].startswith("chatcmpl-")
    choice = answer["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "echo: hello there",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_json_schema_answers_fit_the_schema(fake: FakeServer) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA, "strict": True}}
    first = chat(fake, "the food was great", response_format=fmt)
    content = first["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), SCHEMA)
    assert chat(fake, "the food was great", response_format=fmt)["choices"] == first["choices"]
    for i in range(20):
        jsonschema.validate(fill_schema(SCHEMA, f"text number {i}"), SCHEMA)
    json_mode = chat(fake, "hi", response_format={"type": "json_object"})
    assert isinstance(json.loads(json_mode["choices"][0]["message"]["content"]), dict)


def test_chat_markers(fake: FakeServer) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA, "strict": True}}
    refusal = chat(fake, "x <<refusal>>")["choices"][0]["message"]
    assert refusal["content"] is None and refusal["refusal"].startswith("I'm sorry")
    null = chat(fake, "x <<null_content>>")["choices"][0]["message"]
    assert null["content"] is None and null["refusal"] is None
    invalid = chat(fake, "x <<invalid_json>>", response_format=fmt)["choices"][0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(invalid["message"]["content"])
    broken = chat(fake, "x <<schema_break>>", response_format=fmt)["choices"][0]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(broken["message"]["content"]), SCHEMA)
    assert chat(fake, "x <<length>>")["choices"][0]["finish_reason"] == "length"


# --- Anthropic ------------------------------------------------------------------------


def test_anthropic_message_shape_and_required_fields(fake: FakeServer) -> None:
    answer = message(fake, "hello there")
    assert answer["type"] == "message" and answer["id"].startswith("msg_")
    assert answer["content"] == [{"type": "text", "text": "echo: hello there"}]
    assert answer["stop_reason"] == "end_turn" and answer["stop_sequence"] is None
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    status, _, raw = post(fake.url + "/v1/messages", body)
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = post(
        fake.url + "/v1/messages", {**body, "max_tokens": None}, ANTHROPIC_HEADERS
    )
    assert status == 400
    status, headers, _ = post(fake.url + "/v1/messages", body, ANTHROPIC_HEADERS)
    assert "anthropic-ratelimit-requests-remaining" in headers and "request-id" in headers


def test_anthropic_prompt_caching_counts(fake: FakeServer) -> None:
    system = [
        {"type": "text", "text": "you label reviews well", "cache_control": {"type": "ephemeral"}}
    ]
    first = message(fake, "one two", system=system)["usage"]
    assert first["cache_creation_input_tokens"] == 4 and first["cache_read_input_tokens"] == 0
    assert first["input_tokens"] == 2
    second = message(fake, "three", system=system)["usage"]
    assert second["cache_read_input_tokens"] == 4 and second["cache_creation_input_tokens"] == 0
    plain = message(fake, "three", system="no caching here")["usage"]
    assert plain["input_tokens"] == 4 and plain["cache_read_input_tokens"] == 0


def test_anthropic_structured_output_and_markers(fake: FakeServer) -> None:
    config = {"format": {"type": "json_schema", "schema": SCHEMA}}
    answer = message(fake, "great food", output_config=config)
    jsonschema.validate(json.loads(answer["content"][0]["text"]), SCHEMA)
    assert message(fake, "x <<refusal>>")["stop_reason"] == "refusal"
    assert message(fake, "x <<length>>")["stop_reason"] == "max_tokens"
    broken = message(fake, "x <<invalid_json>>", output_config=config)["content"][0]["text"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)


# --- latency, capacity, auth, rate limits -----------------------------------------------


def test_latency_model() -> None:
    with FakeServer(latency=0.05, per_row_latency=0.01) as server:
        started = time.monotonic()
        post_json(server.url + "/embed", {"inputs": ["a", "b", "c", "d", "e"]})
        assert time.monotonic() - started >= 0.1
        record = server.stats.requests[0]
        assert record.t_end is not None and record.t_end - record.t_start >= 0.1


def test_capacity_answers_429_with_retry_after() -> None:
    with FakeServer(latency=0.3, capacity=2, retry_after=0.05) as server:
        answers = parallel_posts(server.url + "/embed", [{"inputs": [f"t{i}"]} for i in range(5)])
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 200, 429, 429, 429]
        assert {h["Retry-After"] for s, h in answers if s == 429} == {"0.05"}
        assert server.stats.peak_in_flight == 2
        body = {"model": "m", "input": "x"}
        answers = parallel_posts(server.url + "/v1/embeddings", [body] * 3)
        assert sorted(status for status, _ in answers) == [200, 200, 429]


def test_capacity_error_bodies_per_provider() -> None:
    with FakeServer(capacity=0) as server:
        _, _, raw = post(server.url + "/embed", {"inputs": "x"})
        assert json.loads(raw) == {"error": "Model is overloaded", "error_type": "Overloaded"}
        _, _, raw = post(server.url + "/v1/embeddings", {"model": "m", "input": "x"})
        assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        _, _, raw = post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS)
        assert json.loads(raw)["error"]["type"] == "rate_limit_error"


def test_peak_in_flight_counts_parallel_requests() -> None:
    with FakeServer(latency=0.2) as server:
        parallel_posts(server.url + "/embed", [{"inputs": [f"t{i}"]} for i in range(6)])
        stats = server.stats
        assert stats.peak_in_flight == 6 and stats.request_count == 6 and stats.row_count == 6


def test_api_key_is_enforced_per_provider() -> None:
    with FakeServer(api_key="sk-test") as server:
        status, _, raw = post(server.url + "/embed", {"inputs": "x"})
        assert status == 401 and "error" in json.loads(raw)
        status, _, _ = post(
            server.url + "/embed", {"inputs": "x"}, {"Authorization": "Bearer sk-test"}
        )
        assert status == 200
        status, _, raw = post(server.url + "/v1/embeddings", {"model": "m", "input": "x"})
        assert status == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        key = {**ANTHROPIC_HEADERS, "x-api-key": "sk-test"}
        assert post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS)[0] == 401
        assert post(server.url + "/v1/messages", body, key)[0] == 200
        requests = server.stats.requests
        assert "authorization" not in requests[0].headers
        assert requests[1].headers["authorization"] == "Bearer sk-test"


def test_rpm_budget() -> None:
    with FakeServer(rpm=2) as server:
        url = server.url + "/v1/embeddings"
        answers = [post(url, {"model": "m", "input": "x"}) for _ in range(3)]
        assert [status for status, _, _ in answers] == [200, 200, 429]
        headers = answers[2][1]
        assert headers["x-ratelimit-limit-requests"] == "2"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert float(headers["Retry-After"]) > 0
        assert post(server.url + "/embed", {"inputs": "x"})[0] == 200


# --- faults -----------------------------------------------------------------------------


def test_status_faults_in_script_order(fake: FakeServer) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    fake.script(Fault.status(503, retry_after=2), Fault.ok(), Fault.status(429, retry_after=date))
    answers = [post(fake.url + "/embed", {"inputs": "x"}) for _ in range(4)]
    assert [status for status, _, _ in answers] == [503, 200, 429, 200]
    assert answers[0][1]["Retry-After"] == "2" and answers[2][1]["Retry-After"] == date
    assert json.loads(answers[0][2])["error_type"] == "Unhealthy"
    assert [r.status for r in fake.stats.requests] == [503, 200, 429, 200]


def test_status_fault_bodies_per_provider(fake: FakeServer) -> None:
    fake.script(Fault.status(529), Fault.status(500), Fault.status(400, body={"custom": 1}))
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    _, _, raw = post(fake.url + "/v1/messages", body, ANTHROPIC_HEADERS)
    overloaded = {"type": "overloaded_error", "message": "Overloaded"}
    assert json.loads(raw) == {"type": "error", "error": overloaded}
    _, _, raw = post(
        fake.url + "/v1/chat/completions", {"model": "m", "messages": body["messages"]}
    )
    assert set(json.loads(raw)["error"]) == {"message", "type", "param", "code"}
    assert json.loads(post(fake.url + "/embed", {"inputs": "x"})[2]) == {"custom": 1}


def test_body_faults(fake: FakeServer) -> None:
    fake.script(Fault.malformed(), Fault.html(502), Fault.empty(), Fault.wrong_count())
    url = fake.url + "/embed"
    body = {"inputs": ["a", "b"]}
    status, raw, content_type = aio_post(url, body)
    assert status == 200 and content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    status, raw, content_type = aio_post(url, body)
    assert status == 502 and content_type == "text/html" and b"<h1>502 Bad Gateway</h1>" in raw
    assert aio_post(url, body)[:2] == (200, b"")
    assert len(json.loads(aio_post(url, body)[1])) == 1


def test_wrong_count_on_every_route(fake: FakeServer) -> None:
    fake.script(*[Fault.wrong_count()] * 4)
    assert len(post_json(fake.url + "/classify", {"inputs": ["a", "b"]})) == 1
    data = post_json(fake.url + "/v1/embeddings", {"model": "m", "input": ["a", "b"]})["data"]
    assert len(data) == 1
    assert chat(fake, "hi")["choices"] == []
    assert message(fake, "hi")["content"] == []


def test_delay_fault_exceeds_a_client_timeout(fake: FakeServer) -> None:
    fake.script(Fault.delay(0.5))
    with pytest.raises(asyncio.TimeoutError):
        aio_post(fake.url + "/embed", {"inputs": "x"}, timeout=0.2)
    assert aio_post(fake.url + "/embed", {"inputs": "x"})[0] == 200


def test_connection_reset_faults(fake: FakeServer) -> None:
    fake.script(Fault.reset_before(), Fault.reset_mid())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        aio_post(fake.url + "/embed", {"inputs": ["a", "b"]})
    with pytest.raises(aiohttp.ClientPayloadError):
        aio_post(fake.url + "/embed", {"inputs": ["a", "b"]})
    assert aio_post(fake.url + "/embed", {"inputs": ["a", "b"]})[0] == 200
    assert [r.status for r in fake.stats.requests] == [None, None, 200]


def test_poison_fails_only_batches_holding_the_text(fake: FakeServer) -> None:
    fake.poison("BAD", status=400, message="input too long")
    status, _, raw = post(fake.url + "/embed", {"inputs": ["ok", "this is BAD", "fine"]})
    assert status == 400 and json.loads(raw)["error"] == "input too long"
    assert post(fake.url + "/embed", {"inputs": ["ok"]})[0] == 200
    assert post(fake.url + "/embed", {"inputs": ["this is BAD", "fine"]})[0] == 400
    assert post(fake.url + "/embed", {"inputs": ["fine"]})[0] == 200
    assert fake.stats.row_count == 2 and fake.stats.texts_seen["fine"] == 3


def test_random_faults_honour_rate_and_seed(fake: FakeServer) -> None:
    def run() -> list[int]:
        fake.reset()
        fake.random_faults(rate=0.2, kinds=("500", "503"), seed=7)
        return [post(fake.url + "/embed", {"inputs": "x"})[0] for _ in range(150)]

    first = run()
    failures = sum(status != 200 for status in first)
    assert 12 <= failures <= 50 and set(first) <= {200, 500, 503}
    assert run() == first


def test_reset_forgets_everything(fake: FakeServer) -> None:
    fake.script(Fault.status(500))
    fake.poison("x")
    fake.reset()
    assert post(fake.url + "/embed", {"inputs": "x"})[0] == 200
    assert fake.stats.request_count == 1


def test_only_loopback_is_allowed() -> None:
    with pytest.raises(ValueError):
        FakeServer(host="0.0.0.0")


def test_an_unknown_setting_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="no_such_setting"):
        FakeServer(no_such_setting=1)


# --- settings flags and fault tables ------------------------------------------------------


def test_every_setting_has_a_flag_with_its_default() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8089)
    assert settings_from_args(args) == {
        f.name: getattr(Settings(), f.name) for f in fields(Settings)
    }


def test_setting_flags_parse_types_lists_choices_and_switches() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--labels", "a, b,,c", "--capacity", "3", "--latency", "0.5", "--shuffle-embeddings"]
    settings = settings_from_args(parser.parse_args([*argv, "--model-type", "classifier"]))
    assert settings["labels"] == ("a", "b", "c") and settings["capacity"] == 3
    assert settings["latency"] == 0.5 and settings["shuffle_embeddings"] is True
    assert settings["model_type"] == "classifier" and settings["rpm"] is None
    assert Settings(**settings).labels == ("a", "b", "c")
    with pytest.raises(SystemExit):
        parser.parse_args(["--classify-shape", "top2"])


def test_every_fault_kind_has_a_reply_and_every_name_a_fault() -> None:
    assert tuple(FAULT_REPLIES) == FAULT_KINDS
    for kind in FAULT_KINDS + SHORTCUT_KINDS:
        fault = Fault.from_kind(kind, retry_after=2.0, delay=3.0)
        assert fault.kind in FAULT_KINDS and Fault.from_dict(fault.to_dict()) == fault
    assert Fault.from_kind("429", retry_after=2.0) == Fault.status(429, retry_after=2.0)
    assert Fault.from_kind("delay", delay=3.0) == Fault.delay(3.0)
    with pytest.raises(ValueError, match="known kinds"):
        Fault.from_kind("teapot")


# --- control routes and the foreground server -----------------------------------------------


def test_control_routes_over_http(fake: FakeServer) -> None:
    post_json(fake.url + "/_script", [{"kind": "status", "code": 502}, {"kind": "ok"}])
    post_json(fake.url + "/_configure", {"latency": 0.0, "dim": 8})
    assert post(fake.url + "/embed", {"inputs": "x"})[0] == 502
    assert len(post_json(fake.url + "/embed", {"inputs": ["x"]})[0]) == 8
    with urllib.request.urlopen(fake.url + "/_stats") as answer:
        stats = json.loads(answer.read())
    assert stats["request_count"] == 2 and stats["rows_per_request"] == [1, 1]
    assert stats["row_count"] == 1 and stats["peak_in_flight"] == 1
    assert "headers" not in stats["requests"][0] and stats["requests"][0]["status"] == 502
    assert post(fake.url + "/_configure", {"no_such_setting": 1})[0] == 400
    post_json(fake.url + "/_reset", {})
    assert fake.stats.request_count == 0


def test_python_m_runs_the_server_in_the_foreground() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "endpointr.testing", "--port", "0", "--dim", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("endpointr fake server listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        vectors = np.asarray(post_json(url + "/embed", {"inputs": "x"}), dtype=np.float32)
        assert np.array_equal(vectors, [fake_embedding("x", 4)])
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


# --- token budgets, rate-limit headers, device queue, clocked modes ----------------------


def go_seconds(text: str) -> float:
    """A Go duration such as ``20ms``, ``59.5s`` or ``1m0s`` in seconds."""
    if text.endswith("ms"):
        return int(text[:-2]) / 1000
    minutes, _, rest = text.rpartition("m")
    return int(minutes or 0) * 60 + float(rest.removesuffix("s"))


def seconds_until(rfc3339: str) -> float:
    return (datetime.fromisoformat(rfc3339) - datetime.now(UTC)).total_seconds()


def embed_openai(server: FakeServer, texts: list[str]) -> tuple[int, dict[str, str], bytes]:
    return post(server.url + "/v1/embeddings", {"model": "m", "input": texts})


def test_go_durations_are_written_as_go_prints_them() -> None:
    assert [go_duration(s) for s in (0, 0.02, 1.5, 59.9996, 360, 61.25)] == [
        "0s",
        "20ms",
        "1.5s",
        "1m0s",
        "6m0s",
        "1m1.25s",
    ]


def test_tpm_budget_with_openai_token_headers_and_usage() -> None:
    with FakeServer(dim=4, tpm=10) as server:
        status, headers, raw = embed_openai(server, ["one two", "three"])
        assert status == 200 and json.loads(raw)["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
        assert headers["x-ratelimit-limit-tokens"] == "10"
        assert headers["x-ratelimit-remaining-tokens"] == "7"
        assert 59 < go_seconds(headers["x-ratelimit-reset-tokens"]) <= 60
        time.sleep(0.3)
        status, headers, _ = embed_openai(server, ["a b c d e"])
        assert status == 200 and headers["x-ratelimit-remaining-tokens"] == "2"
        assert go_seconds(headers["x-ratelimit-reset-tokens"]) > 59.5  # the newest spend
        status, headers, raw = embed_openai(server, ["a b c d"])
        assert status == 429 and headers["x-ratelimit-remaining-tokens"] == "2"
        # 4 tokens fit once the first request's 3 leave, 60 s after it
        assert 58 < float(headers["Retry-After"]) < 59.9
        error = json.loads(raw)["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "tokens per min (TPM): Limit 10, Used 8, Requested 4" in error["message"]
        status, headers, raw = embed_openai(server, ["x " * 11])
        assert status == 429 and "Retry-After" not in headers
        assert json.loads(raw)["error"]["message"].startswith("Request too large")
        status, headers, raw = post(server.url + "/embed", {"inputs": ["a b c d e f g h"]})
        assert status == 200
        status, _, raw = post(server.url + "/embed", {"inputs": ["a b c"]})
        assert status == 429 and json.loads(raw) == {
            "error": "Rate limit reached: 10 tokens per minute",
            "error_type": "Overloaded",
        }
        assert [r.status for r in server.stats.requests] == [200, 200, 429, 429, 200, 429]


def test_a_chat_costs_its_prompt_tokens_plus_max_tokens() -> None:
    with FakeServer(tpm=1000) as server:
        messages = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two three"}]},
        ]
        body = {"model": "m", "messages": messages, "max_completion_tokens": 40}
        status, headers, raw = post(server.url + "/v1/chat/completions", body)
        usage = json.loads(raw)["usage"]
        assert status == 200 and usage["prompt_tokens"] == 5
        used = 1000 - int(headers["x-ratelimit-remaining-tokens"])
        assert used == usage["prompt_tokens"] + 40


def test_tokens_free_up_as_the_window_slides() -> None:
    with FakeServer(dim=4, tpm=5, rpm=100, rate_window=0.4) as server:
        assert embed_openai(server, ["a b c d"])[0] == 200
        status, headers, _ = embed_openai(server, ["a b"])
        assert status == 429 and 0 < float(headers["Retry-After"]) <= 0.4
        assert headers["x-ratelimit-remaining-requests"] == "99"  # a 429 spends nothing
        time.sleep(float(headers["Retry-After"]) + 0.05)
        status, headers, _ = embed_openai(server, ["a b"])
        assert status == 200 and headers["x-ratelimit-remaining-tokens"] == "3"


def test_rpm_headers_count_down_and_reset_when_the_window_is_empty_again() -> None:
    with FakeServer(dim=4, rpm=3) as server:
        answers = []
        for _ in range(4):
            answers.append(embed_openai(server, ["x"]))
            time.sleep(0.25)
        assert [status for status, _, _ in answers] == [200, 200, 200, 429]
        remaining = [h["x-ratelimit-remaining-requests"] for _, h, _ in answers]
        assert remaining == ["2", "1", "0", "0"]
        resets = [go_seconds(h["x-ratelimit-reset-requests"]) for _, h, _ in answers]
        # the budget is whole again when the newest request leaves the window (OpenAI's
        # meaning of the reset); a 429 is told to come back when the oldest one leaves
        assert all(59.5 < reset <= 60 for reset in resets[:3])
        assert resets[3] < 60 - 0.1
        assert float(answers[3][1]["Retry-After"]) < resets[3] - 0.3
        assert answers[0][1]["x-ratelimit-limit-tokens"] == "10000000"
        error = json.loads(answers[3][2])["error"]["message"]
        assert "requests per min (RPM): Limit 3, Used 3, Requested 1" in error


def test_anthropic_token_and_request_headers() -> None:
    with FakeServer(rpm=5, tpm=100) as server:
        body = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "a b"}]}
        status, headers, raw = post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS)
        assert status == 200 and json.loads(raw)["usage"]["input_tokens"] == 2
        assert headers["anthropic-ratelimit-requests-limit"] == "5"
        assert headers["anthropic-ratelimit-requests-remaining"] == "4"
        for group in ("tokens", "input-tokens", "output-tokens"):
            assert headers[f"anthropic-ratelimit-{group}-limit"] == "100"
            assert headers[f"anthropic-ratelimit-{group}-remaining"] == "48"
            assert 58 < seconds_until(headers[f"anthropic-ratelimit-{group}-reset"]) <= 61
        assert 58 < seconds_until(headers["anthropic-ratelimit-requests-reset"]) <= 61
        status, headers, raw = post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS)
        assert status == 429 and float(headers["Retry-After"]) > 58
        assert headers["anthropic-ratelimit-tokens-remaining"] == "48"
        error = json.loads(raw)["error"]
        assert error["type"] == "rate_limit_error" and "100 tokens per minute" in error["message"]


def test_ietf_headers_replace_the_providers_on_every_family() -> None:
    with FakeServer(dim=4, rpm=5, ratelimit_headers="ietf") as server:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        answers = [
            post(server.url + "/embed", {"inputs": "x"}),
            post(server.url + "/embed", {"inputs": "x"}),
            embed_openai(server, ["x"]),
            post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS),
        ]
        assert [status for status, _, _ in answers] == [200] * 4
        remaining = [headers["RateLimit-Remaining"] for _, headers, _ in answers]
        assert remaining == ["4", "3", "4", "4"]  # one window per family
        for _, headers, _ in answers:
            assert headers["RateLimit-Limit"] == "5" and headers["RateLimit-Policy"] == "5;w=60"
            assert headers["RateLimit-Reset"] == "60"
            assert not any(
                name.lower().startswith(("x-ratelimit", "anthropic-")) for name in headers
            )
        assert "x-request-id" in answers[2][1] and "request-id" in answers[3][1]
        server.configure(ratelimit_headers="none")
        _, headers, _ = embed_openai(server, ["x"])
        assert not any("ratelimit" in name.lower() for name in headers)


def test_a_device_queue_serves_one_request_at_a_time_in_arrival_order() -> None:
    with FakeServer(device_slots=1, latency=0.1) as server:
        started = time.monotonic()
        answers = parallel_posts(server.url + "/embed", [{"inputs": [f"t{i}"]} for i in range(5)])
        assert [status for status, _ in answers] == [200] * 5
        assert time.monotonic() - started >= 0.45
        records = server.stats.requests
        ends = [r.t_end for r in records]
        assert all(end is not None for end in ends)
        assert ends == sorted(ends)  # in arrival order
        first = records[0].t_start
        assert ends[-1] - first >= 0.4 and ends[0] - first < 0.3
        assert server.stats.peak_in_flight == 5


def test_capacity_follows_its_schedule_from_the_first_request() -> None:
    with FakeServer(latency=0.3, capacity=4, capacity_schedule=["0.4:2"]) as server:
        bodies = [{"inputs": [f"t{i}"]} for i in range(4)]
        assert server.settings.capacity_schedule == ((0.4, 2),)
        started = time.monotonic()
        assert [s for s, _ in parallel_posts(server.url + "/embed", bodies)] == [200] * 4
        time.sleep(max(0.0, 0.6 - (time.monotonic() - started)))
        statuses = sorted(s for s, _ in parallel_posts(server.url + "/embed", bodies))
        assert statuses == [200, 200, 429, 429]
        server.reset()
        assert [s for s, _ in parallel_posts(server.url + "/embed", bodies)] == [200] * 4


def test_503_bursts_carry_retry_after() -> None:
    with FakeServer(dim=4, burst_every=0.6, burst_length=0.3, retry_after=0.2) as server:
        started = time.monotonic()

        def at(seconds: float) -> tuple[int, dict[str, str], bytes]:
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            return post(server.url + "/embed", {"inputs": "x"})

        assert at(0.0)[0] == 200
        status, headers, raw = at(0.75)
        assert status == 503 and headers["Retry-After"] == "0.2"
        assert json.loads(raw)["error_type"] == "Unhealthy"
        assert at(1.05)[0] == 200
        assert at(1.35)[0] == 503
        assert [r.status for r in server.stats.requests] == [200, 503, 200, 503]


def test_retry_after_none_sends_429s_without_the_header() -> None:
    with FakeServer(capacity=0, retry_after=None) as server:
        status, headers, _ = post(server.url + "/embed", {"inputs": "x"})
        assert status == 429 and "Retry-After" not in headers
        server.configure(capacity=None)
        server.random_faults(rate=1.0, kinds=("429",))
        status, headers, _ = post(server.url + "/embed", {"inputs": "x"})
        assert status == 429 and "Retry-After" not in headers


def test_a_server_starts_again_on_the_port_it_just_freed() -> None:
    async def hold_a_connection(url: str) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession()
        async with session.post(url, json={"inputs": "x"}) as answer:
            await answer.read()
        return session

    first = FakeServer(latency=0.0).start()
    port = first.port
    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(hold_a_connection(first.url + "/embed"))
    try:
        first.stop()
        with pytest.raises(urllib.error.URLError):
            post(f"http://127.0.0.1:{port}/embed", {"inputs": "x"})
        with FakeServer(port=port) as second:
            assert second.port == port and post(second.url + "/embed", {"inputs": "x"})[0] == 200
        first.start()
        assert first.port == port and post(first.url + "/embed", {"inputs": "x"})[0] == 200
    finally:
        first.stop()
        loop.run_until_complete(session.close())
        loop.close()


# --- quirks of real servers -----------------------------------------------------------------


def test_a_json_object_only_chat_server_refuses_json_schema() -> None:
    with FakeServer(chat_response_format="json_object") as server:
        url = server.url + "/v1/chat/completions"
        messages = [{"role": "user", "content": "the food was great"}]
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
        status, _, raw = post(url, {"model": "m", "messages": messages, "response_format": fmt})
        assert status == 500
        assert json.loads(raw) == {
            "error": {
                "code": 500,
                "message": 'response_format type must be one of "text" or "json_object", '
                "but got: json_schema",
                "type": "server_error",
            }
        }
        answer = chat(
            server, "the food was great", response_format={"type": "json_object", "schema": SCHEMA}
        )
        jsonschema.validate(json.loads(answer["choices"][0]["message"]["content"]), SCHEMA)
        assert chat(server, "hi")["choices"][0]["message"]["content"] == "echo: hi"
        assert server.stats.rows_per_request == [1, 1, 1]


def test_a_string_only_system_is_refused_as_blocks() -> None:
    with FakeServer(anthropic_system="string") as server:
        blocks = [{"type": "text", "text": "label reviews"}]
        body = {
            "model": "claude-x",
            "max_tokens": 5,
            "system": blocks,
            "messages": [{"role": "user", "content": "x"}],
        }
        status, _, raw = post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS)
        error = json.loads(raw)["error"]
        assert status == 500 and error["code"] == "500" and error["type"] is None
        assert error["message"].startswith("litellm.InternalServerError")
        assert message(server, "x", system="label reviews")["content"][0]["text"] == "echo: x"


def test_fastapi_error_bodies_on_hf_and_openai_routes() -> None:
    with FakeServer(dim=4, error_style="fastapi", max_client_batch_size=2) as server:
        status, _, raw = post(server.url + "/embed", {"text": "no inputs"})
        assert status == 422
        detail = json.loads(raw)["detail"]
        assert detail[0]["loc"] == ["body", "inputs"] and detail[0]["type"] == "value_error"
        status, _, raw = post(server.url + "/embed", {"inputs": ["a", "b", "c"]})
        assert status == 413
        assert json.loads(raw) == {"detail": "batch size 3 > maximum allowed batch size 2"}
        server.script(Fault.status(503))
        status, _, raw = embed_openai(server, ["x"])
        assert status == 503 and json.loads(raw) == {"detail": "Service Unavailable"}
        server.poison("BAD", status=422, message="text is bad")
        status, _, raw = embed_openai(server, ["BAD"])
        assert json.loads(raw)["detail"][0] == {
            "loc": ["body", "input"],
            "msg": "text is bad",
            "type": "value_error",
        }
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "BAD"}]}
        _, _, raw = post(server.url + "/v1/messages", body, ANTHROPIC_HEADERS)
        assert json.loads(raw)["type"] == "error"  # Anthropic keeps its own


def test_ignored_dimensions_answer_the_full_vector() -> None:
    with FakeServer(dim=16, ignore_dimensions=True) as server:
        for dimensions in (4, 999):
            body = {"model": "m", "input": ["three"], "dimensions": dimensions}
            vector = post_json(server.url + "/v1/embeddings", body)["data"][0]["embedding"]
            assert np.allclose(vector, fake_embedding("three", 16))


def test_dimensions_above_the_maximum_fail_every_request() -> None:
    with FakeServer(dim=16, max_dimensions=8) as server:
        for texts in (["a"], ["b", "c", "d"]):
            body = {"model": "m", "input": texts, "dimensions": 12}
            status, _, raw = post(server.url + "/v1/embeddings", body)
            assert status == 400
            assert "MatryoshkaDimError" in json.loads(raw)["error"]["message"]
            assert "Select between 1 and 8" in json.loads(raw)["error"]["message"]
        body = {"model": "m", "input": ["a"], "dimensions": 8}
        assert len(post_json(server.url + "/v1/embeddings", body)["data"][0]["embedding"]) == 8
        assert server.stats.rows_per_request == [1, 3, 1]


def test_new_setting_flags_and_their_validation() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--capacity-schedule", "5:10, 10:2", "--retry-after", "none", "--tpm", "100"]
    argv += ["--device-slots", "2", "--burst-every", "3", "--ratelimit-headers", "ietf"]
    settings = Settings(**settings_from_args(parser.parse_args(argv)))
    assert settings.capacity_schedule == ((5.0, 10), (10.0, 2)) and settings.retry_after is None
    assert (settings.tpm, settings.device_slots, settings.burst_every) == (100, 2, 3.0)
    assert settings.ratelimit_headers == "ietf" and settings.capacity is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--error-style", "django"])
    bad: list[dict[str, Any]] = [
        {"tpm": 0},
        {"device_slots": 0},
        {"rate_window": 0},
        {"burst_every": 1.0, "burst_length": 1.0},
        {"capacity_schedule": ["soon"]},
        {"capacity_schedule": [(1, -1)]},
        {"max_dimensions": 0},
    ]
    for changes in bad:
        with pytest.raises(ValueError):
            Settings(**changes)
    assert Settings(capacity_schedule=[[2, 1], [1, 3]]).capacity_schedule == ((1.0, 3), (2.0, 1))


def test_a_bucket_refills_steadily_and_says_when_it_is_full() -> None:
    with FakeServer(dim=4, rpm=4, rate_window=1.0, rate_model="bucket") as server:
        answers = [embed_openai(server, ["x"]) for _ in range(5)]
        assert [status for status, _, _ in answers] == [200, 200, 200, 200, 429]
        resets = [go_seconds(h["x-ratelimit-reset-requests"]) for _, h, _ in answers[:4]]
        assert resets == sorted(resets) and 0.9 < resets[3] <= 1.0  # empty: full in 1 s
        time.sleep(0.3)  # a quarter of the window: one request back
        status, headers, _ = embed_openai(server, ["x"])
        assert status == 200 and headers["x-ratelimit-remaining-requests"] == "0"
