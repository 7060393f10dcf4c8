"""The requests inside a batch job: their answers, and the result lines that carry them.

A request is answered as the online route answers the same body, without latency, rate
limits or scripted faults: the route's validation error, else a poison error, else a
``batch_fail_every`` failure, else the route's own answer. OpenAI results go to an output
file (status 200) and an error file (any other status, and the requests an expired or
cancelled job never ran); Anthropic results are one JSONL line per request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from .batches import BatchStore, Job, LineResult, done_at, new_id, started_at
from .providers import Family, family_for
from .routing import AnswerContext, Route
from .state import ServerState

__all__ = [
    "answer_request",
    "anthropic_results",
    "write_openai_results",
]

_NOT_RUN = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}


def _error_bytes(family: Family, status: int, message: str | None, body: Any = None) -> bytes:
    if body is None:
        return family.error_body(status, message)
    if isinstance(body, bytes):
        return body
    return body.encode() if isinstance(body, str) else orjson.dumps(body)


def answer_request(
    route: Route,
    body: Any,
    headers: Mapping[str, str],
    state: ServerState,
    custom_id: str,
    position: int,
) -> LineResult:
    """The answer to request number ``position`` (from 1) of a job: ``body`` sent to
    ``route`` with ``headers``, as the online route would answer it."""
    settings = state.settings
    family = family_for(route.family, settings)
    parsed = route.parse(body, headers, settings)
    every = settings.batch_fail_every
    poison = state.poisoned(parsed.texts) if parsed.error is None else None
    if parsed.error is not None:
        status, message = parsed.error
        payload = _error_bytes(family, status, message, parsed.error_body)
    elif poison is not None:
        status, payload = poison.status, family.error_body(poison.status, poison.message)
    elif every is not None and position % every == 0:
        status = settings.batch_fail_status
        payload = family.error_body(status, None)
    else:
        status, payload = 200, route.answer(parsed, AnswerContext(settings, state))
    return LineResult(custom_id, status, payload, new_id("batch_req_"), new_id("req_"))


def _openai_line(result: LineResult) -> bytes:
    response = {
        "status_code": result.status,
        "request_id": result.request_id,
        "body": orjson.Fragment(result.body),
    }
    line = {"id": result.line_id, "custom_id": result.custom_id, "response": response}
    return orjson.dumps({**line, "error": None})


def _not_run_line(result: LineResult, status: str) -> bytes:
    code, message = _NOT_RUN[status]
    line = {"id": result.line_id, "custom_id": result.custom_id, "response": None}
    return orjson.dumps({**line, "error": {"code": code, "message": message}})


def _jsonl(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def write_openai_results(store: BatchStore, job: Job, status: str, now: float) -> None:
    """Write an ended OpenAI job's output and error files and name them on the job; a file
    that would be empty is not written (its id stays ``None``)."""
    done = done_at(job, now)
    output = [_openai_line(r) for r in job.results[:done] if r.ok]
    errors = [_openai_line(r) for r in job.results[:done] if not r.ok]
    if status in _NOT_RUN:
        errors += [_not_run_line(r, status) for r in job.results[done:]]
    created = int(started_at(job, status, now) or time.time())
    if output:
        name = f"{job.id}_output.jsonl"
        stored = store.add_file(name, "batch_output", _jsonl(job.ordered(output)), created)
        job.output_file_id = stored.id
    if errors:
        name = f"{job.id}_error.jsonl"
        stored = store.add_file(name, "batch_output", _jsonl(job.ordered(errors)), created)
        job.error_file_id = stored.id


def _anthropic_result(result: LineResult) -> dict[str, Any]:
    if result.ok:
        return {"type": "succeeded", "message": orjson.Fragment(result.body)}
    return {"type": "errored", "error": orjson.Fragment(result.body)}


def anthropic_results(job: Job, now: float) -> bytes:
    """The JSONL results of an ended Anthropic job: each request ``succeeded`` or
    ``errored`` if it was done, else ``canceled`` or ``expired``."""
    done = done_at(job, now)
    left = {"type": "canceled"} if job.cancelled is not None else {"type": "expired"}
    results = [_anthropic_result(r) if i < done else left for i, r in enumerate(job.results)]
    lines = [
        orjson.dumps({"custom_id": r.custom_id, "result": result})
        for r, result in zip(job.results, results, strict=True)
    ]
    return _jsonl(job.ordered(lines))
