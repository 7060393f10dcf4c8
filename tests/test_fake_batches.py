"""The fake server's OpenAI Files + Batch API and Anthropic Message Batches, over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
import pytest

from endpointr.testing import FakeServer, Settings, fake_embedding
from endpointr.testing.server import add_arguments, settings_from_args

ANTHROPIC = {"anthropic-version": "2023-06-01"}
FAST = {
    "batch_validating": 0.02,
    "batch_in_progress": 0.05,
    "batch_finalizing": 0.02,
    "batch_cancelling": 0.05,
}
OPENAI_STATES = ("validating", "in_progress", "finalizing", "completed")


# --- a small client -----------------------------------------------------------------------


def call(
    server: FakeServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, bytes]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(server.url + path, data, all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ok(server: FakeServer, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    status, raw = call(server, method, path, body, **kw)
    assert status == 200, raw
    return json.loads(raw)


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = b"".join(parts) + head.encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload_raw(
    server: FakeServer,
    content: bytes,
    purpose: str | None = "batch",
    filename: str = "input.jsonl",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    fields = {} if purpose is None else {"purpose": purpose}
    body, content_type = multipart(fields, filename, content)
    status, raw = call(
        server,
        "POST",
        "/v1/files",
        raw=body,
        headers={**(headers or {}), "Content-Type": content_type},
    )
    return status, json.loads(raw)


def upload(server: FakeServer, content: bytes, **kw: Any) -> str:
    status, body = upload_raw(server, content, **kw)
    assert status == 200, body
    return str(body["id"])


def jsonl(lines: list[Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def embed_line(custom_id: str, text: str, url: str = "/v1/embeddings") -> dict[str, Any]:
    body = {"model": "text-embedding-3-small", "input": [text]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def chat_line(custom_id: str, prompt: str) -> dict[str, Any]:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": prompt}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def create_batch(server: FakeServer, lines: list[Any], endpoint: str = "/v1/embeddings") -> Any:
    file_id = upload(server, jsonl(lines))
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}
    return ok(server, "POST", "/v1/batches", {**body, "metadata": {"run": "test"}})


def wait_for(poll: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    seen = poll()
    deadline = time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, f"still {seen}"
        time.sleep(0.005)
        seen = poll()
    return seen


def finished(server: FakeServer, batch_id: str) -> Any:
    final = {"completed", "failed", "expired", "cancelled"}
    return wait_for(
        lambda: ok(server, "GET", f"/v1/batches/{batch_id}"), lambda b: b["status"] in final
    )


def file_lines(server: FakeServer, file_id: str | None) -> list[Any]:
    if file_id is None:
        return []
    status, raw = call(server, "GET", f"/v1/files/{file_id}/content")
    assert status == 200
    return [json.loads(line) for line in raw.splitlines()]


def message_request(custom_id: str, prompt: str, **params: Any) -> dict[str, Any]:
    body = {
        "model": "claude-x",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": prompt}],
    }
    return {"custom_id": custom_id, "params": {**body, **params}}


def create_message_batch(server: FakeServer, requests: list[Any]) -> Any:
    return ok(server, "POST", "/v1/messages/batches", {"requests": requests}, headers=ANTHROPIC)


def message_batch(server: FakeServer, batch_id: str) -> Any:
    return ok(server, "GET", f"/v1/messages/batches/{batch_id}", headers=ANTHROPIC)


def ended(server: FakeServer, batch_id: str) -> Any:
    return wait_for(
        lambda: message_batch(server, batch_id), lambda b: b["processing_status"] == "ended"
    )


def results(server: FakeServer, batch_id: str) -> dict[str, Any]:
    status, raw = call(server, "GET", f"/v1/messages/batches/{batch_id}/results", headers=ANTHROPIC)
    assert status == 200, raw
    return {line["custom_id"]: line["result"] for line in map(json.loads, raw.splitlines())}


# --- OpenAI Files -------------------------------------------------------------------------


def test_files_upload_list_retrieve_content_and_delete(server: FakeServer) -> None:
    content = jsonl([embed_line("a", "x")])
    first = upload(server, content)
    second = upload(server, b"notes", purpose="user_data", filename="notes.txt")
    info = ok(server, "GET", f"/v1/files/{first}")
    assert info["object"] == "file" and info["purpose"] == "batch" and info["bytes"] == len(content)
    assert info["filename"] == "input.jsonl" and isinstance(info["created_at"], int)
    listing = ok(server, "GET", "/v1/files")
    assert listing["object"] == "list" and [f["id"] for f in listing["data"]] == [second, first]
    assert listing["has_more"] is False and listing["first_id"] == second
    assert [f["id"] for f in ok(server, "GET", "/v1/files?order=asc")["data"]] == [first, second]
    assert [f["id"] for f in ok(server, "GET", "/v1/files?purpose=batch")["data"]] == [first]
    paged = ok(server, "GET", "/v1/files?limit=1")
    assert [f["id"] for f in paged["data"]] == [second] and paged["has_more"] is True
    rest = ok(server, "GET", f"/v1/files?limit=1&after={paged['last_id']}")
    assert [f["id"] for f in rest["data"]] == [first] and rest["has_more"] is False
    assert call(server, "GET", f"/v1/files/{first}/content") == (200, content)
    assert ok(server, "DELETE", f"/v1/files/{first}") == {
        "id": first,
        "object": "file",
        "deleted": True,
    }
    status, raw = call(server, "GET", f"/v1/files/{first}")
    assert status == 404 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    assert call(server, "DELETE", f"/v1/files/{first}")[0] == 404
    stats = server.stats.batches
    assert stats.count("files_uploaded") == 2 and stats.count("files_deleted") == 1
    assert stats.count("bytes_uploaded") == len(content) + 5
    assert server.stats.request_count == 0  # file routes are not provider requests


def test_an_aiohttp_form_upload_is_read_as_openai_reads_it(server: FakeServer) -> None:
    content = jsonl([embed_line("a", "x")])

    async def send() -> Any:
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", content, filename="rows.jsonl")
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url + "/v1/files", data=form) as answer,
        ):
            assert answer.status == 200
            return await answer.json()

    stored = asyncio.run(send())
    assert stored["filename"] == "rows.jsonl" and stored["bytes"] == len(content)
    assert call(server, "GET", f"/v1/files/{stored['id']}/content") == (200, content)


def test_upload_errors_name_what_is_wrong(server: FakeServer) -> None:
    status, body = upload_raw(server, b"{}", purpose=None)
    assert status == 400 and "'purpose'" in body["error"]["message"]
    status, body = upload_raw(server, b"{}", purpose="homework")
    assert status == 400 and "homework" in body["error"]["message"]
    status, body = upload_raw(server, b"{}", filename="input.csv")
    assert status == 400 and "Must be .jsonl" in body["error"]["message"]
    assert call(server, "POST", "/v1/files", {"purpose": "batch"})[0] == 400
    assert server.stats.batches.count("files_uploaded") == 0


# --- OpenAI Batch -------------------------------------------------------------------------


def test_a_batch_moves_through_its_states_and_answers_as_the_online_route(
    server: FakeServer,
) -> None:
    # states long enough for a poll to see each one even on a busy machine
    server.configure(batch_validating=0.15, batch_in_progress=0.15, batch_finalizing=0.15, dim=8)
    prompts = [f"prompt number {i}" for i in range(4)]
    batch = create_batch(
        server, [chat_line(f"c{i}", p) for i, p in enumerate(prompts)], "/v1/chat/completions"
    )
    assert batch["object"] == "batch" and batch["status"] == "validating"
    assert batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"
    assert batch["metadata"] == {"run": "test"} and batch["errors"] is None
    assert batch["expires_at"] == batch["created_at"] + 24 * 3600
    assert batch["request_counts"] == {"total": 4, "completed": 0, "failed": 0}
    statuses = [batch["status"]]
    while statuses[-1] != "completed":
        current = ok(server, "GET", f"/v1/batches/{batch['id']}")
        if current["status"] != statuses[-1]:
            statuses.append(current["status"])
        time.sleep(0.002)
    assert tuple(statuses) == OPENAI_STATES
    done = current
    stamps = [done[f"{s}_at"] for s in ("created", "in_progress", "finalizing", "completed")]
    assert stamps == sorted(stamps) and done["failed_at"] is None and done["cancelled_at"] is None
    assert done["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    assert done["error_file_id"] is None
    lines = file_lines(server, done["output_file_id"])
    assert [line["custom_id"] for line in lines] == ["c0", "c1", "c2", "c3"]
    for line, prompt in zip(lines, prompts, strict=True):
        online = ok(server, "POST", "/v1/chat/completions", chat_line("x", prompt)["body"])
        response = line["response"]
        assert line["error"] is None and line["id"].startswith("batch_req_")
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        for key in ("object", "model", "choices", "usage"):
            assert response["body"][key] == online[key]
    output = ok(server, "GET", f"/v1/files/{done['output_file_id']}")
    assert output["purpose"] == "batch_output"
    stats = server.stats
    assert stats.batches.count("batches_created", "openai") == 1
    assert stats.batches.count("requests_submitted") == 4
    assert [job.custom_ids for job in stats.batches.jobs] == [("c0", "c1", "c2", "c3")]
    assert stats.request_count == 4  # the four online calls only


def test_embedding_lines_carry_the_online_vectors(server: FakeServer) -> None:
    server.configure(dim=8, **FAST)
    batch = finished(server, create_batch(server, [embed_line("e1", "hello world")])["id"])
    (line,) = file_lines(server, batch["output_file_id"])
    vector = line["response"]["body"]["data"][0]["embedding"]
    assert np.allclose(vector, fake_embedding("hello world", 8), atol=1e-6)


def test_failed_requests_go_to_the_error_file(server: FakeServer) -> None:
    server.configure(dim=4, batch_fail_every=3, batch_fail_status=503, **FAST)
    server.poison("BAD", 400, "input too long")
    texts = ["BAD one", "two", "three", "four", "five", "six", "seven"]
    batch = create_batch(server, [embed_line(f"r{i}", t) for i, t in enumerate(texts, 1)])
    batch = finished(server, batch["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 7, "completed": 4, "failed": 3}
    output = file_lines(server, batch["output_file_id"])
    assert [line["custom_id"] for line in output] == ["r2", "r4", "r5", "r7"]
    errors = {line["custom_id"]: line for line in file_lines(server, batch["error_file_id"])}
    assert sorted(errors) == ["r1", "r3", "r6"]
    poisoned = errors["r1"]["response"]
    assert poisoned["status_code"] == 400 and errors["r1"]["error"] is None
    assert poisoned["body"]["error"]["message"] == "input too long"
    assert errors["r3"]["response"]["status_code"] == 503
    assert errors["r6"]["response"]["body"]["error"]["type"] == "server_error"


def test_an_invalid_route_body_fails_only_its_line(server: FakeServer) -> None:
    server.configure(**FAST)
    good = embed_line("good", "fine")
    bad = {**embed_line("bad", "x"), "body": {"model": "m", "input": []}}
    batch = finished(server, create_batch(server, [good, bad])["id"])
    (error,) = file_lines(server, batch["error_file_id"])
    assert error["custom_id"] == "bad" and error["response"]["status_code"] == 400
    assert "'$.input' is invalid" in error["response"]["body"]["error"]["message"]


def test_validation_failures_use_the_documented_error_list(server: FakeServer) -> None:
    server.configure(**FAST)
    missing = embed_line("e", "x")
    del missing["body"]
    lines = [
        json.dumps(embed_line("a", "x")).encode(),
        json.dumps(embed_line("b", "x", url="/v1/chat/completions")).encode(),
        json.dumps(embed_line("a", "y")).encode(),
        b"{not json",
        json.dumps(missing).encode(),
    ]
    file_id = upload(server, b"\n".join(lines))
    body = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"}
    batch = ok(server, "POST", "/v1/batches", body)
    assert batch["status"] == "validating" and batch["errors"] is None
    batch = finished(server, batch["id"])
    assert batch["status"] == "failed" and batch["failed_at"] is not None
    assert batch["in_progress_at"] is None and batch["output_file_id"] is None
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    errors = batch["errors"]
    assert errors["object"] == "list"
    found = [(e["code"], e["line"], e["param"]) for e in errors["data"]]
    assert found == [
        ("invalid_url", 2, "url"),
        ("duplicate_custom_id", 3, "custom_id"),
        ("invalid_json_line", 4, None),
        ("missing_required_parameter", 5, "body"),
    ]
    assert all(isinstance(e["message"], str) and e["message"] for e in errors["data"])
    (job,) = server.stats.batches.jobs
    assert job.valid is False and server.stats.batches.count("requests_submitted") == 0


@pytest.mark.parametrize(
    ("limits", "content", "code"),
    [
        (
            {"batch_max_requests": 2},
            jsonl([embed_line(f"r{i}", "x") for i in range(3)]),
            "too_many_tasks",
        ),
        ({"batch_max_bytes": 50}, jsonl([embed_line("r", "x" * 60)]), "file_too_large"),
        ({}, b"\n  \n", "empty_file"),
    ],
)
def test_file_limits_fail_the_batch(
    server: FakeServer, limits: dict[str, int], content: bytes, code: str
) -> None:
    server.configure(**FAST, **limits)
    file_id = upload(server, content)
    body = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"}
    batch = finished(server, ok(server, "POST", "/v1/batches", body)["id"])
    assert batch["status"] == "failed"
    assert [(e["code"], e["line"]) for e in batch["errors"]["data"]] == [(code, None)]


def test_create_refuses_what_openai_refuses(server: FakeServer) -> None:
    file_id = upload(server, jsonl([embed_line("a", "x")]))
    good = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in good.items() if k != "endpoint"}, "'endpoint'"),
        ({**good, "endpoint": "/v1/moderations"}, "Supported values"),
        ({**good, "completion_window": "1h"}, "completion_window"),
        ({**good, "input_file_id": "file-nope"}, "file-nope"),
        ({**good, "metadata": {"k": 1}}, "metadata"),
    ]
    for body, words in cases:
        status, raw = call(server, "POST", "/v1/batches", body)
        error = json.loads(raw)["error"]
        assert status == 400 and words in error["message"], body
        assert error["type"] == "invalid_request_error"
    assert call(server, "GET", "/v1/batches/batch_nope")[0] == 404
    assert server.stats.batches.count("batches_created") == 0


def test_an_expired_batch_keeps_the_results_done_by_its_deadline(server: FakeServer) -> None:
    # 10 requests over 1 s of in_progress; the deadline falls half-way through it
    server.configure(dim=4, batch_validating=0.05, batch_in_progress=1.0, batch_expire_after=0.55)
    batch = create_batch(server, [embed_line(f"r{i}", f"text {i}") for i in range(10)])
    assert batch["expires_at"] - batch["created_at"] in (0, 1)  # the deadline, not 24 h
    batch = finished(server, batch["id"])
    assert batch["status"] == "expired" and batch["expired_at"] is not None
    assert batch["completed_at"] is None and batch["finalizing_at"] is None
    assert batch["request_counts"] == {"total": 10, "completed": 5, "failed": 5}
    output = file_lines(server, batch["output_file_id"])
    assert [line["custom_id"] for line in output] == [f"r{i}" for i in range(5)]
    errors = file_lines(server, batch["error_file_id"])
    assert [line["custom_id"] for line in errors] == [f"r{i}" for i in range(5, 10)]
    for line in errors:
        assert line["response"] is None and line["error"]["code"] == "batch_expired"


def test_a_cancelled_batch_keeps_the_results_done_before_the_cancel(server: FakeServer) -> None:
    server.configure(dim=4, batch_validating=0.0, batch_in_progress=2.0, batch_cancelling=0.1)
    batch = create_batch(server, [embed_line(f"r{i}", f"text {i}") for i in range(10)])
    time.sleep(0.3)
    cancelling = ok(server, "POST", f"/v1/batches/{batch['id']}/cancel")
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"] is not None
    assert ok(server, "POST", f"/v1/batches/{batch['id']}/cancel")["status"] == "cancelling"
    batch = finished(server, batch["id"])
    assert batch["status"] == "cancelled" and batch["cancelled_at"] >= batch["cancelling_at"]
    counts = batch["request_counts"]
    output = file_lines(server, batch["output_file_id"])
    errors = file_lines(server, batch["error_file_id"])
    assert 1 <= len(output) < 10 and len(output) + len(errors) == 10
    assert counts == {"total": 10, "completed": len(output), "failed": len(errors)}
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    again = ok(server, "POST", f"/v1/batches/{batch['id']}/cancel")
    assert again["status"] == "cancelled"  # cancelling a cancelled batch changes nothing
    assert server.stats.batches.count("batches_cancelled", "openai") == 1


def test_a_finished_batch_cannot_be_cancelled(server: FakeServer) -> None:
    server.configure(**FAST)
    batch = finished(server, create_batch(server, [embed_line("a", "x")])["id"])
    status, raw = call(server, "POST", f"/v1/batches/{batch['id']}/cancel")
    assert status == 400 and "completed" in json.loads(raw)["error"]["message"]


def test_batches_list_newest_first_in_pages(server: FakeServer) -> None:
    ids = [create_batch(server, [embed_line("a", "x")])["id"] for _ in range(5)]
    first = ok(server, "GET", "/v1/batches?limit=2")
    assert first["object"] == "list" and first["has_more"] is True
    pages, listing = [first], first
    while listing["has_more"]:
        listing = ok(server, "GET", f"/v1/batches?limit=2&after={listing['last_id']}")
        pages.append(listing)
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [b["id"] for p in pages for b in p["data"]] == ids[::-1]
    assert all(p["first_id"] == p["data"][0]["id"] for p in pages)
    assert call(server, "GET", "/v1/batches?limit=0")[0] == 400
    assert len(ok(server, "GET", "/v1/batches")["data"]) == 5


def test_results_can_come_in_reversed_order(server: FakeServer) -> None:
    server.configure(batch_results_order="reversed", **FAST)
    batch = finished(
        server, create_batch(server, [embed_line(f"r{i}", "x") for i in range(3)])["id"]
    )
    assert [line["custom_id"] for line in file_lines(server, batch["output_file_id"])] == [
        "r2",
        "r1",
        "r0",
    ]


# --- Anthropic Message Batches ------------------------------------------------------------


def test_a_message_batch_answers_as_the_messages_route(server: FakeServer) -> None:
    server.configure(**FAST)
    server.poison("BAD", 400, "prompt is too long")
    requests = [
        message_request("ok-1", "hello there"),
        message_request("ok-2", "general kenobi"),
        message_request("invalid", "no limit", max_tokens=0),
        message_request("poisoned", "a BAD prompt"),
    ]
    batch = create_message_batch(server, requests)
    assert batch["type"] == "message_batch" and batch["processing_status"] == "in_progress"
    assert batch["id"].startswith("msgbatch_") and batch["results_url"] is None
    assert batch["request_counts"] == {
        "processing": 4,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert batch["ended_at"] is None and batch["cancel_initiated_at"] is None
    status, raw = call(
        server, "GET", f"/v1/messages/batches/{batch['id']}/results", headers=ANTHROPIC
    )
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"
    done = ended(server, batch["id"])
    assert done["request_counts"] == {
        "processing": 0,
        "succeeded": 2,
        "errored": 2,
        "canceled": 0,
        "expired": 0,
    }
    assert done["results_url"] == f"{server.url}/v1/messages/batches/{batch['id']}/results"
    assert done["ended_at"] > done["created_at"] and done["archived_at"] is None
    found = results(server, batch["id"])
    assert list(found) == ["ok-1", "ok-2", "invalid", "poisoned"]
    online = ok(server, "POST", "/v1/messages", requests[0]["params"], headers=ANTHROPIC)
    message = found["ok-1"]["message"]
    assert found["ok-1"]["type"] == "succeeded" and message["content"] == online["content"]
    assert message["usage"] == online["usage"] and message["type"] == "message"
    invalid = found["invalid"]
    assert invalid["type"] == "errored" and invalid["error"]["type"] == "error"
    assert invalid["error"]["error"]["type"] == "invalid_request_error"
    assert found["poisoned"]["error"]["error"]["message"] == "prompt is too long"
    stats = server.stats.batches
    assert stats.count("batches_created", "anthropic") == 1
    assert stats.count("requests_submitted", "anthropic") == 4
    assert stats.jobs[0].custom_ids == ("ok-1", "ok-2", "invalid", "poisoned")


def test_a_canceled_message_batch_ends_with_canceled_results(server: FakeServer) -> None:
    server.configure(batch_in_progress=2.0, batch_cancelling=0.1)
    batch = create_message_batch(server, [message_request(f"m{i}", "hi") for i in range(10)])
    time.sleep(0.3)
    path = f"/v1/messages/batches/{batch['id']}/cancel"
    canceling = ok(server, "POST", path, headers=ANTHROPIC)
    assert canceling["processing_status"] == "canceling"
    assert canceling["cancel_initiated_at"] is not None and canceling["ended_at"] is None
    done = ended(server, batch["id"])
    counts = done["request_counts"]
    assert 1 <= counts["succeeded"] < 10 and counts["succeeded"] + counts["canceled"] == 10
    kinds = [r["type"] for r in results(server, batch["id"]).values()]
    assert kinds == ["succeeded"] * counts["succeeded"] + ["canceled"] * counts["canceled"]
    assert ok(server, "POST", path, headers=ANTHROPIC)["processing_status"] == "ended"
    assert server.stats.batches.count("batches_cancelled", "anthropic") == 1


def test_an_expired_message_batch_has_expired_results(server: FakeServer) -> None:
    server.configure(batch_in_progress=1.0, batch_expire_after=0.25)
    batch = create_message_batch(server, [message_request(f"m{i}", "hi") for i in range(8)])
    done = ended(server, batch["id"])
    assert done["request_counts"]["succeeded"] == 2 and done["request_counts"]["expired"] == 6
    kinds = [r["type"] for r in results(server, batch["id"]).values()]
    assert kinds == ["succeeded"] * 2 + ["expired"] * 6


def test_message_batch_shape_errors_are_refused_at_creation(server: FakeServer) -> None:
    server.configure(batch_max_requests=3, batch_max_bytes=2000)
    path = "/v1/messages/batches"
    cases = [
        ([message_request("same", "a"), message_request("same", "b")], 400, "same"),
        ([message_request("has space", "a")], 400, "custom_id"),
        ([{"custom_id": "a"}], 400, "params"),
        ([message_request(f"m{i}", "a") for i in range(4)], 400, "at most 3"),
        ([message_request("big", "x" * 3000)], 413, "maximum size"),
        ([], 400, "requests"),
    ]
    for requests, code, words in cases:
        status, raw = call(server, "POST", path, {"requests": requests}, headers=ANTHROPIC)
        body = json.loads(raw)
        assert status == code and body["type"] == "error" and words in body["error"]["message"]
    status, raw = call(server, "POST", path, {"requests": [message_request("a", "b")]})
    assert status == 400 and "anthropic-version" in json.loads(raw)["error"]["message"]
    status, raw = call(server, "GET", f"{path}/msgbatch_nope", headers=ANTHROPIC)
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"
    assert server.stats.batches.count("batches_created") == 0


def test_message_batches_list_in_pages_both_ways(server: FakeServer) -> None:
    server.configure(**FAST)
    ids = [create_message_batch(server, [message_request("a", "b")])["id"] for _ in range(5)]
    newest = ids[::-1]
    path = "/v1/messages/batches"
    first = ok(server, "GET", f"{path}?limit=2", headers=ANTHROPIC)
    assert [b["id"] for b in first["data"]] == newest[:2] and first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (newest[0], newest[1])
    second = ok(server, "GET", f"{path}?limit=2&after_id={first['last_id']}", headers=ANTHROPIC)
    assert [b["id"] for b in second["data"]] == newest[2:4] and second["has_more"] is True
    third = ok(server, "GET", f"{path}?limit=2&after_id={second['last_id']}", headers=ANTHROPIC)
    assert [b["id"] for b in third["data"]] == newest[4:] and third["has_more"] is False
    back = ok(server, "GET", f"{path}?limit=2&before_id={third['first_id']}", headers=ANTHROPIC)
    assert [b["id"] for b in back["data"]] == newest[2:4] and back["has_more"] is True
    top = ok(server, "GET", f"{path}?limit=2&before_id={newest[1]}", headers=ANTHROPIC)
    assert [b["id"] for b in top["data"]] == newest[:1] and top["has_more"] is False


def test_an_ended_message_batch_can_be_deleted(server: FakeServer) -> None:
    server.configure(batch_in_progress=1.0)
    batch = create_message_batch(server, [message_request("a", "b")])
    path = f"/v1/messages/batches/{batch['id']}"
    assert call(server, "DELETE", path, headers=ANTHROPIC)[0] == 400  # still in progress
    server.configure(**FAST)
    quick = create_message_batch(server, [message_request("a", "b")])
    ended(server, quick["id"])
    deleted = ok(server, "DELETE", f"/v1/messages/batches/{quick['id']}", headers=ANTHROPIC)
    assert deleted == {"id": quick["id"], "type": "message_batch_deleted"}
    assert call(server, "GET", f"/v1/messages/batches/{quick['id']}", headers=ANTHROPIC)[0] == 404


# --- keys, stats, reset and settings ------------------------------------------------------


def test_batch_and_file_routes_require_the_key_as_the_online_routes() -> None:
    with FakeServer(api_key="sk-test", **FAST) as server:
        status, body = upload_raw(server, jsonl([embed_line("a", "x")]))
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        bearer = {"Authorization": "Bearer sk-test"}
        status, body = upload_raw(server, jsonl([embed_line("a", "x")]), headers=bearer)
        assert status == 200
        assert call(server, "GET", "/v1/batches", headers={"Authorization": "Bearer no"})[0] == 401
        assert call(server, "GET", "/v1/batches", headers=bearer)[0] == 200
        path = "/v1/messages/batches"
        status, raw = call(server, "GET", path, headers={**ANTHROPIC, **bearer})
        assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
        assert call(server, "GET", path, headers={**ANTHROPIC, "x-api-key": "sk-test"})[0] == 200
        stats = server.stats.batches
        assert stats.count("rejected") == 3 and stats.count("files_uploaded") == 1


def test_stats_over_http_and_reset_forget_batches(server: FakeServer) -> None:
    server.configure(**FAST)
    batch = finished(server, create_batch(server, [embed_line("a", "x")])["id"])
    create_message_batch(server, [message_request("m", "hi")])
    stats = ok(server, "GET", "/_stats?requests=0")["batches"]
    assert stats["batches_created"] == 2 and stats["files_uploaded"] == 1
    assert stats["openai.batches_created"] == 1 and stats["anthropic.batches_created"] == 1
    assert [(j["provider"], j["requests"], j["custom_ids"]) for j in stats["jobs"]] == [
        ("openai", 1, ["a"]),
        ("anthropic", 1, ["m"]),
    ]
    ok(server, "POST", "/_reset", {})
    assert ok(server, "GET", "/_stats")["batches"] == {"jobs": []}
    assert call(server, "GET", f"/v1/batches/{batch['id']}")[0] == 404
    assert call(server, "GET", f"/v1/files/{batch['output_file_id']}")[0] == 404
    assert ok(server, "GET", "/v1/files")["data"] == []


def test_batch_settings_have_flags_defaults_and_checks() -> None:
    defaults = Settings()
    assert (defaults.batch_validating, defaults.batch_in_progress) == (0.2, 0.2)
    assert (defaults.batch_finalizing, defaults.batch_cancelling) == (0.2, 0.2)
    assert defaults.batch_expire_after is None and defaults.batch_fail_every is None
    assert defaults.batch_max_requests == 50_000 and defaults.batch_results_order == "input"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--batch-expire-after", "1.5", "--batch-fail-every", "4", "--batch-max-bytes", "99"]
    settings = Settings(**settings_from_args(parser.parse_args(argv)))
    assert (settings.batch_expire_after, settings.batch_fail_every) == (1.5, 4)
    assert settings.batch_max_bytes == 99
    bad: list[dict[str, Any]] = [
        {"batch_in_progress": -1},
        {"batch_fail_every": 0},
        {"batch_fail_status": 200},
        {"batch_max_requests": 0},
        {"batch_results_order": "random"},
    ]
    for changes in bad:
        with pytest.raises(ValueError):
            Settings(**changes)
