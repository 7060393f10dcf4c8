"""Work not done twice: identical texts sent once per run, and the response cache."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import endpointr as er
from endpointr.io.cache import CACHE_FILE
from endpointr.testing import FakeServer, Fault, fake_embedding

SENTENCES = [f"sentence number {i} about a product" for i in range(10)]


def seed_frame(rows: int = 1000) -> pd.DataFrame:
    """The seed's frame: ``rows`` rows cycling through 10 distinct sentences."""
    return pd.DataFrame({"id": range(rows), "text": [SENTENCES[i % 10] for i in range(rows)]})


def embed_df(server: FakeServer, df: object, **kw: object) -> object:
    kw.setdefault("output_dir", None)
    kw.setdefault("progress", False)
    return er.hf_embed_df(
        df, text_var="text", id_var="id", endpoint_url=server.url + "/embed", key_name=None, **kw
    )


def check_vectors(out: pd.DataFrame, texts: object) -> None:
    """Every row has the vector of its own text."""
    for text, vector in zip(list(texts), out["embedding"], strict=True):
        np.testing.assert_allclose(vector, fake_embedding(text, 384), rtol=1e-6)


# --- dedupe ---------------------------------------------------------------------------------


def test_the_seeds_frame_sends_ten_texts(server: FakeServer) -> None:
    df = seed_frame().sample(frac=1, random_state=3)
    out = embed_df(server, df, batch_size=8, concurrent_requests=4)
    seen = server.stats
    assert sum(seen.texts_seen.values()) == 10
    assert set(seen.texts_seen) == set(SENTENCES)
    assert out["id"].tolist() == df["id"].tolist()  # every row, its own id, input order
    assert not out[".error"].any()
    check_vectors(out, df["text"])


def test_no_dedupe_sends_every_row(server: FakeServer) -> None:
    embed_df(server, seed_frame(100), batch_size=8, concurrent_requests=4, dedupe=False)
    assert sum(server.stats.texts_seen.values()) == 100


@pytest.mark.parametrize("kind", ["polars", "arrow", "file", "list"])
def test_every_input_kind_is_deduplicated(kind: str, tmp_path: Path, server: FakeServer) -> None:
    df = seed_frame(300)
    if kind == "list":
        out = er.hf_embed_batch(
            list(df["text"]), endpoint_url=server.url + "/embed", key_name=None, progress=False
        )
        assert out["text"].tolist() == df["text"].tolist()
    else:
        data: object = {"polars": pl.from_pandas(df), "arrow": pa.Table.from_pandas(df)}.get(kind)
        if kind == "file":
            data = tmp_path / "in.parquet"
            df.to_parquet(data)
        out = embed_df(server, data, batch_size=4)
        got = out.to_pandas() if hasattr(out, "to_pandas") else out
        assert list(got["id"]) == list(df["id"])
    assert sum(server.stats.texts_seen.values()) == 10


def test_a_file_keeps_answers_for_the_most_recent_texts(tmp_path: Path) -> None:
    """A file streams: an answer is kept for the 4,096 most recent distinct texts, so a
    text that comes back later than that is sent again, and answered right."""
    texts = [f"text {i}" for i in range(5000)] + ["text 1", "text 4999"]
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(path, index=False)
    with FakeServer() as server:
        out = embed_df(server, path, batch_size=50, concurrent_requests=2)
        seen = server.stats.texts_seen
    assert seen["text 4999"] == 1  # recent: a copy
    assert seen["text 1"] == 2  # long gone: sent again
    assert out["id"].tolist() == list(range(len(texts)))
    check_vectors(out, texts)


def test_error_rows_fan_out_with_their_own_ids(server: FakeServer) -> None:
    server.poison("number 3", status=422, message="input rejected")
    df = seed_frame(100)
    out = embed_df(server, df, batch_size=1, concurrent_requests=4)
    bad = out[out[".error"]]
    assert bad["id"].tolist() == [i for i in range(100) if i % 10 == 3]
    assert set(bad[".error_msg"]) == {"input rejected"}
    assert set(bad[".status"]) == {422}
    assert server.stats.texts_seen[SENTENCES[3]] == 1  # refused once, not ten times
    assert not out[~out[".error"]]["embedding"].isna().any()


def test_rows_waiting_on_a_retried_text_get_its_final_answer(server: FakeServer) -> None:
    server.script(Fault.status(503), Fault.status(503))
    df = seed_frame(40)
    out = embed_df(server, df, batch_size=10, concurrent_requests=2, backoff=er.Backoff(0.01))
    assert not out[".error"].any()
    assert out["id"].tolist() == list(range(40))
    check_vectors(out, df["text"])


def test_missing_texts_stay_error_rows_of_their_own(server: FakeServer) -> None:
    df = pd.DataFrame({"id": range(6), "text": ["a b", None, "a b", "", "a b", None]})
    out = embed_df(server, df, batch_size=2)
    assert out[".error"].tolist() == [False, True, False, True, False, True]
    assert server.stats.texts_seen == {"a b": 1}


def test_values_that_are_not_texts_are_refused_one_by_one(server: FakeServer) -> None:
    df = pd.DataFrame({"id": range(4), "text": ["a b", ["a", "list"], "a b", {"a": 1}]})
    out = embed_df(server, df)
    assert out[".error"].tolist() == [False, True, False, True]
    assert out[".error_msg"][1] == "text is not a string (list); nothing was sent"
    assert server.stats.texts_seen == {"a b": 1}


def test_dedupe_is_counted_in_the_summary_and_the_manifest(
    tmp_path: Path, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    embed_df(server, seed_frame(100), output_dir=tmp_path / "out", progress=True)
    assert "90 rows shared the answer of an identical text" in capsys.readouterr().err
    meta = json.loads((tmp_path / "out" / "_metadata.json").read_text())
    assert meta["this_run"]["deduplicated"] == 90
    assert meta["this_run"]["requests"] == 2  # 10 texts at the default batch size of 8
    assert meta["dedupe"] is True


def test_resume_with_dedupe_sends_only_what_is_missing(tmp_path: Path, server: FakeServer) -> None:
    df = seed_frame(200)
    embed_df(server, df.iloc[:50], output_dir=tmp_path / "out")
    server.reset()
    out = embed_df(server, df, output_dir=tmp_path / "out")
    # the rows 50..199 repeat the same 10 texts: each is sent once more, no more
    assert sum(server.stats.texts_seen.values()) == 10
    assert out["id"].tolist() == list(range(200))
    check_vectors(out, df["text"])


# --- the response cache ------------------------------------------------------------------


def test_a_second_run_sends_only_the_new_texts(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = pd.DataFrame({"id": range(50), "text": [f"old text {i}" for i in range(50)]})
    second = pd.DataFrame(
        {
            "id": range(80),
            "text": [f"old text {i}" for i in range(50)] + [f"new {i}" for i in range(30)],
        }
    )
    with FakeServer() as server:
        embed_df(server, first, cache_dir=cache)
        assert sum(server.stats.texts_seen.values()) == 50
        server.reset()
        out = embed_df(server, second, cache_dir=cache, output_dir=tmp_path / "out")
        seen = server.stats.texts_seen
    assert set(seen) == {f"new {i}" for i in range(30)}
    check_vectors(out, second["text"])
    assert out["embedding"].iloc[0].dtype == np.float32
    cached = out.iloc[:50]
    assert (cached[".attempts"] == 0).all() and (cached[".status"] == 200).all()
    assert (out.iloc[50:][".attempts"] == 1).all()
    meta = json.loads((tmp_path / "out" / "_metadata.json").read_text())
    assert meta["this_run"]["cache_hits"] == 50 and meta["this_run"]["cache_misses"] == 30


def test_the_cache_keys_on_the_request_settings(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    df = seed_frame(10)
    with FakeServer() as server:
        embed_df(server, df, cache_dir=cache)
        server.reset()
        embed_df(server, df, cache_dir=cache, parameters={"normalize": False})
        assert sum(server.stats.texts_seen.values()) == 10  # other settings: a miss
        server.reset()
        embed_df(server, df, cache_dir=cache)
        assert sum(server.stats.texts_seen.values()) == 0
    with FakeServer() as other:  # another URL is another endpoint
        embed_df(other, df, cache_dir=cache)
        assert sum(other.stats.texts_seen.values()) == 10


def test_error_rows_are_not_cached(tmp_path: Path, server: FakeServer) -> None:
    server.poison("number 3", status=422)
    embed_df(server, seed_frame(10), batch_size=1, cache_dir=tmp_path / "c")
    server.reset()
    out = embed_df(server, seed_frame(10), batch_size=1, cache_dir=tmp_path / "c")
    assert server.stats.texts_seen == {SENTENCES[3]: 1}
    assert out[".error"].sum() == 0


def test_the_cache_serves_chat_completions(tmp_path: Path, server: FakeServer) -> None:
    df = pd.DataFrame({"id": range(4), "text": ["one", "two", "one", "three"]})
    call = dict(
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        output_dir=None,
        progress=False,
        cache_dir=tmp_path / "c",
    )
    first = er.oai_complete_df(df, **call)
    assert server.stats.request_count == 3
    second = er.oai_complete_df(df, **call)
    assert server.stats.request_count == 3  # all from the cache
    pd.testing.assert_series_equal(first["content"], second["content"])
    pd.testing.assert_series_equal(first["finish_reason"], second["finish_reason"])


def _run_with_cache(url: str, cache: str, start: int, queue: multiprocessing.Queue) -> None:
    df = pd.DataFrame(
        {"id": range(400), "text": [f"shared {i}" for i in range(start, start + 400)]}
    )
    out = er.hf_embed_df(
        df,
        text_var="text",
        id_var="id",
        endpoint_url=url,
        key_name=None,
        output_dir=None,
        progress=False,
        batch_size=4,
        cache_dir=cache,
    )
    queue.put(int(out[".error"].sum()))


def test_two_runs_share_one_cache_at_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeServer(latency=0.005) as server:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        runs = [
            context.Process(
                target=_run_with_cache, args=(server.url + "/embed", str(cache), s, queue)
            )
            for s in (0, 200)
        ]
        for run in runs:
            run.start()
        for run in runs:
            run.join(60)
        assert [run.exitcode for run in runs] == [0, 0]
        assert [queue.get(timeout=5), queue.get(timeout=5)] == [0, 0]
        server.reset()
        df = pd.DataFrame({"id": range(600), "text": [f"shared {i}" for i in range(600)]})
        out = embed_df(server, df, cache_dir=cache)
        assert server.stats.request_count == 0  # both runs' answers are in the cache
    check_vectors(out, df["text"])
    with sqlite3.connect(cache / CACHE_FILE) as db:
        assert db.execute("SELECT count(*) FROM endpointr_answers").fetchone() == (600,)


def test_many_runs_may_make_a_new_cache_at_once(tmp_path: Path) -> None:
    """The first runs on a new cache race to make it; none may read a lock as damage."""
    import threading

    from endpointr.io.cache import ResponseCache

    settings = {"endpoint": "hf.embed"}
    done: list[int] = []
    failed: list[BaseException] = []
    start = threading.Barrier(8)

    def open_one(n: int) -> None:
        start.wait()
        try:
            cache = ResponseCache.open(tmp_path / "new", settings)
            cache.put(cache.key(f"text {n}"), b"answer", 200)
            cache.close()
            done.append(n)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failed and sorted(done) == list(range(8))
    cache = ResponseCache.open(tmp_path / "new", settings)
    try:
        assert len(cache) == 8
        assert cache.get(cache.key("text 3")) == (b"answer", 200)
    finally:
        cache.close()


def test_a_corrupt_cache_is_a_clear_error_before_any_request(
    tmp_path: Path, server: FakeServer
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / CACHE_FILE).write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(er.CacheError, match="corrupt or not an endpointr cache"):
        embed_df(server, seed_frame(10), cache_dir=cache, output_dir=tmp_path / "out")
    assert server.stats.request_count == 0
    assert not (tmp_path / "out").exists()


def test_a_foreign_sqlite_file_is_not_read_as_a_cache(tmp_path: Path, server: FakeServer) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    with sqlite3.connect(cache / CACHE_FILE) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    with pytest.raises(er.CacheError, match="not an endpointr cache"):
        embed_df(server, seed_frame(10), cache_dir=cache)
    assert server.stats.request_count == 0


def test_a_tampered_entry_is_an_error_never_an_answer(tmp_path: Path, server: FakeServer) -> None:
    cache = tmp_path / "cache"
    embed_df(server, seed_frame(10), cache_dir=cache)
    with sqlite3.connect(cache / CACHE_FILE) as db:
        (answer,) = db.execute("SELECT answer FROM endpointr_answers LIMIT 1").fetchone()
        db.execute("UPDATE endpointr_answers SET answer = ?", (bytes(len(answer)),))
    with pytest.raises(er.CacheError, match="corrupt"):
        embed_df(server, seed_frame(10), cache_dir=cache)


def test_cache_dir_from_the_command_line(tmp_path: Path, server: FakeServer) -> None:
    from endpointr.cli import main

    path = tmp_path / "in.csv"
    seed_frame(30).to_csv(path, index=False)
    argv = [
        "embed",
        str(path),
        "--text-col",
        "text",
        "--id-col",
        "id",
        "--no-key",
        "--no-progress",
        "--endpoint-url",
        server.url + "/embed",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert main([*argv, "--output-dir", str(tmp_path / "a")]) == 0
    assert sum(server.stats.texts_seen.values()) == 10
    server.reset()
    assert main([*argv, "--output-dir", str(tmp_path / "b"), "--no-dedupe"]) == 0
    assert server.stats.request_count == 0
    meta = json.loads((tmp_path / "b" / "_metadata.json").read_text())
    assert meta["this_run"]["cache_hits"] == 30 and meta["dedupe"] is False


def test_a_stream_keeps_the_most_recent_answers_only() -> None:
    """Row by row (a file), an answer is kept for later rows among the ``keep`` most
    recent distinct texts; rows waiting on a text in flight get its answer, error or not."""
    from endpointr.engine.reuse import WAIT, Reuse
    from endpointr.engine.runner import RunStats
    from endpointr.providers.hf import HFEmbed
    from endpointr.types import Result

    endpoint = HFEmbed.create(endpoint_url="http://127.0.0.1:1/embed")
    reuse = Reuse(endpoint, RunStats(), keep=2)
    assert reuse.take(0, "a") is None  # sent
    assert reuse.take(1, "b") is None
    assert reuse.take(2, "a") is WAIT
    settled = reuse.settle([Result(0, value=[1.0]), Result(1, error=True, error_msg="no")])
    assert [(r.id, r.value, r.error) for r in settled] == [
        (0, [1.0], False),
        (1, None, True),
        (2, [1.0], False),
    ]
    copy = reuse.take(3, "b")
    assert isinstance(copy, Result) and copy.id == 3 and copy.error_msg == "no"
    assert reuse.take(4, "c") is None
    reuse.settle([Result(4, value=[3.0])])  # "a" is now the oldest of three: let go
    assert reuse.take(5, "a") is None
    assert not reuse._waiting.get("c") and reuse.stats.copies == 2


def test_copies_are_committed_with_their_original(tmp_path: Path, server: FakeServer) -> None:
    """Each chunk holds its sent rows and every row that copies them: every id once."""
    import pyarrow.parquet as pq

    df = seed_frame(100).sample(frac=1, random_state=7)
    embed_df(server, df, output_dir=tmp_path / "out", chunk_size=3, batch_size=2)
    chunks = sorted((tmp_path / "out").glob("chunk-*.parquet"))
    assert len(chunks) == 4  # 10 texts sent, 3 a chunk: 3 + 3 + 3 + 1
    ids = [i for c in chunks for i in pq.read_table(c, columns=["id"]).column(0).to_pylist()]
    assert sorted(ids) == list(range(100))
    for chunk in chunks:  # a chunk's copies have the texts of the rows it sent
        got = pq.read_table(chunk).to_pandas()
        texts = df.set_index("id").loc[got["id"], "text"]
        check_vectors(got, texts)
        assert texts.nunique() == len(got) // 10
    back = er.read_results(tmp_path / "out", df=df)
    assert back["id"].tolist() == df["id"].tolist()
