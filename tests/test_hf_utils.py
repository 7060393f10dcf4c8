"""Hugging Face endpoint utilities (/info, model max length, endpoint check, batch size fit)."""

from __future__ import annotations

import asyncio
import socket

import pandas as pd
import pytest

import endpointr as er
from endpointr.engine.probe import fit_batch_size, resolve_batch_size
from endpointr.providers.hf import info_url
from endpointr.testing import FakeServer, Fault


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("http://h:1", "http://h:1/info"),
        ("http://h:1/", "http://h:1/info"),
        ("http://h:1/embed", "http://h:1/info"),
        ("http://h:1/x/predict/", "http://h:1/x/info"),
        ("https://h/classify?a=1", "https://h/info?a=1"),
        ("https://h/rerank", "https://h/info"),
        ("https://h/custom", "https://h/custom/info"),
    ],
)
def test_info_url_strips_a_route(url: str, want: str) -> None:
    assert info_url(url) == want


@pytest.mark.parametrize("route", ["", "/embed", "/predict", "/classify"])
def test_get_endpoint_info(server: FakeServer, route: str) -> None:
    info = er.hf_get_endpoint_info(server.url + route, key_name=None)
    assert info["max_client_batch_size"] == 32 and info["model_id"] == "fake/embedder"
    assert info["max_input_length"] == 512


def test_endpoint_info_error_carries_the_status(server: FakeServer) -> None:
    with pytest.raises(er.ClientError, match="HTTP 404") as caught:
        er.hf_get_endpoint_info(server.url + "/not-tei/embed", key_name=None)
    assert caught.value.status == 404 and "/not-tei/info" in str(caught.value)


def test_endpoint_info_async_twin_and_missing_key(server: FakeServer) -> None:
    info = asyncio.run(er.ahf_get_endpoint_info(server.url, key_name=None))
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    with pytest.raises(er.MissingAPIKeyError, match="HF_API_KEY"):
        er.hf_get_endpoint_info(server.url)


def test_model_max_length_from_the_tokenizer_config(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert er.hf_get_model_max_length("org/model", key_name=None, endpoint_url=server.url) == 512
    monkeypatch.setenv("HF_API_KEY", "hf_secret")
    server.configure(max_input_length=128)
    assert er.hf_get_model_max_length("acme/tiny-bert", endpoint_url=server.url) == 128
    seen = server.stats.requests
    assert [r.path for r in seen] == [
        "/org/model/resolve/main/tokenizer_config.json",
        "/acme/tiny-bert/resolve/main/tokenizer_config.json",
    ]
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer hf_secret"


def test_model_max_length_errors(server: FakeServer) -> None:
    server.script(Fault.status(401, body={"error": "Access to model acme/gated is restricted"}))
    with pytest.raises(er.ClientError, match="restricted"):
        er.hf_get_model_max_length("acme/gated", key_name=None, endpoint_url=server.url)
    with pytest.raises(er.ConfigError, match="model_name"):
        er.hf_get_model_max_length("../etc", key_name=None, endpoint_url=server.url)


def test_validate_endpoint(server: FakeServer) -> None:
    assert er.validate_hf_endpoint(server.url + "/embed", key_name=None) is True
    assert er.validate_hf_endpoint(server.url + "/predict", key_name=None) is True
    assert [r.json for r in server.stats.requests] == [{"inputs": "endpointr check"}] * 2


def test_validate_endpoint_names_the_redacted_url_and_the_status(server: FakeServer) -> None:
    server.script(Fault.status(401, body={"error": "Authorization header is invalid"}))
    url = server.url.replace("http://", "http://user:pw@") + "/embed"
    with pytest.raises(er.ClientError) as caught:
        er.validate_hf_endpoint(url, key_name=None)
    message = str(caught.value)
    assert "HTTP 401: Authorization header is invalid" in message
    assert "***@127.0.0.1" in message and "pw" not in message


def test_validate_endpoint_that_cannot_be_reached() -> None:
    with pytest.raises(er.TransportError, match="cannot reach"):
        er.validate_hf_endpoint(f"http://127.0.0.1:{free_port()}/embed", key_name=None, timeout=2)


def test_fit_batch_size(capsys: pytest.CaptureFixture[str]) -> None:
    info = {"max_client_batch_size": 16}
    assert fit_batch_size(8, info) == 8 and fit_batch_size(8, None) == 8
    assert capsys.readouterr().err == ""
    assert fit_batch_size(64, info) == 16
    assert fit_batch_size("auto", info) == 16
    assert capsys.readouterr().err == (
        "endpointr: batch_size 64 > the server's max_client_batch_size 16; using 16\n"
    )
    assert fit_batch_size("auto", {"max_client_batch_size": None}) == 8
    assert "no /info" in capsys.readouterr().err
    with pytest.raises(er.ConfigError, match="batch_size must be >= 1"):
        fit_batch_size(0, info)


def test_auto_batch_size_without_info_falls_back_to_8(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    size = asyncio.run(resolve_batch_size(server.url + "/not-tei/embed", "auto", None))
    assert size == 8
    assert capsys.readouterr().err.count("\n") == 1
    dead = f"http://127.0.0.1:{free_port()}/embed"
    assert asyncio.run(resolve_batch_size(dead, 50, None)) == 50


def test_embeddings_are_capped_too(capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.DataFrame({"id": range(9), "text": [f"t {i}" for i in range(9)]})
    with FakeServer(max_client_batch_size=4) as server:
        out = er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=server.url + "/embed",
            key_name=None,
            batch_size=100,
            output_dir=None,
            progress=False,
        )
        assert max(server.stats.rows_per_request) == 4 and not out[".error"].any()
        er.hf_embed_batch(
            ["a", "b", "c"], endpoint_url=server.url, key_name=None, batch_size="auto"
        )
        assert server.stats.rows_per_request[-1] == 3
    assert "batch_size 100 > the server's max_client_batch_size 4; using 4" in (
        capsys.readouterr().err
    )


def test_the_key_stays_out_of_notices_and_errors(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_API_KEY", "hf_topsecret")
    server.configure(max_client_batch_size=2, api_key="hf_topsecret")
    er.hf_classify_batch(["a", "b", "c"], endpoint_url=server.url + "/classify", batch_size=9)
    assert all(r.headers["authorization"] == "Bearer hf_topsecret" for r in server.stats.requests)
    assert sorted(server.stats.rows_per_request) == [1, 2]
    server.script(Fault.status(403, body={"error": "forbidden"}))
    with pytest.raises(er.ClientError) as caught:
        er.validate_hf_endpoint(server.url + "/embed")
    assert "hf_topsecret" not in str(caught.value) + capsys.readouterr().err
