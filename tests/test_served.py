"""What the answers say they were made with: a server that ignores ``dimensions`` or the
``model`` asked for is noticed once and recorded; token usage is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import endpointr as er
from cases import FAST
from endpointr.testing import FakeServer, count_tokens


def _embed(server: FakeServer, out: Path, **kw: object) -> pd.DataFrame:
    df = pd.DataFrame({"id": range(40), "text": [f"text {i}" for i in range(40)]})
    return er.oai_embed_df(
        df,
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        batch_size=8,
        output_dir=out,
        progress=False,
        backoff=FAST,
        **kw,
    )


def test_ignored_dimensions_are_said_once_and_the_real_size_recorded(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.configure(ignore_dimensions=True)
    out = _embed(server, tmp_path / "out", dimensions=128)
    assert len(out["embedding"].iloc[0]) == 384
    err = capsys.readouterr().err
    assert err.count("dimensions=384 where dimensions=128 was asked") == 1
    manifest = json.loads((tmp_path / "out" / "_metadata.json").read_text())
    assert manifest["dimensions"] == 128 and manifest["served"]["dimensions"] == 384
    assert all(r.json["dimensions"] == 128 for r in server.stats.requests)


def test_a_model_the_server_swaps_is_said_once_and_a_dated_name_is_not(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.configure(served_model="multilingual-e5-small-q4")
    _embed(server, tmp_path / "a", model="e5")
    assert capsys.readouterr().err.count("model='multilingual-e5-small-q4' where") == 1
    manifest = json.loads((tmp_path / "a" / "_metadata.json").read_text())
    assert manifest["served"]["model"] == "multilingual-e5-small-q4"
    server.configure(served_model="text-embedding-3-small-2024-01-25")
    _embed(server, tmp_path / "b", model="text-embedding-3-small")
    assert "ignores the setting" not in capsys.readouterr().err


def test_embedding_usage_is_kept_in_the_manifest_and_the_summary(
    server: FakeServer, tmp_path: Path
) -> None:
    _embed(server, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "_metadata.json").read_text())
    sent = sum(count_tokens(t) for r in server.stats.requests for t in r.json["input"])
    assert sent > 0 and manifest["this_run"]["input_tokens"] == sent
    assert manifest["this_run"]["output_tokens"] == 0


def test_status_is_nullable_int32_with_or_without_rows_lacking_one(
    server: FakeServer, tmp_path: Path
) -> None:
    assert str(_embed(server, tmp_path / "a")[".status"].dtype) == "Int32"
    df = pd.DataFrame({"id": [1, 2], "text": ["fine", ""]})
    out = er.oai_embed_df(
        df,
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        output_dir=None,
        progress=False,
    )
    assert str(out[".status"].dtype) == "Int32" and out[".status"].isna().sum() == 1


def test_an_empty_key_name_says_to_pass_none(server: FakeServer) -> None:
    with pytest.raises(er.ConfigError, match="key_name=None"):
        er.oai_embed_text("hi", base_url=server.url + "/v1", key_name="")
    assert server.stats.request_count == 0


def test_token_embeddings_stop_the_run_after_a_few_requests(
    server: FakeServer, tmp_path: Path
) -> None:
    server.configure(token_embeddings=True)
    with pytest.raises(er.RefusedError, match="one vector per token"):
        _embed(server, tmp_path / "out", encoding_format="float")
    # not retried: no text sent twice (before, each batch of 8 went 5 times)
    assert max(server.stats.texts_seen.values()) == 1
