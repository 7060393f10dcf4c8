"""A server started around a run: the endpoint's :class:`~endpointr.types.Launch`, on a
free loopback port, waited for until it answers, stopped at the end.

It never outlives the process that started it. It is stopped (SIGTERM, then SIGKILL)
when the run ends, fails or is interrupted; it runs in a session of its own, so Ctrl-C
in the terminal reaches only the run, which finishes what is in flight before the server
goes. If this process dies without stopping it (``kill -9``), the child side
(``_tether.py``) sees the pipe from this process close and exits at once.

    with ChildServer(launch) as server:   # or: async with
        server.url                         # http://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TypeVar

from ..errors import ConfigError, ServerStartError
from ..providers.base import Endpoint
from ..types import Launch

__all__ = ["HOST", "ChildServer", "free_port", "served"]

HOST = "127.0.0.1"
E = TypeVar("E", bound=Endpoint)

_TETHER = Path(__file__).with_name("_tether.py")
_POLL = 0.05
_PROBE_TIMEOUT = 2.0
_STOP_GRACE = 3.0
_PORT_TRIES = 3
_TAIL = 1500


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) == 0


class ChildServer:
    """The server ``launch`` describes, in a child process, for the length of a ``with``.

    ``port=None`` picks a free one (and another if that one is taken before the server
    binds it). Entering raises :class:`ServerStartError` when the server exits or does not
    answer ``GET launch.ready_path`` within ``launch.start_timeout`` seconds.
    """

    def __init__(self, launch: Launch, *, port: int | None = None) -> None:
        self.launch = launch
        self.fixed_port = port
        self.port = 0
        self.started_in = 0.0
        self._started = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc else None

    def __enter__(self) -> ChildServer:
        try:
            for _ in range(self._tries):
                self._spawn()
                while not self._check_ready():
                    time.sleep(_POLL)
                if self._proc is not None:
                    return self
        except BaseException:
            self.stop()
            raise
        raise self._no_port()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ChildServer:
        try:
            for _ in range(self._tries):
                self._spawn()
                while not await asyncio.to_thread(self._check_ready):
                    await asyncio.sleep(_POLL)
                if self._proc is not None:
                    return self
        except BaseException:
            self.stop()
            raise
        raise self._no_port()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> int:
        """Block until the server exits (``endpointr serve-local``); its exit status."""
        assert self._proc is not None, "the server is not running"
        return self._proc.wait()

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after a grace period. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def _tries(self) -> int:
        return 1 if self.fixed_port else _PORT_TRIES

    def _taken(self) -> ServerStartError:
        return ServerStartError(
            f"{self.launch.name} cannot listen on {HOST}:{self.port}: the port is taken"
        )

    def _no_port(self) -> ServerStartError:
        return ServerStartError(
            f"{self.launch.name} found its port taken {self._tries} times; try again"
        )

    def _spawn(self) -> None:
        self.port = self.fixed_port or free_port()
        if self.fixed_port and _listening(self.port):
            # another server would answer the readiness probe in this one's place
            raise self._taken()
        args = [a.format(host=HOST, port=self.port) for a in self.launch.args]
        # -P: the tether's folder (this package) must not shadow the server's imports
        argv = [sys.executable, "-P", str(_TETHER), str(os.getpid()), self.launch.module, *args]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._started = time.monotonic()
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )

    def _check_ready(self) -> bool:
        """Whether the server answers; ``True`` with no process when it exited (in a
        way worth another port), and :class:`ServerStartError` when it cannot start."""
        proc = self._proc
        assert proc is not None
        code = proc.poll()
        if code is not None:
            output = self._output()
            self.stop()
            if "Address already in use" in output:
                if not self.fixed_port:
                    return True  # taken between our check and the server's bind: try another
                raise self._taken()
            raise ServerStartError(
                f"{self.launch.name} exited with status {code} before it answered"
                + (f":\n{output}" if output else "")
            )
        if self._answers():
            self.started_in = time.monotonic() - self._started
            return True
        if time.monotonic() - self._started > self.launch.start_timeout:
            output = self._output()
            self.stop()
            raise ServerStartError(
                f"{self.launch.name} did not answer on {self.url} within "
                f"{self.launch.start_timeout:g} s" + (f":\n{output}" if output else "")
            )
        return False

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=_PROBE_TIMEOUT)
        try:
            connection.request("GET", self.launch.ready_path)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace").strip()
        return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


@contextlib.asynccontextmanager
async def served(endpoint: E) -> AsyncIterator[E]:
    """``endpoint`` ready to send to: itself when its URL is served already, else sending
    to the server its :meth:`~endpointr.providers.base.Endpoint.launch` describes, started
    here and stopped when the block ends."""
    launch = endpoint.launch()
    if launch is None:
        yield endpoint
        return
    async with ChildServer(launch) as server:
        yield endpoint.served_at(server.url)


def check_port(port: int) -> int:
    """``port`` if it is a TCP port number, else a :class:`ConfigError`."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"port must be between 1 and 65535, got {port!r}")
    return port
