"""OpenAI Batch routes: ``POST /v1/batches``, ``GET /v1/batches`` (``after``, ``limit``),
``GET /v1/batches/{batch_id}`` and ``POST /v1/batches/{batch_id}/cancel``.

A batch runs an uploaded ``batch`` file against ``/v1/chat/completions`` or
``/v1/embeddings``. Its lines are checked when it is created; a file that breaks a rule
makes the batch ``failed`` once ``validating`` is over, with every broken rule in
``errors`` (``{"object": "list", "data": [{"code", "message", "param", "line"}]}``;
``line`` counts from 1):

``file_too_large``              the file has more than ``batch_max_bytes`` bytes
``empty_file``                  no line holds a request (blank lines are skipped)
``too_many_tasks``              more than ``batch_max_requests`` requests
``invalid_json_line``           a line is not a JSON object
``missing_required_parameter``  a line lacks ``custom_id``, ``method``, ``url`` or ``body``
``invalid_custom_id``           a ``custom_id`` is not a non-empty string
``invalid_method``              a ``method`` other than ``POST``
``invalid_url``                 a ``url`` other than the batch's ``endpoint``
``duplicate_custom_id``         a ``custom_id`` already used by an earlier line

States and their timing are described in :mod:`.batches`; answers in :mod:`.batch_lines`.
``request_counts.failed`` counts the requests that failed and, once a batch expired or
was cancelled, those it never ran (all of them are in the error file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from .batch_http import Refusal, guarded, json_answer, page, query_int, read_json
from .batch_lines import answer_request
from .batches import Job, Timing, counts_at, new_id, started_at, status_at, wall_clock
from .providers import OPENAI
from .routes_openai import OPENAI_ROUTES
from .routing import Route
from .state import ServerState, Settings

__all__ = ["BATCH_ENDPOINTS", "batch_json", "batch_routes", "check_input"]

BATCH_ENDPOINTS: Mapping[str, Route] = {route.path: route for route in OPENAI_ROUTES}
_WINDOW = "24h"
_WINDOW_SECONDS = 24 * 3600
# The states whose start the batch object gives as ``<state>_at`` after ``expires_at``,
# in the documented order.
_STAMPED = ("finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
_REQUIRED = ("custom_id", "method", "url", "body")
_MAX_METADATA = 16

Line = tuple[str, Any]


def _error(code: str, message: str, line: int | None = None, param: str | None = None) -> Any:
    return {"code": code, "message": message, "param": param, "line": line}


def _check_line(number: int, raw: bytes, endpoint: str, seen: set[str]) -> Line | Any:
    """The line's ``(custom_id, body)``, or the error object of the first rule it breaks."""
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        request = None
    if not isinstance(request, dict):
        return _error("invalid_json_line", "This line is not parseable as valid JSON.", number)
    for name in _REQUIRED:
        if name not in request:
            return _error(
                "missing_required_parameter", f"Missing required parameter: '{name}'.", number, name
            )
    custom_id = request["custom_id"]
    if not isinstance(custom_id, str) or not custom_id:
        message = "The custom_id must be a non-empty string."
        return _error("invalid_custom_id", message, number, "custom_id")
    if request["method"] != "POST":
        return _error("invalid_method", "Only the POST method is supported.", number, "method")
    if request["url"] != endpoint:
        message = f"The URL provided for this request does not match the batch endpoint {endpoint}."
        return _error("invalid_url", message, number, "url")
    if custom_id in seen:
        message = (
            "The custom_id for this request is a duplicate of another request. The custom_id "
            "parameter must be unique for each request in a batch."
        )
        return _error("duplicate_custom_id", message, number, "custom_id")
    seen.add(custom_id)
    return custom_id, request["body"]


def check_input(content: bytes, endpoint: str, settings: Settings) -> tuple[list[Line], list[Any]]:
    """The requests of a batch input file, as ``(custom_id, body)`` pairs, and the error
    objects of the rules it breaks (no requests when there is any)."""
    if len(content) > settings.batch_max_bytes:
        message = f"The input file is larger than the {settings.batch_max_bytes} byte limit."
        return [], [_error("file_too_large", message)]
    numbered = [(n, raw) for n, raw in enumerate(content.splitlines(), 1) if raw.strip()]
    if not numbered:
        message = "The batch input file is empty. Please ensure it contains at least one request."
        return [], [_error("empty_file", message)]
    if len(numbered) > settings.batch_max_requests:
        message = (
            f"The batch input file has {len(numbered)} requests; at most "
            f"{settings.batch_max_requests} are allowed."
        )
        return [], [_error("too_many_tasks", message)]
    seen: set[str] = set()
    checked = [_check_line(n, raw, endpoint, seen) for n, raw in numbered]
    errors = [item for item in checked if isinstance(item, dict)]
    return ([] if errors else checked), errors


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    pairs = isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
        for k, v in value.items()
    )
    if not pairs or len(value) > _MAX_METADATA:
        raise Refusal(400, "Invalid 'metadata': at most 16 string pairs (keys <= 64 chars).")
    return dict(value)


def _stamp(value: float | None) -> int | None:
    return None if value is None else int(value)


def batch_json(job: Job, now: float) -> dict[str, Any]:
    """The OpenAI batch object of ``job`` at ``now``."""
    status = status_at(job, now)
    succeeded, failed, not_run = counts_at(job, now)
    window = job.timing.expire_after
    expires = int(job.created_wall + (_WINDOW_SECONDS if window is None else window))
    stamps = {f"{name}_at": _stamp(started_at(job, name, now)) for name in _STAMPED}
    errors = {"object": "list", "data": list(job.errors)} if status == "failed" else None
    return {
        "id": job.id,
        "object": "batch",
        "endpoint": job.endpoint,
        "errors": errors,
        "input_file_id": job.options["input_file_id"],
        "completion_window": job.options["completion_window"],
        "status": status,
        "output_file_id": job.output_file_id,
        "error_file_id": job.error_file_id,
        "created_at": int(job.created_wall),
        "in_progress_at": _stamp(started_at(job, "in_progress", now)),
        "expires_at": expires,
        **stamps,
        "request_counts": {
            "total": len(job.results),
            "completed": succeeded,
            "failed": failed + not_run,
        },
        "metadata": job.options["metadata"],
    }


def _route_of(data: dict[str, Any]) -> Route:
    for name in ("input_file_id", "endpoint", "completion_window"):
        if name not in data:
            raise Refusal(400, f"Missing required parameter: '{name}'.")
    route = BATCH_ENDPOINTS.get(data["endpoint"])
    if route is None:
        supported = ", ".join(f"'{path}'" for path in BATCH_ENDPOINTS)
        raise Refusal(400, f"Invalid value for 'endpoint'. Supported values are: {supported}.")
    if data["completion_window"] != _WINDOW:
        raise Refusal(400, "Invalid value for 'completion_window'. Supported values are: '24h'.")
    return route


async def _create(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    data = await read_json(request, "We could not parse the JSON body of your request.")
    if not isinstance(data, dict):
        raise Refusal(400, "We could not parse the JSON body of your request.")
    route = _route_of(data)
    metadata = _metadata(data.get("metadata"))
    file_id = str(data["input_file_id"])
    stored = state.batches.file(file_id)
    if stored is None or stored.purpose != "batch":
        raise Refusal(400, f"No such File object with purpose 'batch': {file_id}")
    settings = state.settings
    lines, errors = check_input(stored.content, route.path, settings)
    results = tuple(
        answer_request(route, body, {}, state, custom_id, position)
        for position, (custom_id, body) in enumerate(lines, 1)
    )
    options = {"input_file_id": file_id, "completion_window": _WINDOW, "metadata": metadata}
    job = Job(
        new_id("batch_"),
        "openai",
        route.path,
        now,
        wall_clock(now),
        Timing.openai(settings),
        results,
        tuple(errors),
        options,
        settings.batch_results_order == "reversed",
    )
    state.batches.add_job(job)
    state.batches.note("batches_created", provider="openai")
    state.batches.note("requests_submitted", len(results), provider="openai")
    return json_answer(batch_json(job, now), OPENAI)


def _job(request: web.Request, state: ServerState) -> Job:
    batch_id = request.match_info["batch_id"]
    job = state.batches.job(batch_id, "openai")
    if job is None:
        raise Refusal(404, f"No batch found with id '{batch_id}'.")
    return job


async def _retrieve(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    return json_answer(batch_json(_job(request, state), now), OPENAI)


async def _list(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    limit = query_int(request, "limit", 20, 1, 100)
    jobs = state.batches.jobs("openai")[::-1]
    chunk, more = page(jobs, [j.id for j in jobs], limit, after=request.query.get("after"))
    body = {
        "object": "list",
        "data": [batch_json(job, now) for job in chunk],
        "first_id": chunk[0].id if chunk else None,
        "last_id": chunk[-1].id if chunk else None,
        "has_more": more,
    }
    return json_answer(body, OPENAI)


async def _cancel(request: web.Request, state: ServerState, now: float) -> web.StreamResponse:
    job = _job(request, state)
    if not state.batches.cancel(job, now):
        raise Refusal(400, f"Cannot cancel a batch with status '{status_at(job, now)}'.")
    return json_answer(batch_json(job, now), OPENAI)


def batch_routes(state: ServerState) -> list[web.RouteDef]:
    """The OpenAI Batch routes over ``state``'s store."""
    return [
        web.post("/v1/batches", guarded(state, OPENAI, _create)),
        web.get("/v1/batches", guarded(state, OPENAI, _list)),
        web.get("/v1/batches/{batch_id}", guarded(state, OPENAI, _retrieve)),
        web.post("/v1/batches/{batch_id}/cancel", guarded(state, OPENAI, _cancel)),
    ]
