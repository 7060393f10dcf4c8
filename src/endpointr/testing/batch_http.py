"""HTTP plumbing shared by the file and batch routes: the key check, JSON answers,
provider errors and cursor pages.

These routes are not recorded as provider requests and take no latency, rate limit or
scripted fault: they answer at once. What they saw is counted in the ``batches`` part
of the stats instead. Before any of them answers, the OpenAI jobs that ended since are
given their result files, so every route sees the same state of a job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web

from .batch_lines import write_openai_results
from .batches import new_id, status_at
from .providers import Family, family_for
from .state import ServerState

__all__ = ["Refusal", "error_answer", "guarded", "json_answer", "page", "query_int", "read_json"]

_T = TypeVar("_T")
_JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Action = Callable[[web.Request, ServerState, float], Awaitable[web.StreamResponse]]


class Refusal(Exception):
    """Raised by a route: answer ``status`` with the provider's error body for ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _request_header(family: Family) -> dict[str, str]:
    return {} if family.request_id is None else {family.request_id: new_id("req_")}


def json_answer(value: Any, family: Family, status: int = 200) -> web.Response:
    """``value`` as a JSON answer carrying ``family``'s request-id header."""
    return web.Response(
        body=orjson.dumps(value), status=status, content_type=_JSON, headers=_request_header(family)
    )


def error_answer(family: Family, status: int, message: str | None) -> web.Response:
    """``status`` with ``family``'s error body for ``message``."""
    return web.Response(
        body=family.error_body(status, message),
        status=status,
        content_type=_JSON,
        headers=_request_header(family),
    )


def _settle(state: ServerState, now: float) -> None:
    store = state.batches
    for job in store.newly_ended("openai", now):
        write_openai_results(store, job, status_at(job, now), now)


def guarded(state: ServerState, family: Family, action: Action) -> Handler:
    """The aiohttp handler running ``action`` once the request shows ``family``'s key
    (401 otherwise, counted as ``rejected``) and, for Anthropic, an ``anthropic-version``
    header; a :class:`Refusal` it raises becomes the provider's error answer.

    ``action`` gets the monotonic moment the jobs were settled at, and answers as of that
    moment: a job that ends a moment later must not look ended without its files.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        settings = state.settings
        styled = family_for(family, settings)
        headers = {name.lower(): value for name, value in request.headers.items()}
        key = settings.api_key
        if key is not None and not styled.authorized(headers, key):
            state.batches.note("rejected")
            return error_answer(styled, 401, None)
        if family.name == "anthropic" and "anthropic-version" not in headers:
            return error_answer(styled, 400, "anthropic-version: header is required")
        now = time.monotonic()
        _settle(state, now)
        try:
            return await action(request, state, now)
        except Refusal as refusal:
            return error_answer(styled, refusal.status, refusal.message)

    return handle


async def read_json(request: web.Request, message: str) -> Any:
    """The request's JSON body; :class:`Refusal` 400 with ``message`` if it is not JSON."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Refusal(400, message) from None


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` within ``[low, high]``, else :class:`Refusal`."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Refusal(400, f"Invalid '{name}': expected an integer from {low} to {high}.")
    return value


def page(
    items: Sequence[_T],
    ids: Sequence[str],
    limit: int,
    *,
    after: str | None = None,
    before: str | None = None,
) -> tuple[list[_T], bool]:
    """A page of ``items`` (named by ``ids``, in list order) and whether more lie beyond
    it in that direction: the ``limit`` items right after ``after``, right before
    ``before``, or the first ones. An unknown cursor gives an empty page."""
    if after is not None:
        start = ids.index(after) + 1 if after in ids else len(items)
        return list(items[start : start + limit]), start + limit < len(items)
    if before is not None:
        end = ids.index(before) if before in ids else 0
        start = max(0, end - limit)
        return list(items[start:end]), start > 0
    return list(items[:limit]), limit < len(items)
