"""A fake inference server for tests, benchmarks and demos.

:class:`FakeServer` is a real HTTP server on 127.0.0.1 that speaks the wire formats of
Hugging Face Inference Endpoints / TEI, OpenAI and Anthropic with deterministic answers,
a latency model, a capacity limit and scripted faults, and records what it saw. It also
runs OpenAI Batch jobs over its Files API and Anthropic Message Batches, on its own clock.
:func:`serve_forever` and :func:`main` run it in the foreground of a process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from ..errors import ServerStartError
from .app import DEFAULT_RANDOM_KINDS, build_app, set_random_faults
from .faults import Fault
from .settings import Settings, add_setting_flags, settings_from_args
from .state import Poison, ServerState, ServerStats

__all__ = [
    "READY",
    "FakeServer",
    "add_arguments",
    "main",
    "serve_forever",
    "serve_from_args",
    "server_process",
    "settings_from_args",
]

_LOOPBACK = "127.0.0.1"
_SHUTDOWN_TIMEOUT = 0.25
_START_TIMEOUT = 30.0


def _loopback(host: str) -> str:
    if host not in (_LOOPBACK, "localhost"):
        raise ValueError(f"the fake server only binds {_LOOPBACK}, not {host!r}")
    return _LOOPBACK


async def _start_site(state: ServerState, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        build_app(state),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


class FakeServer:
    """A deterministic fake of HF/TEI, OpenAI and Anthropic, served on 127.0.0.1.

    ``settings`` are the fields of :class:`~endpointr.testing.Settings` (each one's help
    says what it does), all changeable later with :meth:`configure`; an unknown name or
    an invalid value raises ``ValueError``. ``host`` must be 127.0.0.1 (or localhost);
    ``port`` 0 picks a free port. A stopped server can be started again, and a new one
    on the port it freed (an outage is a stop, then a start).

    Faults, poison and recorded requests are described on their methods. The server
    runs in a daemon thread with its own event loop; every method is thread-safe.
    """

    def __init__(self, *, host: str = _LOOPBACK, port: int = 0, **settings: Any) -> None:
        self._host = _loopback(host)
        self._port = port
        self._state = ServerState(Settings().updated(settings))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; the port is known once :meth:`start` returned."""
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port listened on (0 before :meth:`start` when a free one was asked)."""
        return self._port

    @property
    def settings(self) -> Settings:
        """The current settings."""
        return self._state.settings

    def start(self) -> FakeServer:
        """Start serving in a daemon thread; returns once the port is listening."""
        if self._thread is not None:
            raise RuntimeError("the fake server is already started")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="endpointr-fake-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("the fake server did not start in time")
        if self._error is not None:
            self._thread = None
            raise self._error
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._runner, self._port = loop.run_until_complete(
                _start_site(self._state, self._host, self._port)
            )
        except BaseException as exc:
            self._error = exc
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end; a no-op if not running."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = self._runner = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def configure(self, **settings: Any) -> None:
        """Change :class:`~endpointr.testing.Settings` fields while running; unknown names
        or invalid values raise ``ValueError``."""
        self._state.configure(settings)

    def script(self, *faults: Fault) -> None:
        """Give the next admitted requests these faults, one each, in order.

        Calls add to the queue. ``Fault.ok()`` leaves its request alone. Requests
        rejected on arrival (401, 429 over capacity or rate limit) take no fault.
        """
        self._state.script(faults)

    def random_faults(
        self,
        rate: float = 0.15,
        kinds: Sequence[str] = DEFAULT_RANDOM_KINDS,
        seed: int = 1,
        *,
        delay: float = 1.0,
    ) -> None:
        """Give each admitted, unscripted request a fault with probability ``rate``.

        The fault is drawn from ``kinds`` (names as in :meth:`Fault.from_kind`; ``"429"``
        carries ``Retry-After: retry_after``, ``"delay"`` waits ``delay`` seconds) by a
        generator seeded with ``seed``. A new call replaces the previous one.
        """
        set_random_faults(self._state, rate, tuple(kinds), seed, delay)

    def poison(self, substring: str, status: int = 400, message: str = "input too long") -> None:
        """Answer ``status`` (provider error body with ``message``) to every request with
        a row text containing ``substring`` (chat: the last user message)."""
        self._state.add_poison(Poison(substring, status, message))

    def reset(self) -> None:
        """Forget scripts, random faults, poison, recorded requests, the prompt cache, and
        batch files and jobs."""
        self._state.reset()

    @property
    def stats(self) -> ServerStats:
        """A snapshot of the requests seen since start or the last :meth:`reset`."""
        return self._state.snapshot()


READY = "endpointr fake server listening on "  # then the URL: the one line printed


@contextlib.contextmanager
def server_process(**settings: Any) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The fake server in a process of its own (``python -m endpointr.testing``), each
    of ``settings`` passed as its flag (``per_row_latency=0.002``: ``--per-row-latency
    0.002``); yields the process and its URL once it listens, and stops it after."""
    args = [sys.executable, "-m", "endpointr.testing", "--port", "0"]
    for name, value in settings.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith(READY):
            raise ServerStartError(f"the fake server did not start: {line!r}")
        yield proc, line.removeprefix(READY)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_forever(port: int = 8089, host: str = _LOOPBACK, **settings: Any) -> None:
    """Serve in the foreground until SIGINT or SIGTERM.

    Prints exactly one line, ``endpointr fake server listening on http://127.0.0.1:PORT``,
    to stdout (flushed) once listening. ``settings`` are :class:`FakeServer`'s.
    """
    state = ServerState(Settings().updated(settings))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(state, _loopback(host), port))


async def _serve(state: ServerState, host: str, port: int) -> None:
    runner, bound = await _start_site(state, host, port)
    print(f"{READY}http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--port`` and one flag per setting (``--latency``, ...) to ``parser``."""
    parser.add_argument("--host", default=_LOOPBACK, help="only 127.0.0.1 is allowed")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    add_setting_flags(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake server in the foreground with command-line flags; returns 0."""
    parser = argparse.ArgumentParser(
        prog="endpointr fake-server", description="Deterministic fake HF/OpenAI/Anthropic server."
    )
    add_arguments(parser)
    return serve_from_args(parser.parse_args(argv))


def serve_from_args(args: argparse.Namespace) -> int:
    """Serve with parsed :func:`add_arguments` flags until stopped; 2 when it cannot start."""
    try:
        serve_forever(args.port, args.host, **settings_from_args(args))
    except (ValueError, OSError) as exc:
        print(f"endpointr fake-server: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
