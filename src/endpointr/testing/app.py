"""The aiohttp application of the fake server: provider routes and control routes.

Every provider request goes through :class:`Dispatcher`: it is recorded, then rejected on
arrival (401 without the API key, 503 during a burst, 429 over ``rpm``, ``tpm`` or the
capacity) or admitted with its fault, if any. An admitted request is served for
``latency + per_row_latency * rows`` seconds, on one of ``device_slots`` slots if set
(waiting in line for it first), then waits a ``delay`` fault's seconds, and is answered:
a replacing fault, else the route's validation error, else a poison error, else the
correct answer.

The OpenAI Files and Batch routes (:mod:`.routes_files`, :mod:`.routes_batches`) and the
Anthropic Message Batches routes (:mod:`.routes_message_batches`) do not go through it:
they check the key and answer at once, and a job's requests are answered as the routes
above answer them, without latency or faults (:mod:`.batch_lines`).

Control routes (not recorded): ``GET /_stats`` (the stats as JSON, without headers but
with ``texts_seen`` and, under ``batches``, what the file and batch routes saw;
``?requests=0`` leaves out the request list), ``POST /_reset`` (batch files and jobs
too), ``POST /_configure`` (settings object), ``POST /_script`` (list of fault objects),
``POST /_poison`` (``{"substring", "status"?, "message"?}``) and ``POST /_random_faults``
(``{"rate", "kinds"?, "seed"?, "delay"?}``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from .device import Device
from .faults import Fault
from .providers import Family, family_for
from .replies import FaultContext, Reply, error_response, fault_response, json_response
from .routes_anthropic import ANTHROPIC_ROUTES
from .routes_batches import batch_routes
from .routes_files import file_routes
from .routes_hf import HF_ROUTES, info
from .routes_message_batches import message_batch_routes
from .routes_openai import OPENAI_ROUTES
from .routing import AnswerContext, Parsed, Route
from .state import Poison, RecordedRequest, ServerState, Ticket

__all__ = ["DEFAULT_RANDOM_KINDS", "ROUTES", "Dispatcher", "build_app"]

ROUTES: tuple[Route, ...] = HF_ROUTES + OPENAI_ROUTES + ANTHROPIC_ROUTES
DEFAULT_RANDOM_KINDS = ("429", "500", "502", "503", "504")
_NO_FAULT = Fault.ok()
_MAX_BODY = 256 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class Dispatcher:
    """Runs provider requests through the record, the gate, the latency and the faults."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.device = Device()

    def handler(self, route: Route) -> Handler:
        """The aiohttp handler of ``route``."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, route)

        return handle

    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse:
        """Record, gate, wait and answer one request to ``route``."""
        t_start = time.monotonic()
        data = _loads(await request.read())
        settings = self.state.settings
        headers = {name.lower(): value for name, value in request.headers.items()}
        parsed = route.parse(data, headers, settings)
        record = RecordedRequest(
            request.method, request.path, headers, data, parsed.rows, None, t_start, None
        )
        family = family_for(route.family, settings)
        key = settings.api_key
        authorized = key is None or family.authorized(headers, key)
        ticket = self.state.arrive(record, parsed.texts, family.name, authorized, parsed.cost)
        status: int | None = None
        try:
            response, status = await self._respond(request, route, family, parsed, ticket)
            return response
        finally:
            self.state.finish(ticket, status)

    async def _respond(
        self, request: web.Request, route: Route, family: Family, parsed: Parsed, ticket: Ticket
    ) -> Reply:
        headers = family.headers(ticket.rate)
        rejection = ticket.rejection
        if rejection is not None:
            limit = rejection.limit
            message = rejection.message if limit is None else family.limit_message(limit)
            return error_response(family, rejection.status, message, headers, rejection.retry_after)
        settings = self.state.settings
        fault = ticket.fault or _NO_FAULT
        await self._serve(settings.latency + settings.per_row_latency * parsed.rows)
        if fault.seconds > 0:
            await asyncio.sleep(fault.seconds)
        return await fault_response(
            FaultContext(
                request,
                fault,
                family,
                headers,
                lambda wrong_count: self._answer(route, family, parsed, headers, wrong_count),
                self._real_body(route, parsed),
            )
        )

    async def _serve(self, seconds: float) -> None:
        async with self.device.slot(self.state.settings.device_slots):
            if seconds > 0:
                await asyncio.sleep(seconds)

    def _answer(
        self,
        route: Route,
        family: Family,
        parsed: Parsed,
        headers: dict[str, str],
        wrong_count: bool,
    ) -> Reply:
        if parsed.error is not None:
            status, message = parsed.error
            return error_response(family, status, message, headers, body=parsed.error_body)
        poison = self.state.poisoned(parsed.texts)
        if poison is not None:
            return error_response(family, poison.status, poison.message, headers)
        return json_response(self._body(route, parsed, wrong_count=wrong_count), 200, headers)

    def _body(self, route: Route, parsed: Parsed, *, wrong_count: bool = False) -> bytes:
        return route.answer(parsed, AnswerContext(self.state.settings, self.state, wrong_count))

    def _real_body(self, route: Route, parsed: Parsed) -> Callable[[], bytes | None]:
        return lambda: None if parsed.error is not None else self._body(route, parsed)


def _bad_control(message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": message}), status=400, content_type="application/json"
    )


def _ok() -> web.Response:
    return web.Response(body=b'{"ok": true}', content_type="application/json")


def _control_routes(state: ServerState) -> list[web.RouteDef]:
    async def stats(request: web.Request) -> web.Response:
        with_requests = request.query.get("requests", "1") not in ("0", "false")
        body = orjson.dumps(state.snapshot().to_json(with_requests=with_requests))
        return web.Response(body=body, content_type="application/json")

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return _ok()

    async def configure(request: web.Request) -> web.Response:
        return await _apply(request, lambda data: state.configure(dict(data)))

    async def script(request: web.Request) -> web.Response:
        return await _apply(request, lambda data: state.script(Fault.from_dict(f) for f in data))

    async def poison(request: web.Request) -> web.Response:
        return await _apply(request, lambda data: state.add_poison(_poison(data)))

    async def random_faults(request: web.Request) -> web.Response:
        return await _apply(request, lambda data: _set_random(state, data))

    return [
        web.get("/_stats", stats),
        web.post("/_reset", reset),
        web.post("/_configure", configure),
        web.post("/_script", script),
        web.post("/_poison", poison),
        web.post("/_random_faults", random_faults),
    ]


async def _apply(request: web.Request, action: Callable[[Any], None]) -> web.Response:
    try:
        action(orjson.loads(await request.read()))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return _bad_control(str(exc))
    return _ok()


def _poison(data: dict[str, Any]) -> Poison:
    return Poison(
        str(data["substring"]),
        int(data.get("status", 400)),
        str(data.get("message", "input too long")),
    )


def set_random_faults(
    state: ServerState, rate: float, kinds: tuple[str, ...], seed: int, delay: float = 1.0
) -> None:
    """Give ``state`` random faults of ``kinds`` (names as in ``Fault.from_kind``)."""
    retry_after = state.settings.retry_after
    faults = [Fault.from_kind(kind, retry_after=retry_after, delay=delay) for kind in kinds]
    state.set_random(float(rate), faults, int(seed))


def _set_random(state: ServerState, data: dict[str, Any]) -> None:
    kinds = tuple(data.get("kinds", DEFAULT_RANDOM_KINDS))
    set_random_faults(state, data["rate"], kinds, data.get("seed", 1), data.get("delay", 1.0))


def build_app(state: ServerState) -> web.Application:
    """The aiohttp application serving every provider route and control route of ``state``."""
    app = web.Application(client_max_size=_MAX_BODY)
    dispatcher = Dispatcher(state)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, dispatcher.handler(route))

    async def tei_info(request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(info(state.settings)), content_type="application/json"
        )

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app.router.add_get("/info", tei_info)
    app.router.add_get("/health", health)
    app.router.add_routes(_control_routes(state))
    app.router.add_routes(file_routes(state) + batch_routes(state) + message_batch_routes(state))
    return app
