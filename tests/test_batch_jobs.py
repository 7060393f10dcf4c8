"""Batch-API jobs end to end against the fake server's Files, Batch and Message Batches
routes: submit, re-attach after a killed process, failed and expired lines, resubmission,
splitting, custom ids, cancel, dry runs, the CLI and the low-level calls."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import endpointr as er
from endpointr.cli import main
from endpointr.errors import ConfigError, InputError, JobError, MissingAPIKeyError
from endpointr.testing import FakeServer

FAST = {
    "batch_validating": 0.02,
    "batch_in_progress": 0.1,
    "batch_finalizing": 0.02,
    "batch_cancelling": 0.05,
}
POLL = 0.02
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.fixture
def fake() -> Any:
    with FakeServer(**FAST) as server:
        yield server


def frame(n: int = 6, ids: list[Any] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ids if ids is not None else list(range(1, n + 1)),
            "text": [f"row {i}" for i in range(n)],
        }
    )


def oai(fake: FakeServer, df: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    return er.oai_batch_df(
        df,
        text_var="text",
        id_var="id",
        base_url=fake.url + "/v1",
        key_name=None,
        poll_interval=POLL,
        progress=False,
        **kw,
    )


def ant(fake: FakeServer, df: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    return er.ant_batch_df(
        df,
        text_var="text",
        id_var="id",
        base_url=fake.url,
        key_name=None,
        poll_interval=POLL,
        progress=False,
        **kw,
    )


def created(fake: FakeServer, provider: str) -> int:
    return fake.stats.batches.count("batches_created", provider)


def manifest(path: str | Path = "out") -> dict[str, Any]:
    return json.loads((Path(path) / "_metadata.json").read_text())


# --- the same rows and columns as the online run ---------------------------------------


def test_openai_completions_match_the_online_run(fake: FakeServer) -> None:
    df = frame(5)
    batch = oai(fake, df, system_prompt="be brief", max_tokens=50)
    online = er.oai_complete_df(
        df,
        text_var="text",
        id_var="id",
        base_url=fake.url + "/v1",
        key_name=None,
        system_prompt="be brief",
        max_tokens=50,
        output_dir=None,
        progress=False,
    )
    assert list(batch.columns) == list(online.columns)
    assert list(batch.dtypes) == list(online.dtypes)
    pd.testing.assert_series_equal(batch["id"], df["id"])
    pd.testing.assert_series_equal(batch["content"], online["content"])
    assert not batch[".error"].any()
    assert created(fake, "openai") == 1
    (job,) = fake.stats.batches.jobs
    assert job.endpoint == "/v1/chat/completions" and job.custom_ids == tuple("12345")


def test_openai_embeddings_match_the_online_vectors(fake: FakeServer) -> None:
    df = frame(4)
    batch = oai(fake, df, task="embed", dimensions=16)
    online = er.oai_embed_df(
        df,
        text_var="text",
        id_var="id",
        base_url=fake.url + "/v1",
        key_name=None,
        dimensions=16,
        output_dir=None,
        progress=False,
    )
    assert list(batch.columns) == list(online.columns)
    np.testing.assert_allclose(np.stack(batch["embedding"]), np.stack(online["embedding"]))


def test_anthropic_messages_match_the_online_run(fake: FakeServer) -> None:
    df = frame(4)
    schema = {
        "type": "object",
        "properties": {"topic": {"type": "string"}},
        "required": ["topic"],
        "additionalProperties": False,
    }
    batch = ant(fake, df, schema=schema)
    online = er.ant_complete_df(
        df,
        text_var="text",
        id_var="id",
        base_url=fake.url,
        key_name=None,
        schema=schema,
        output_dir=None,
        progress=False,
    )
    assert list(batch.columns) == list(online.columns)
    pd.testing.assert_frame_equal(
        batch.drop(columns=[".attempts"]), online.drop(columns=[".attempts"]), check_dtype=False
    )
    assert created(fake, "anthropic") == 1


def test_polars_in_polars_out(fake: FakeServer) -> None:
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"id": [3, 1, 2], "text": ["a", "b", "c"]})
    out = oai(fake, df)
    assert isinstance(out, pl.DataFrame)
    assert out["id"].to_list() == [3, 1, 2]


# --- failed lines, expiry, resubmission --------------------------------------------------


def test_failed_lines_are_error_rows_with_their_status_and_message(fake: FakeServer) -> None:
    fake.configure(batch_fail_every=3, batch_fail_status=500)
    fake.poison("row 1", status=400, message="input too long")
    out = oai(fake, frame(6))
    by_id = out.set_index("id")
    assert by_id.loc[2, ".error"] and by_id.loc[2, ".status"] == 400
    assert "input too long" in by_id.loc[2, ".error_msg"]
    failed_500 = by_id[by_id[".status"] == 500]
    assert len(failed_500) == 2 and failed_500[".error"].all()
    assert failed_500[".error_msg"].str.len().min() > 0
    assert by_id[".error"].sum() == 3 and len(out) == 6


def test_expired_job_keeps_its_partial_results_and_resubmits_the_rest_once(
    fake: FakeServer,
) -> None:
    fake.configure(batch_in_progress=0.4, batch_expire_after=0.25)
    df = frame(8)
    first = oai(fake, df)
    expired = first[first[".error_msg"].fillna("").str.contains("batch_expired")]
    assert 0 < len(expired) < 8
    assert (~first[".error"]).sum() == 8 - len(expired)
    fake.configure(batch_expire_after=None, batch_in_progress=0.05)
    again = oai(fake, df, resubmit_failed=True)
    assert not again[".error"].any()
    jobs = fake.stats.batches.jobs
    assert len(jobs) == 2 and len(jobs[1].custom_ids) == len(expired)
    assert set(jobs[1].custom_ids) == {str(i) for i in expired["id"]}
    # once: another call sends nothing more
    oai(fake, df, resubmit_failed=True)
    assert len(fake.stats.batches.jobs) == 2
    assert pd.read_parquet("out")["id"].is_unique


def test_anthropic_expired_and_errored_requests(fake: FakeServer) -> None:
    fake.configure(batch_in_progress=0.4, batch_expire_after=0.2)
    fake.poison("row 0", status=400, message="prompt is too long")
    out = ant(fake, frame(6))
    messages = out[".error_msg"].fillna("")
    assert messages.str.startswith("expired").sum() >= 1
    assert out.loc[0, ".status"] == 400 and "prompt is too long" in messages[0]


def test_a_batch_that_fails_validation_gives_error_rows_that_say_why(fake: FakeServer) -> None:
    fake.configure(batch_max_requests=2)
    out = oai(fake, frame(3))
    assert out[".error"].all()
    assert out[".error_msg"].str.contains("too_many_tasks").all()


# --- splitting and ids -------------------------------------------------------------------


def test_rows_are_split_over_the_request_and_byte_limits(fake: FakeServer) -> None:
    out = oai(fake, frame(7), max_requests=3)
    assert [len(j.custom_ids) for j in fake.stats.batches.jobs] == [3, 3, 1]
    assert len(out) == 7 and not out[".error"].any()
    line_bytes = len(er.oai_batch_build_completions_req("row 0", 1, max_tokens=500)) + 1
    oai(fake, frame(5), output_dir="by-bytes", max_bytes=2 * line_bytes + 70)
    assert [len(j.custom_ids) for j in fake.stats.batches.jobs[3:]] == [2, 2, 1]
    assert len(manifest("by-bytes")["jobs"]) == 3


def test_a_row_too_big_for_any_job_is_refused_before_anything_is_sent(fake: FakeServer) -> None:
    df = pd.DataFrame({"id": [1, 2], "text": ["short", "long " * 400]})
    with pytest.raises(InputError, match="row 2"):
        oai(fake, df, max_bytes=1000)
    assert fake.stats.batches.count("files_uploaded") == 0


def test_anthropic_custom_ids_map_any_id_and_back(fake: FakeServer) -> None:
    ids = ["plain", "with space", "ünïcode", "x" * 100, "a:b/c", "plain2"]
    out = ant(fake, frame(6, ids))
    assert out["id"].tolist() == ids
    assert not out[".error"].any()
    (job,) = fake.stats.batches.jobs
    assert all(CUSTOM_ID.match(c) for c in job.custom_ids)
    assert job.custom_ids[0] == "plain" and len(set(job.custom_ids)) == 6
    integers = ant(fake, frame(3, [10, 20, 30]), output_dir="ints")
    assert integers["id"].tolist() == [10, 20, 30] and integers["id"].dtype == np.int64


def test_results_are_matched_by_custom_id_not_position(fake: FakeServer) -> None:
    fake.configure(batch_results_order="reversed")
    df = frame(5)
    out = oai(fake, df)
    assert out["content"].tolist() == [f"echo: row {i}" for i in range(5)]
    out = ant(fake, df, output_dir="ant")
    assert out["content"].tolist() == [f"echo: row {i}" for i in range(5)]


# --- walk away: wait=False, a killed process, fetch from the CLI -------------------------


def test_wait_false_returns_the_jobs_and_a_later_call_collects(fake: FakeServer) -> None:
    fake.configure(batch_in_progress=0.5)
    df = frame(4)
    jobs = oai(fake, df, wait=False)
    assert list(jobs["status"]) == ["validating"] and not jobs["fetched"].any()
    assert manifest()["jobs"][0]["id"] == jobs["job_id"][0]
    out = oai(fake, df)
    assert len(out) == 4 and not out[".error"].any()
    assert created(fake, "openai") == 1


_CHILD = """
import sys, pandas as pd, endpointr as er
df = pd.DataFrame({"id": range(1, 7), "text": [f"row {i}" for i in range(6)]})
provider, url = sys.argv[1], sys.argv[2]
call = er.ant_batch_df if provider == "anthropic" else er.oai_batch_df
call(df, text_var="text", id_var="id", base_url=url, key_name=None, output_dir="out",
     poll_interval=0.05, progress=False)
"""


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_killed_process_is_replaced_by_one_that_reattaches(
    fake: FakeServer, provider: str
) -> None:
    fake.configure(batch_in_progress=1.0)
    url = fake.url + ("/v1" if provider == "openai" else "")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, provider, url])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            path = Path("out/_metadata.json")
            if path.exists() and any(j.get("id") for j in manifest().get("jobs", [])):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the child never recorded its job")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert not list(Path("out").glob("chunk-*.parquet"))
    caller = ant if provider == "anthropic" else oai
    out = caller(fake, frame(6))
    assert len(out) == 6 and not out[".error"].any()
    assert created(fake, provider) == 1  # one submission in all


def test_a_crash_between_create_and_its_answer_reattaches_by_token(fake: FakeServer) -> None:
    fake.configure(batch_in_progress=0.2)
    df = frame(3)
    oai(fake, df, wait=False)
    record = manifest()
    # as if the process died before the create call's answer was saved
    record["jobs"][0].update(id=None, status="submitting")
    Path("out/_metadata.json").write_text(json.dumps(record))
    out = oai(fake, df)
    assert len(out) == 3 and created(fake, "openai") == 1


def test_cli_submit_status_fetch_and_list(
    fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.configure(batch_in_progress=0.3)
    frame(5).to_csv("in.csv", index=False)
    base = ["--base-url", fake.url + "/v1", "--no-key"]
    common = [
        "--text-col",
        "text",
        "--id-col",
        "id",
        "--output-dir",
        "jd",
        "--poll-interval",
        "0.02",
    ]
    assert main(["jobs", "submit", "in.csv", *common, *base]) == 0
    job_id = manifest("jd")["jobs"][0]["id"]
    assert job_id in capsys.readouterr().out
    assert main(["jobs", "status", "jd"]) == 0
    assert "\tFalse\t" in capsys.readouterr().out
    assert main(["jobs", "fetch", "jd", "--poll-interval", "0.02"]) == 0
    assert "\tTrue\t" in capsys.readouterr().out
    out = er.read_results("jd")
    assert out["id"].tolist() == [1, 2, 3, 4, 5] and not out[".error"].any()
    assert main(["jobs", "list", *base]) == 0
    assert job_id in capsys.readouterr().out
    assert created(fake, "openai") == 1


def test_cli_dry_run_sends_nothing(fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    frame(5).to_csv("in.csv", index=False)
    args = ["jobs", "submit", "in.csv", "--text-col", "text", "--id-col", "id", "--dry-run"]
    assert main([*args, "--base-url", fake.url + "/v1", "--no-key", "--max-requests", "2"]) == 0
    estimate = json.loads(capsys.readouterr().out)
    assert estimate["requests"] == 5 and estimate["jobs"] == 3 and estimate["input_tokens"] > 0
    assert fake.stats.batches.count("files_uploaded") == 0


def test_cancel_collects_what_finished(fake: FakeServer) -> None:
    fake.configure(batch_in_progress=1.0, batch_validating=0)
    df = frame(10)
    oai(fake, df, wait=False)
    time.sleep(0.35)
    jobs = er.jobs_cancel("out", poll_interval=POLL, progress=False)
    assert jobs["fetched"].all() and jobs["status"].tolist() == ["cancelled"]
    out = er.read_results("out")
    assert len(out) == 10
    cancelled = out[".error_msg"].fillna("").str.contains("batch_cancelled")
    assert 0 < cancelled.sum() < 10 and (~out[".error"]).sum() == 10 - cancelled.sum()


# --- checks before anything is sent, keys ------------------------------------------------


def test_bad_input_is_refused_before_any_request(fake: FakeServer) -> None:
    with pytest.raises(InputError, match="empty"):
        oai(fake, pd.DataFrame({"id": [1, 2], "text": ["ok", " "]}))
    with pytest.raises(ConfigError, match="task"):
        oai(fake, frame(2), task="classify")
    with pytest.raises(ConfigError, match="task='complete'"):
        oai(fake, frame(2), task="embed", system_prompt="x")
    with pytest.raises(InputError, match="id"):
        oai(fake, pd.DataFrame({"id": [1, 1], "text": ["a", "b"]}))
    with pytest.raises(MissingAPIKeyError):
        er.oai_batch_df(frame(2), text_var="text", id_var="id", base_url=fake.url + "/v1")
    assert fake.stats.batches.count("files_uploaded") == 0


def test_the_key_is_sent_but_never_written(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-test-batch-secret-123456"
    fake.configure(api_key=secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    out = er.oai_batch_df(
        frame(3),
        text_var="text",
        id_var="id",
        base_url=fake.url + "/v1",
        output_dir="out",
        poll_interval=POLL,
    )
    assert not out[".error"].any()
    captured = capsys.readouterr()
    written = b"".join(p.read_bytes() for p in Path("out").rglob("*") if p.is_file())
    assert secret not in captured.out + captured.err and secret.encode() not in written
    fake.configure(api_key=None)  # a URL's own credentials instead of a key
    creds = er.oai_batch_df(
        frame(2),
        text_var="text",
        id_var="id",
        base_url=fake.url.replace("://", "://user:hunter22@") + "/v1",
        key_name=None,
        output_dir="creds",
        poll_interval=POLL,
        progress=False,
    )
    assert not creds[".error"].any()
    assert b"hunter22" not in Path("creds/_metadata.json").read_bytes()
    fake.configure(api_key=secret)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000000000")
    with pytest.raises(er.RequestError) as caught:
        oai_keyed = er.oai_batch_df
        oai_keyed(
            frame(2),
            text_var="text",
            id_var="id",
            base_url=fake.url + "/v1",
            output_dir="other",
            poll_interval=POLL,
            max_retries=1,
        )
    assert caught.value.status == 401 and "sk-wrong-key-000000000" not in str(caught.value)


def test_dry_run_estimates_and_counts_what_is_done(fake: FakeServer) -> None:
    df = frame(6)
    oai(fake, df.head(2))
    estimate = oai(fake, df.head(2), dry_run=True)
    assert estimate.requests == 0 and estimate.rows_done == 2
    fresh = oai(fake, df, dry_run=True, output_dir="fresh", max_requests=4)
    assert (fresh.requests, fresh.jobs, fresh.files) == (6, 2, 2)
    assert fresh.input_tokens >= 6 and fresh.bytes > 0
    assert not Path("fresh").exists()  # nothing left behind
    assert created(fake, "openai") == 1


# --- EndpointR's low-level calls ---------------------------------------------------------


def test_openai_low_level_workflow(fake: FakeServer) -> None:
    base = {"key_name": None, "base_url": fake.url + "/v1"}
    df = frame(3)
    jsonl = er.oai_batch_prepare_embeddings(df, "text", "id", dimensions=8)
    lines = [json.loads(line) for line in jsonl.split("\n")]
    assert [line["custom_id"] for line in lines] == ["1", "2", "3"]
    assert lines[0]["url"] == "/v1/embeddings" and lines[0]["body"]["dimensions"] == 8
    stored = er.oai_batch_upload(jsonl, **base)
    assert stored["purpose"] == "batch"
    batch = er.oai_batch_start(stored["id"], "/v1/embeddings", **base)
    deadline = time.monotonic() + 10
    while batch["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = er.oai_batch_status(batch["id"], **base)
    assert batch["status"] == "completed"
    content = er.oai_file_content(batch["output_file_id"], **base)
    parsed = er.oai_batch_parse_embeddings(content, original_df=df, id_var="id")
    assert parsed["id"].tolist() == ["1", "2", "3"]
    assert len(parsed["embedding"][0]) == 8 and not parsed[".error"].any()
    listed = er.oai_batch_list(**base)
    assert [b["id"] for b in listed["data"]] == [batch["id"]]
    files = er.oai_file_list("batch", **base)
    assert stored["id"] in [f["id"] for f in files["data"]]
    assert er.oai_file_delete(stored["id"], **base)["deleted"] is True


def test_openai_parse_completions_reads_error_lines() -> None:
    good = {
        "custom_id": "a",
        "response": {
            "status_code": 200,
            "body": {
                "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        },
        "error": None,
    }
    bad = {
        "custom_id": "b",
        "response": {"status_code": 400, "body": {"error": {"message": "bad model"}}},
        "error": None,
    }
    gone = {
        "custom_id": "c",
        "response": None,
        "error": {"code": "batch_expired", "message": "late"},
    }
    content = "\n".join(json.dumps(x) for x in (good, bad, gone)) + "\nnot json\n"
    out = er.oai_batch_parse_completions(content)
    assert out["custom_id"].tolist()[:3] == ["a", "b", "c"]
    assert out["content"][0] == "hi" and out["prompt_tokens"][0] == 3
    assert out[".error"].tolist() == [False, True, True, True]
    assert out[".status"][1] == 400 and "bad model" in out[".error_msg"][1]
    assert out[".error_msg"][2] == "batch_expired: late"
    assert out["custom_id"][3].startswith("__PARSE_ERROR_LINE_")


def test_anthropic_low_level_workflow(fake: FakeServer) -> None:
    base = {"key_name": None, "base_url": fake.url}
    batch = er.ant_batch_create(["one", "two"], custom_ids=["id 1", 2], **base)
    assert batch["processing_status"] == "in_progress"
    with pytest.raises(JobError, match="not ended"):
        er.ant_batch_results(batch["id"], **base)
    deadline = time.monotonic() + 10
    while batch["processing_status"] != "ended" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = er.ant_batch_status(batch["id"], **base) | {"endpointr_ids": batch["endpointr_ids"]}
    results = er.ant_batch_results(batch["id"], ids=batch["endpointr_ids"], **base)
    assert results["custom_id"].tolist() == ["id 1", 2]
    assert results["content"].tolist() == ["echo: one", "echo: two"]
    assert [b["id"] for b in er.ant_batch_list(**base)["data"]] == [batch["id"]]
    with pytest.raises(er.RequestError, match="ended"):
        er.ant_batch_cancel(batch["id"], **base)


def test_openai_build_lines_keep_endpointr_words() -> None:
    line = json.loads(er.oai_batch_build_embed_req("hello", "1234"))
    assert (line["method"], line["url"], line["custom_id"]) == ("POST", "/v1/embeddings", "1234")
    assert line["body"]["model"] == "text-embedding-3-small"
    chat = json.loads(er.oai_batch_build_completions_req("hi", 7, system_prompt="s"))
    assert chat["url"] == "/v1/chat/completions" and chat["custom_id"] == "7"
    assert chat["body"]["messages"][0] == {"role": "system", "content": "s"}
    with pytest.raises(ConfigError):
        er.oai_batch_build_embed_req("hello", "1", endpoint="/v1/other")


def test_job_map_files_hide_from_parquet_readers(fake: FakeServer) -> None:
    oai(fake, frame(3))
    assert Path("out/_jobs/part-00001.parquet").exists()
    assert pq.read_table("out/_jobs/part-00001.parquet").column_names == ["custom_id", "id", "text"]
    assert len(pd.read_parquet("out")) == 3


def test_an_online_run_retries_a_jobs_failed_rows_in_place(fake: FakeServer) -> None:
    fake.configure(batch_fail_every=2)
    df = frame(4)
    assert oai(fake, df)[".error"].tolist() == [False, True, False, True]
    again = er.oai_complete_df(
        df,
        text_var="text",
        id_var="id",
        base_url=fake.url + "/v1",
        key_name=None,
        output_dir="out",
        retry_failed=True,
        progress=False,
    )
    assert not again[".error"].any()
    sent = sorted(r.json["messages"][-1]["content"] for r in fake.stats.requests)
    assert sent == ["row 1", "row 3"]
    assert pd.read_parquet("out")["id"].is_unique


def test_anthropic_split_expiry_and_resubmission(fake: FakeServer) -> None:
    fake.configure(batch_in_progress=0.4, batch_expire_after=0.25)
    df = frame(7, [f"id {i}" for i in range(7)])
    first = ant(fake, df, max_requests=4)
    assert [len(j.custom_ids) for j in fake.stats.batches.jobs] == [4, 3]
    expired = first[first[".error_msg"].fillna("").str.startswith("expired")]
    assert 0 < len(expired) < 7
    fake.configure(batch_expire_after=None, batch_in_progress=0.05)
    again = ant(fake, df, max_requests=4, resubmit_failed=True)
    assert again["id"].tolist() == df["id"].tolist() and not again[".error"].any()
    assert sum(len(j.custom_ids) for j in fake.stats.batches.jobs[2:]) == len(expired)
    assert created(fake, "anthropic") == 2 + len(fake.stats.batches.jobs[2:])
