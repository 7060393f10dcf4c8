"""Flow control against the fake server: pacing by the server's rate-limit headers,
tokens budgets, timeouts at a queueing server, settings the server refuses, and the
forms of structured output and system prompt some servers do not take. Assertions are
on what the server saw (requests, statuses, bodies), never on how fast a run went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import endpointr as er
from cases import FAST
from endpointr.testing import FakeServer

SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string"}},
    "required": ["sentiment"],
    "additionalProperties": False,
}


def _statuses(server: FakeServer, path: str | None = None) -> list[int | None]:
    return [r.status for r in server.stats.requests if path is None or r.path == path]


def _texts(n: int, words: int = 3) -> list[str]:
    return [" ".join(f"w{i}x{j}" for j in range(words)) for i in range(n)]


def test_openai_rate_limit_headers_pace_the_run_before_any_429(server: FakeServer) -> None:
    server.configure(rpm=20, rate_window=1.0, rate_model="bucket")  # 20 requests a second
    out = er.oai_embed_batch(
        _texts(70),
        base_url=server.url + "/v1",
        key_name=None,
        batch_size=1,
        concurrent_requests=10,
        backoff=FAST,
    )
    assert not out[".error"].any()
    statuses = _statuses(server)
    assert statuses.count(200) == 70
    assert statuses.count(429) == 0


def test_anthropic_rate_limit_headers_pace_the_run(server: FakeServer) -> None:
    server.configure(rpm=10, rate_window=1.0, rate_model="bucket")
    out = er.ant_complete_batch(
        [f"prompt {i}" for i in range(30)],
        base_url=server.url,
        key_name=None,
        concurrent_requests=8,
        backoff=FAST,
    )
    assert not out[".error"].any()
    assert _statuses(server).count(429) == 0


def test_ietf_ratelimit_fields_pace_the_run(server: FakeServer) -> None:
    server.configure(rpm=20, rate_window=1.0, ratelimit_headers="ietf")
    out = er.hf_embed_batch(
        _texts(60),
        endpoint_url=server.url + "/embed",
        key_name=None,
        batch_size=1,
        concurrent_requests=10,
        backoff=FAST,
    )
    assert not out[".error"].any()
    assert _statuses(server).count(429) <= 1


def test_a_tokens_window_is_paced_by_its_token_headers(server: FakeServer) -> None:
    server.configure(tpm=300, rate_window=1.0, rate_model="bucket")  # each text is 10 tokens
    out = er.oai_embed_batch(
        _texts(80, words=10),
        base_url=server.url + "/v1",
        key_name=None,
        batch_size=2,
        concurrent_requests=10,
        backoff=FAST,
    )
    assert not out[".error"].any()
    statuses = _statuses(server)
    assert statuses.count(429) <= 1, statuses.count(429)


def test_tokens_per_minute_counts_before_sending_and_learns_from_usage(server: FakeServer) -> None:
    # ratelimit headers off: only the client's own budget paces; 2,400 tokens a minute
    # is 40 a second with a burst of 40, and each request is 10 words = 10 tokens
    server.configure(ratelimit_headers="none")
    out = er.oai_embed_batch(
        _texts(12, words=10),
        base_url=server.url + "/v1",
        key_name=None,
        batch_size=1,
        concurrent_requests=12,
        tokens_per_minute=2400,
    )
    assert not out[".error"].any()
    times = sorted(r.t_start for r in server.stats.requests)
    # 4 fit the burst; the other 8 need 80 tokens: at least ~2 s at 40 a second, less
    # what the usage correction (10 reported vs ~15 estimated) gives back
    assert times[-1] - times[0] >= 1.0


def test_timeouts_at_a_queueing_server_lower_the_limit_and_lose_no_row(
    server: FakeServer,
) -> None:
    server.configure(device_slots=1, latency=0.15)  # one request at a time, 0.15 s each
    out = er.oai_embed_batch(
        _texts(30),
        base_url=server.url + "/v1",
        key_name=None,
        batch_size=1,
        concurrent_requests=12,
        timeout=0.6,
        backoff=FAST,
    )
    assert not out[".error"].any()
    # without the decrease, 12 in flight at 0.15 s each time out all the time; with it
    # the work thrown away stays a fraction of the run
    assert len(server.stats.requests) < 30 * 2


def test_a_dimensions_the_server_refuses_stops_the_run_after_a_few_requests(
    server: FakeServer, tmp_path: Path
) -> None:
    server.configure(max_dimensions=384)
    df = pd.DataFrame({"id": range(400), "text": _texts(400)})
    with pytest.raises(er.RefusedError, match="Select between 1 and 384"):
        er.oai_embed_df(
            df,
            text_var="text",
            id_var="id",
            base_url=server.url + "/v1",
            key_name=None,
            dimensions=1000,
            batch_size=32,
            output_dir=tmp_path / "out",
            progress=False,
            backoff=FAST,
        )
    # splitting every request down to single rows would be ~800 requests
    assert len(server.stats.requests) < 40
    manifest = json.loads((tmp_path / "out" / "_metadata.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["failures"] == 0  # nothing marked failed: fix the setting, run again


def test_bad_rows_at_the_start_are_still_isolated_not_taken_for_a_refusal(
    server: FakeServer,
) -> None:
    texts = _texts(64)
    for i in (0, 9, 17, 30):
        texts[i] = "TOO-LONG " + texts[i]
    server.poison("TOO-LONG", status=413, message="input is too long")
    out = er.hf_embed_batch(
        texts, endpoint_url=server.url + "/embed", key_name=None, batch_size=8, backoff=FAST
    )
    assert out[".error"].sum() == 4
    assert set(out.index[out[".error"]]) == {0, 9, 17, 30}


def test_a_500_that_every_request_gets_stops_the_run_instead_of_burning_attempts(
    server: FakeServer,
) -> None:
    server.configure(chat_response_format="json_object")
    with pytest.raises(er.RefusedError, match="json_object"):
        er.oai_complete_batch(
            [f"review {i}" for i in range(40)],
            base_url=server.url + "/v1",
            key_name=None,
            schema=SCHEMA,
            structured_output="json_schema",  # no fallback asked for
            concurrent_requests=4,
            backoff=FAST,
        )
    assert len(server.stats.requests) <= 12  # not 40 rows x 5 attempts


def test_structured_output_falls_back_once_to_the_form_the_server_takes(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.configure(chat_response_format="json_object")
    df = pd.DataFrame({"id": range(20), "text": [f"review {i}" for i in range(20)]})
    out = er.oai_complete_df(
        df,
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        schema=SCHEMA,
        output_dir=tmp_path / "out",
        progress=False,
        concurrent_requests=4,
        backoff=FAST,
    )
    assert not out[".error"].any()
    assert out["sentiment"].notna().all()
    forms = [r.json["response_format"]["type"] for r in server.stats.requests]
    assert forms.count("json_schema") <= 4  # the ones in flight before the switch
    assert forms[-1] == "json_object"
    assert "schema" in server.stats.requests[-1].json["response_format"]
    manifest = json.loads((tmp_path / "out" / "_metadata.json").read_text())
    assert manifest["structured_output"] == "json_object"
    assert "json_object" in manifest["changes"][0]
    assert "asking for it as json_object" in capsys.readouterr().err


def test_prompt_form_puts_the_schema_in_the_system_prompt(server: FakeServer) -> None:
    out = er.oai_complete_batch(
        ["a review"],
        base_url=server.url + "/v1",
        key_name=None,
        schema=SCHEMA,
        system_prompt="Classify.",
        structured_output="prompt",
    )
    body = server.stats.requests[0].json
    assert "response_format" not in body
    system = body["messages"][0]["content"]
    assert system.startswith("Classify.") and '"sentiment"' in system
    assert out[".error"].sum() + out["sentiment"].notna().sum() == 1  # validated either way


def test_a_short_system_prompt_goes_as_a_string_a_long_one_as_a_cached_block(
    server: FakeServer,
) -> None:
    keywords: dict[str, Any] = {"base_url": server.url, "key_name": None}
    er.ant_complete_batch(["hi"], system_prompt="Be brief.", **keywords)
    er.ant_complete_batch(["hi"], system_prompt="Be brief. " * 600, **keywords)
    short, long = (r.json["system"] for r in server.stats.requests)
    assert short == "Be brief."
    assert isinstance(long, list) and long[0]["cache_control"] == {"type": "ephemeral"}


def test_a_proxy_that_refuses_system_blocks_gets_a_string(server: FakeServer) -> None:
    server.configure(anthropic_system="string")
    out = er.ant_complete_batch(
        [f"p {i}" for i in range(6)],
        base_url=server.url,
        key_name=None,
        system_prompt="Be brief. " * 600,
        concurrent_requests=2,
        backoff=FAST,
    )
    assert not out[".error"].any()
    assert isinstance(server.stats.requests[-1].json["system"], str)


def test_fastapi_validation_bodies_give_their_message(server: FakeServer) -> None:
    server.configure(error_style="fastapi")
    texts = ["fine", "BAD row", "fine too"]
    server.poison("BAD", status=422, message="input contains a forbidden word")
    out = er.hf_embed_batch(
        texts, endpoint_url=server.url + "/embed", key_name=None, batch_size=1, backoff=FAST
    )
    assert out[".error"].tolist() == [False, True, False]
    assert "forbidden word" in out.loc[1, ".error_msg"]
