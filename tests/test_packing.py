"""Requests packed to the server's limits: inputs and tokens per request, tokens per input."""

from __future__ import annotations

import pandas as pd
import pytest

import endpointr as er
from endpointr.engine import tokens
from endpointr.testing import FakeServer


def test_openai_requests_hold_at_most_2048_inputs(server: FakeServer) -> None:
    texts = [f"short text {i}" for i in range(5000)]
    out = er.oai_embed_batch(
        texts, base_url=server.url + "/v1", key_name=None, batch_size=4096, concurrent_requests=2
    )
    assert max(server.stats.rows_per_request) == 2048
    assert sum(server.stats.rows_per_request) == 5000
    assert not out[".error"].any()


def test_openai_requests_stay_under_300k_tokens(server: FakeServer) -> None:
    # ~25,000 tokens each (4 characters a token without the model's tokenizer): 12 a request
    texts = [f"{i} " + "word " * 20_000 for i in range(30)]
    df = pd.DataFrame({"id": range(30), "text": texts})
    out = er.oai_embed_df(
        df,
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        batch_size=100,
        output_dir=None,
        progress=False,
    )
    assert not out[".error"].any()
    sizes = server.stats.rows_per_request
    assert max(sizes) == 11 and sum(sizes) == 30  # 11 x 25,001 fits in 300,000; 12 would not
    for request in server.stats.requests:
        assert sum(len(t) for t in request.json["input"]) // 4 <= 300_000


def test_tei_requests_fit_max_batch_tokens_from_info() -> None:
    with FakeServer(max_client_batch_size=16, max_batch_tokens=100) as server:
        texts = [f"{i:03d} " + "x" * 36 for i in range(40)]  # 40 characters: 10 tokens each
        df = pd.DataFrame({"id": range(40), "text": texts})
        out = er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=server.url,
            key_name=None,
            batch_size=16,
            output_dir=None,
            progress=False,
        )
        sizes = server.stats.rows_per_request
    assert not out[".error"].any()
    assert max(sizes) == 10 and sum(sizes) == 40


def test_a_text_longer_than_any_input_is_an_error_row_that_says_so(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    """With the model's own tokenizer the count is exact: a text over OpenAI's 8,192
    tokens per input is never sent. (Here a tokenizer of words stands in for it.)"""
    monkeypatch.setattr(tokens, "_encoder", lambda model: str.split)
    monkeypatch.setattr(
        er.providers.openai.OpenAIEmbed,
        "packing",
        lambda self: er.providers.base.Packing(2048, 300_000, 8192),
    )
    df = pd.DataFrame({"id": [1, 2, 3], "text": ["fine", "word " * 9000, "also fine"]})
    out = er.oai_embed_df(
        df,
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        output_dir=None,
        progress=False,
    )
    assert out[".error"].tolist() == [False, True, False]
    assert out[".error_msg"][1] == (
        "text has 9,000 tokens, more than the 8,192 the model takes per input; "
        "nothing was sent (shorten it)"
    )
    assert server.stats.texts_seen == {"fine": 1, "also fine": 1}
