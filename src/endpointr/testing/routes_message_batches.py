"""Anthropic Message Batches routes: ``POST /v1/messages/batches``, ``GET
/v1/messages/batches`` (``before_id``, ``after_id``, ``limit``), ``GET
/v1/messages/batches/{batch_id}``, ``POST /v1/messages/batches/{batch_id}/cancel``,
``GET /v1/messages/batches/{batch_id}/results`` and ``DELETE
/v1/messages/batches/{batch_id}``.

The shape of a batch is checked when it is created (400 for a missing or malformed
``custom_id`` or ``params``, a repeated ``custom_id`` or more than ``batch_max_requests``
requests; 413 over ``batch_max_bytes``); each request's ``params`` are answered as
``POST /v1/messages`` would answer them, a 4xx or 5xx becoming an ``errored`` result.
``processing_status`` is ``in_progress``, ``canceling`` once cancelled, then ``ended``;
``request_counts`` keeps every request under ``processing`` until the batch ends, as
Anthropic documents. Results are served only once it has ended (400 before).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from .batch_http import Refusal, guarded, json_answer, page, query_int
from .batch_lines import answer_request, anthropic_results
from .batches import (
    FINAL,
    Job,
    LineResult,
    Timing,
    counts_at,
    new_id,
    started_at,
    status_at,
    wall_clock,
)
from .providers import ANTHROPIC
from .routes_anthropic import ANTHROPIC_ROUTES
from .state import ServerState

__all__ = ["message_batch_json", "message_batch_routes"]

_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_PROCESSING = {"cancelling": "canceling", **{status: "ended" for status in FINAL}}
_DAY = 24 * 3600.0
_MESSAGES = ANTHROPIC_ROUTES[0]


def _rfc3339(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request_counts(job: Job, now: float, processing: str) -> dict[str, int]:
    succeeded, errored, not_run = counts_at(job, now)
    if processing != "ended":
        idle = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
        return {"processing": len(job.results), **idle}
    cancelled = job.cancelled is not None
    return {
        "processing": 0,
        "succeeded": succeeded,
        "errored": errored,
        "canceled": not_run if cancelled else 0,
        "expired": 0 if cancelled else not_run,
    }


def message_batch_json(job: Job, now: float, base_url: str) -> dict[str, Any]:
    """The Anthropic message batch object of ``job`` at ``now``; ``results_url`` starts
    with ``base_url`` once the batch has ended."""
    status = status_at(job, now)
    processing = _PROCESSING.get(status, "in_progress")
    ended = processing == "ended"
    window = job.timing.expire_after
    return {
        "id": job.id,
        "type": "message_batch",
        "processing_status": processing,
        "request_counts": _request_counts(job, now, processing),
        "ended_at": _rfc3339(started_at(job, status, now) if ended else None),
        "created_at": _rfc3339(job.created_wall),
        "expires_at": _rfc3339(job.created_wall + (_DAY if window is None else window)),
        "archived_at": None,
        "cancel_initiated_at": _rfc3339(None if job.cancelled is None else job.wall(job.cancelled)),
        "results_url": f"{base_url}/v1/messages/batches/{job.id}/results" if ended else None,
    }


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _requests_of(data: Any, limit: int) -> list[tuple[str, Any]]:
    """The ``(custom_id, params)`` pairs of a create body; :class:`Refusal` 400 if its
    shape is wrong."""
    requests = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(requests, list) or not requests:
        raise Refusal(400, "requests: Field required (a list of at least 1 item)")
    if len(requests) > limit:
        raise Refusal(400, f"requests: List should have at most {limit} items")
    pairs: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
            pattern = _CUSTOM_ID.pattern
            raise Refusal(400, f"requests.{i}.custom_id: String should match pattern '^{pattern}$'")
        if not isinstance(item.get("params"), dict):
            raise Refusal(400, f"requests.{i}.params: Field required")
        if custom_id in seen:
            raise Refusal(400, f"requests.{i}.custom_id: Duplicate custom_id '{custom_id}'")
        seen.add(custom_id)
        pairs.append((custom_id, item["params"]))
    return pairs


async def _create(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    settings, raw = state.settings, await request.read()
    if len(raw) > settings.batch_max_bytes:
        raise Refusal(413, f"Request exceeds the maximum size of {settings.batch_max_bytes} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refusal(400, "Request body is not valid JSON") from None
    pairs = _requests_of(data, settings.batch_max_requests)
    headers = {"anthropic-version": request.headers["anthropic-version"]}
    results: tuple[LineResult, ...] = tuple(
        answer_request(_MESSAGES, params, headers, state, custom_id, position)
        for position, (custom_id, params) in enumerate(pairs, 1)
    )
    job = Job(
        new_id("msgbatch_"),
        "anthropic",
        _MESSAGES.path,
        now,
        wall_clock(now),
        Timing.anthropic(settings),
        results,
        reversed_results=settings.batch_results_order == "reversed",
    )
    state.batches.add_job(job)
    state.batches.note("batches_created", provider="anthropic")
    state.batches.note("requests_submitted", len(results), provider="anthropic")
    return json_answer(message_batch_json(job, now, _base_url(request)), ANTHROPIC)


def _job(request: web.Request, state: ServerState) -> Job:
    batch_id = request.match_info["batch_id"]
    job = state.batches.job(batch_id, "anthropic")
    if job is None:
        raise Refusal(404, f"Message Batch {batch_id} not found")
    return job


async def _retrieve(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    job = _job(request, state)
    return json_answer(message_batch_json(job, now, _base_url(request)), ANTHROPIC)


async def _list(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    limit = query_int(request, "limit", 20, 1, 1000)
    after, before = request.query.get("after_id"), request.query.get("before_id")
    if after is not None and before is not None:
        raise Refusal(400, "Only one of before_id and after_id may be given")
    jobs = state.batches.jobs("anthropic")[::-1]
    chunk, more = page(jobs, [j.id for j in jobs], limit, after=after, before=before)
    base = _base_url(request)
    body = {
        "data": [message_batch_json(job, now, base) for job in chunk],
        "has_more": more,
        "first_id": chunk[0].id if chunk else None,
        "last_id": chunk[-1].id if chunk else None,
    }
    return json_answer(body, ANTHROPIC)


async def _cancel(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    job = _job(request, state)
    if not state.batches.cancel(job, now):
        raise Refusal(400, f"Message Batch {job.id} has ended and can no longer be canceled")
    return json_answer(message_batch_json(job, now, _base_url(request)), ANTHROPIC)


def _ended(job: Job, now: float) -> bool:
    return status_at(job, now) in FINAL


async def _results(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    job = _job(request, state)
    if not _ended(job, now):
        raise Refusal(400, f"Message Batch {job.id} has not ended yet; results come once it has")
    return web.Response(body=anthropic_results(job, now), content_type="application/x-jsonl")


async def _delete(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    job = _job(request, state)
    if not _ended(job, now):
        raise Refusal(400, f"Message Batch {job.id} is still processing; cancel it first")
    state.batches.delete_job(job.id)
    return json_answer({"id": job.id, "type": "message_batch_deleted"}, ANTHROPIC)


def message_batch_routes(state: ServerState) -> list[web.RouteDef]:
    """The Anthropic Message Batches routes over ``state``'s store."""
    guard = ANTHROPIC
    return [
        web.post("/v1/messages/batches", guarded(state, guard, _create)),
        web.get("/v1/messages/batches", guarded(state, guard, _list)),
        web.get("/v1/messages/batches/{batch_id}", guarded(state, guard, _retrieve)),
        web.post("/v1/messages/batches/{batch_id}/cancel", guarded(state, guard, _cancel)),
        web.get("/v1/messages/batches/{batch_id}/results", guarded(state, guard, _results)),
        web.delete("/v1/messages/batches/{batch_id}", guarded(state, guard, _delete)),
    ]
