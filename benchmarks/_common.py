"""Helpers shared by the benchmark scripts: the fake server process, sampling, tables."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    import pyarrow as pa

OUT = Path(__file__).resolve().parent / "out"


@dataclass
class ServerProcess:
    """The fake server running in its own process; ``url`` has no trailing slash."""

    proc: subprocess.Popen[str]
    url: str
    ps: psutil.Process

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=60) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body if body is not None else {}).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read())

    def stats(self, *, requests: bool = True) -> dict[str, Any]:
        return dict(self.get("/_stats" if requests else "/_stats?requests=0"))

    def reset(self) -> None:
        self.post("/_reset")

    def configure(self, **settings: Any) -> None:
        self.post("/_configure", settings)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.ps)


@contextlib.contextmanager
def fake_server(
    *, latency: float = 0.0, per_row_latency: float = 0.0, dim: int = 384
) -> Iterator[ServerProcess]:
    """Start ``python -m endpointr.testing --port 0`` and yield it once it listens."""
    from endpointr.testing.server import server_process

    settings = {"latency": latency, "per_row_latency": per_row_latency, "dim": dim}
    with server_process(**settings) as (proc, url):
        yield ServerProcess(proc, url, psutil.Process(proc.pid))


def cpu_seconds(process: psutil.Process | None = None) -> float:
    """User + system CPU seconds of ``process`` (this one by default), children excluded."""
    times = (process or psutil.Process()).cpu_times()
    return float(times.user + times.system)


def status_mb(field_name: str, pid: int | str = "self") -> float:
    """A memory line of ``/proc/PID/status`` in MB: ``VmRSS`` now or ``VmHWM`` (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field_name)


def busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle, not waiting on I/O)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


@dataclass
class Sampler:
    """Calls ``probe()`` every ``interval`` seconds in a thread; keeps ``(monotonic, value)``."""

    probe: Callable[[], Any]
    interval: float = 0.05
    samples: list[tuple[float, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self.probe()
            except (psutil.Error, OSError):
                return
            self.samples.append((time.monotonic(), value))
            self._stop.wait(self.interval)


def make_texts(count: int, *, seed: int = 0, distinct: int | None = None) -> pa.Array:
    """``count`` texts of about 60-100 characters; ``distinct`` of them differ, then repeat."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    pool = min(count, distinct or count)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = pa.array(["".join(rng.choice(letters, int(n))) for n in rng.integers(4, 10, size=4096)])
    words = [vocab.take(pa.array(rng.integers(0, len(vocab), size=pool))) for _ in range(10)]
    serial = pc.cast(pa.array(np.arange(pool)), pa.string())
    texts = pc.binary_join_element_wise(*words, serial, " ")
    if pool == count:
        return texts
    return texts.take(pa.array(np.arange(count) % pool))


async def aiohttp_loop(
    url: str, batches: Sequence[list[str]], concurrency: int, decode: str = "orjson+numpy"
) -> int:
    """The minimal client: one session, ``concurrency`` workers pulling bodies from a queue.

    ``decode`` is ``json`` (``await resp.json()``), ``orjson`` or ``orjson+numpy`` (a float32
    matrix, as endpointr keeps). Returns the number of rows answered with one vector each.
    """
    import asyncio

    import aiohttp
    import orjson

    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    parse = _decoder(decode)
    headers = {"Content-Type": "application/json"}
    done = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while not queue.empty():
            batch = queue.get_nowait()
            body = orjson.dumps({"inputs": batch, "truncate": True})
            async with session.post(url, data=body, headers=headers) as resp:
                value = await resp.json() if parse is None else parse(await resp.read())
            done += len(batch) if resp.status == 200 and len(value) == len(batch) else 0

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return done


def _decoder(decode: str) -> Callable[[bytes], Any] | None:
    import orjson

    if decode == "json":
        return None
    if decode == "orjson":
        return orjson.loads
    import numpy as np

    return lambda body: np.asarray(orjson.loads(body), dtype=np.float32)


def median_by(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the (lower) median of ``runs``."""
    ordered = sorted(runs, key=lambda r: r[key])
    target = statistics.median_low([r[key] for r in ordered])
    return next(r for r in ordered if r[key] == target)


def fmt(value: float | int | None, digits: int = 0) -> str:
    """A number with thousands separators and ``digits`` decimals; ``-`` for ``None``."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; columns whose header starts with ``#`` are left-aligned text."""
    names = [h.removeprefix("#") for h in headers]
    align = [":---" if h.startswith("#") else "---:" for h in headers]
    lines = ["| " + " | ".join(names) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """One line describing the machine and the software measured."""
    import aiohttp
    import orjson

    import endpointr

    return (
        f"{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} cores · "
        f"{psutil.virtual_memory().total / 2**30:.0f} GB · Python {sys.version.split()[0]} · "
        f"endpointr {endpointr.__version__} · aiohttp {aiohttp.__version__} · "
        f"orjson {orjson.__version__}"
    )


@dataclass
class _ClientProcess:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    ready: dict[str, Any] | None = None


class ClientProcesses:
    """Benchmark clients, each in its own process, speaking JSON lines (see :func:`serve_jobs`).

    ``argv(name)`` is the command that starts client ``name``. :meth:`run` sends one job and
    returns the client's report: each job to a new process, or with ``keep`` every job of a
    client to one process kept for all of them (:meth:`start` them early: they import
    meanwhile). A process that exits, says nothing for ``timeout`` seconds or reports an
    ``error`` is stopped, and the report is ``{"error": ...}``; stderr goes to
    ``logs/NAME.log``. Lines that are not the client's JSON objects (a library's) are skipped.
    """

    def __init__(
        self, argv: Callable[[str], list[str]], logs: Path, *, keep: bool, timeout: float
    ) -> None:
        self.argv, self.logs, self.keep, self.timeout = argv, logs, keep, timeout
        self.procs: dict[str, _ClientProcess] = {}

    def __enter__(self) -> ClientProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.procs):
            self.stop(name)

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("a") as log:
            pipe = subprocess.PIPE
            proc = subprocess.Popen(self.argv(name), stdin=pipe, stdout=pipe, stderr=log, text=True)
        client = self.procs[name] = _ClientProcess(proc, queue.Queue())

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                client.lines.put(line)
            client.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def run(self, name: str, job: dict[str, Any]) -> dict[str, Any]:
        """The report of ``job`` from client ``name``, with its ready report's fields."""
        if name not in self.procs or self.procs[name].proc.poll() is not None:
            self.start(name)
        client = self.procs[name]
        if client.ready is None:
            client.ready = self._next(name, client)
        result = dict(client.ready)
        if "error" not in result:
            assert client.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # then _next reports how it exited
                client.proc.stdin.write(json.dumps(job) + "\n")
                client.proc.stdin.flush()
            result.update(self._next(name, client))
            result.pop("ready", None)
        if not self.keep or "error" in result:
            self.stop(name)
        return result

    def _next(self, name: str, client: _ClientProcess) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = client.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                client.proc.kill()
                return {"error": f"no answer in {self.timeout:.0f} s"}
            if line is None:
                log = (self.logs / f"{name}.log").read_text().strip().splitlines()
                return {"error": f"exited {client.proc.wait()}: {log[-1] if log else ''}"[:200]}
            try:
                found = json.loads(line) if line.startswith("{") else None
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict) and found.get("client") == name:
                return found

    def stop(self, name: str) -> None:
        client = self.procs.pop(name, None)
        if client is None:
            return
        if client.proc.stdin is not None and not client.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                client.proc.stdin.close()
        try:
            client.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            client.proc.kill()
            client.proc.wait()


def serve_jobs(
    name: str, handle: Callable[[dict[str, Any]], dict[str, Any]], ready: dict[str, Any]
) -> None:
    """The client side of :class:`ClientProcesses`: print ``ready`` (once imported), then
    ``handle``'s report of each job line read from stdin, until stdin closes."""
    print(json.dumps({**ready, "client": name, "ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps({**handle(json.loads(line)), "client": name}), flush=True)
