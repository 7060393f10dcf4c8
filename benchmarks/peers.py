"""endpointr beside the clients users would pick instead, on the same fake server.

Clients: endpointr (``hf_embed_df``, and ``oai_embed_df`` for the OpenAI wire format, both
with ``output_dir=None``; ``--endpointr-api batch`` runs ``hf_embed_batch`` /
``oai_embed_batch``), a minimal aiohttp + ``asyncio.Semaphore`` loop with stdlib json (the
floor on client cost), grid.py's aiohttp loop with orjson + numpy (a reference, not a peer),
``huggingface_hub.AsyncInferenceClient``, ``openai.AsyncOpenAI`` and LiteLLM. Each run is a
client process of its own (``peers.py --client NAME``), one at a time, interleaved cell by
cell and client by client, pass after pass; the tables show the median pass. Every client
checks it got one vector per text. Clients that are not installed are reported and skipped.

Scenario A is grid.py's grid: the server answers after 46 ms + 2 ms per row, so the ideal
rate is ``c * b / (0.046 + 0.002 * b)``; b = 1, 4, 8, 16, 32 x c = 1, 5, 10, 20.
Scenario B: zero latency, 64 requests in flight, batch 1 and batch 32.

    pip install -e '.[peers]'              # huggingface_hub, openai, litellm
    python benchmarks/peers.py             # A and B, median of 3 passes (~1.5 h on 2 cores)
    python benchmarks/peers.py --quick     # corner cells, few rows, one pass (< 1 minute)
    python benchmarks/peers.py --scenario B --clients endpointr,aiohttp,openai --repeats 1

``--quick`` keeps one process per client for all its runs (``--keep``), so imports are paid
once. Tables go to stdout and to ``benchmarks/out/peers.md`` (``peers-quick.md`` if quick).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import importlib.util
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from _common import OUT, ClientProcesses, serve_jobs, status_mb

MODEL, DIM, ZERO_CONCURRENCY = "text-embedding-3-small", 384, 64
ZERO_REQUESTS, QUICK_ZERO_REQUESTS = (5000, 1000), (200, 20)
QUICK_SIZES = (0, 0.2, 0.4)  # grid.cell_rows: 0.2-0.4 s of ideal time in whole waves
# No client reaches outside: LiteLLM otherwise fetches its model cost map at import, with
# retries. HF_HUB_OFFLINE is not set: it also refuses the local server's URL.
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


@dataclass(frozen=True)
class Client:
    name: str
    wire: str  # "hf" or "openai": what it speaks, so which endpointr run it is set against
    dists: str  # the distribution that must be installed, then the stack under it
    imports: str  # "module" or "module:name", imported (and resolved) before any clock starts


CLIENTS = (
    Client("endpointr", "hf", "endpointr aiohttp orjson", "endpointr pandas"),
    Client("endpointr-oai", "openai", "endpointr aiohttp orjson", "endpointr pandas"),
    Client("aiohttp", "hf", "aiohttp", "aiohttp"),
    Client("aiohttp+orjson", "hf", "aiohttp orjson numpy", "aiohttp orjson numpy"),
    Client(
        "huggingface_hub", "hf", "huggingface_hub httpx2", "huggingface_hub:AsyncInferenceClient"
    ),
    Client("openai", "openai", "openai httpx2", "openai:AsyncOpenAI"),
    Client("litellm", "openai", "litellm openai httpx", "litellm:aembedding"),
)
HOW = {
    "endpointr": "`hf_embed_df(output_dir=None, progress=False, key_name=None)`",
    "endpointr-oai": "`oai_embed_df(base_url=URL/v1, output_dir=None)`, its default base64",
    "aiohttp": "one `ClientSession`, `TCPConnector(limit=c)`, `asyncio.Semaphore(c)` around "
    "each request, all `gather`ed; stdlib `json` both ways",
    "aiohttp+orjson": "reference, not a peer: `_common.aiohttp_loop` as in grid.py (c workers "
    "over a queue, orjson + numpy)",
    "huggingface_hub": "`AsyncInferenceClient(model=URL).feature_extraction(batch, "
    "truncate=True)` + semaphore; library defaults",
    "openai": "`AsyncOpenAI(base_url=URL/v1).embeddings.create(model, input=batch)` + "
    "semaphore; SDK defaults (base64 vectors, `max_retries=2`)",
    "litellm": f'`litellm.aembedding(model="openai/{MODEL}", api_base=URL/v1)` + semaphore; '
    "float vectors (it sends no `encoding_format`); its bundled cost map",
}
BY_NAME = {client.name: client for client in CLIENTS}
BASE = {"hf": "endpointr", "openai": "endpointr-oai"}


@dataclass(frozen=True)
class Cell:
    scenario: str
    batch: int
    conc: int
    rows: int

    @property
    def requests(self) -> int:
        return math.ceil(self.rows / self.batch)


# ---- the client process: each function imports, builds its inputs, returns the work ----

Run = Callable[[Coroutine[Any, Any, int]], int]
Work = Callable[[], int]


def _fits(vectors: Sequence[Any], batch: Sequence[str], dim: int) -> int:
    """``len(batch)`` when there is one vector of ``dim`` values per text, else 0."""
    if len(vectors) != len(batch) or any(len(v) != dim for v in vectors):
        return 0
    return len(batch)


def _batches(job: dict[str, Any], texts: list[str]) -> list[list[str]]:
    return [texts[i : i + job["batch"]] for i in range(0, len(texts), job["batch"])]


async def _gathered(job: dict[str, Any], batches: list[list[str]], send: Any) -> int:
    """``send`` every batch under a semaphore of ``conc``, all tasks gathered at once."""
    semaphore = asyncio.Semaphore(job["conc"])

    async def one(batch: list[str]) -> int:
        async with semaphore:
            vectors = await send(batch)
        return _fits(vectors, batch, job["dim"])

    return sum(await asyncio.gather(*(one(batch) for batch in batches)))


def _endpointr(job: dict[str, Any], texts: list[str], run: Run) -> Work:
    import numpy as np
    import pandas as pd

    import endpointr

    table, options = job["api"] == "df", {"key_name": None, "progress": False}
    options.update(batch_size=job["batch"], concurrent_requests=job["conc"])
    if job["client"] == "endpointr-oai":
        options.update(base_url=job["url"] + "/v1", model=MODEL)
        call = endpointr.oai_embed_df if table else endpointr.oai_embed_batch
    else:
        options.update(endpoint_url=job["url"])
        call = endpointr.hf_embed_df if table else endpointr.hf_embed_batch
    given: Any = texts
    if table:
        given = pd.DataFrame({"id": np.arange(len(texts), dtype=np.int64), "text": texts})
        options.update(text_var="text", id_var="id", output_dir=None)

    def work() -> int:
        out = call(given, **options)
        return sum(len(v) == job["dim"] for v in out.loc[~out[".error"], "embedding"])

    return work


def _aiohttp(job: dict[str, Any], texts: list[str], run: Run) -> Work:
    import aiohttp

    url, headers = job["url"] + "/", {"Content-Type": "application/json"}
    batches = _batches(job, texts)

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=job["conc"])
        async with aiohttp.ClientSession(connector=connector) as session:

            async def send(batch: list[str]) -> Any:
                body = json.dumps({"inputs": batch, "truncate": True})
                async with session.post(url, data=body, headers=headers) as resp:
                    resp.raise_for_status()
                    return await resp.json()

            return await _gathered(job, batches, send)

    return lambda: run(main())


def _aiohttp_orjson(job: dict[str, Any], texts: list[str], run: Run) -> Work:
    from _common import aiohttp_loop

    batches = _batches(job, texts)
    return lambda: run(aiohttp_loop(job["url"] + "/", batches, job["conc"]))


def _huggingface_hub(job: dict[str, Any], texts: list[str], run: Run) -> Work:
    from huggingface_hub import AsyncInferenceClient

    batches = _batches(job, texts)

    async def main() -> int:
        async with AsyncInferenceClient(model=job["url"]) as client:
            send = functools.partial(client.feature_extraction, truncate=True)
            return await _gathered(job, batches, send)

    return lambda: run(main())


def _openai(job: dict[str, Any], texts: list[str], run: Run) -> Work:
    from openai import AsyncOpenAI

    batches = _batches(job, texts)

    async def main() -> int:
        async with AsyncOpenAI(base_url=job["url"] + "/v1", api_key="unused") as client:

            async def send(batch: list[str]) -> list[Any]:
                reply = await client.embeddings.create(model=MODEL, input=batch)
                return [item.embedding for item in reply.data]

            return await _gathered(job, batches, send)

    return lambda: run(main())


def _litellm(job: dict[str, Any], texts: list[str], run: Run) -> Work:
    import litellm

    litellm.suppress_debug_info = True
    aembedding, where = litellm.aembedding, {"api_base": job["url"] + "/v1", "api_key": "unused"}
    batches = _batches(job, texts)

    async def send(batch: list[str]) -> list[Any]:
        reply = await aembedding(model="openai/" + MODEL, input=batch, **where)
        return [d["embedding"] if isinstance(d, dict) else d.embedding for d in reply.data]

    return lambda: run(_gathered(job, batches, send))


PREPARE = {
    "endpointr": _endpointr,
    "endpointr-oai": _endpointr,
    "aiohttp": _aiohttp,
    "aiohttp+orjson": _aiohttp_orjson,
    "huggingface_hub": _huggingface_hub,
    "openai": _openai,
    "litellm": _litellm,
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_job(job: dict[str, Any], pool: list[str], run: Run) -> dict[str, Any]:
    """One measured run: inputs built first, then wall and CPU (user + system, all threads)
    around the work; peak RSS is ``VmHWM`` (reset first with ``reset_peak``)."""
    try:
        if job["reset_peak"]:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the current RSS
        work = PREPARE[job["client"]](job, pool[: job["rows"]], run)
        cpu0, t0 = _cpu(), time.perf_counter()
        rows = work()
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]}
    return {"rows": int(rows), "wall": wall, "cpu": cpu, "rss_mb": status_mb("VmHWM")}


def client_main(name: str, texts: Path) -> int:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    ready = {"before_mb": status_mb("VmRSS")}
    t0 = time.perf_counter()
    for item in BY_NAME[name].imports.split():
        module, _, attribute = item.partition(":")
        loaded = importlib.import_module(module)
        if attribute:
            getattr(loaded, attribute)  # a lazy package imports what it needs on first access
    ready["import_s"] = time.perf_counter() - t0
    pool = functools.cache(lambda: json.loads(texts.read_text()))  # written after the plan
    with asyncio.Runner() as loop:
        serve_jobs(name, lambda job: run_job({**job, "client": name}, pool(), loop.run), ready)
    return 0


# ---- the parent: plan and measurement ---------------------------------------------------


def grid_cells(quick: bool, only: str | None) -> list[Cell]:
    import grid  # endpointr, numpy, pandas: kept out of the peers' processes

    cells, _ = grid.plan(quick, grid.parse_cells(only) if only else None)
    rows = [grid.cell_rows(c.batch, c.conc, QUICK_SIZES) if quick else c.rows for c in cells]
    return [Cell("A", c.batch, c.conc, n) for c, n in zip(cells, rows, strict=True)]


def zero_cells(requests: Sequence[int]) -> list[Cell]:
    return [Cell("B", b, ZERO_CONCURRENCY, b * n) for b, n in zip((1, 32), requests, strict=True)]


def run_once(clients: ClientProcesses, server: Any, name: str, cell: Cell, api: str) -> Any:
    """One run of client ``name`` on ``cell``, with the server's view of it (requests seen,
    peak in flight, rows per request, its CPU seconds)."""
    job = {"url": server.url, "batch": cell.batch, "conc": cell.conc, "rows": cell.rows}
    job.update(dim=DIM, api=api, reset_peak=clients.keep)
    server.reset()
    srv0 = server.cpu_seconds()
    run = clients.run(name, job)
    run["server_cpu"] = server.cpu_seconds() - srv0
    stats = server.stats(requests=False)
    run.update(seen=stats["request_count"], peak=stats["peak_in_flight"])
    run["per_request"] = sorted(set(stats["rows_per_request"]))
    if "error" not in run:
        run["rate"] = run["rows"] / run["wall"]
    return run


def measure(
    cells: list[Cell], names: list[str], args: argparse.Namespace, clients: ClientProcesses
) -> dict[tuple[Cell, str], list[dict[str, Any]]]:
    """Every (cell, client) ``args.repeats`` times: pass after pass, cell by cell, the
    clients' order rotated by one each pass; each scenario's latency set before its cells."""
    from _common import aiohttp_loop, fake_server, make_texts
    from grid import LATENCY, PER_ROW

    runs: dict[tuple[Cell, str], list[dict[str, Any]]] = {(c, n): [] for c in cells for n in names}
    pool = make_texts(max(cell.rows for cell in cells), seed=1).to_pylist()
    args.texts.write_text(json.dumps(pool))
    with fake_server(dim=DIM) as server:
        warm = [pool[i : i + 32] for i in range(0, len(pool), 32)]
        asyncio.run(aiohttp_loop(server.url + "/", warm, 32))  # fills the server's vector cache
        for scenario in sorted({cell.scenario for cell in cells}):
            latency = (LATENCY, PER_ROW) if scenario == "A" else (0.0, 0.0)
            server.configure(latency=latency[0], per_row_latency=latency[1])
            for p in range(args.repeats):
                order = names[p % len(names) :] + names[: p % len(names)]
                for cell in (c for c in cells if c.scenario == scenario):
                    for name in order:
                        run = run_once(clients, server, name, cell, args.endpointr_api)
                        runs[(cell, name)].append(run)
                        progress(p, cell, name, run)
    return runs


def progress(p: int, cell: Cell, name: str, run: dict[str, Any]) -> None:
    where = f"pass {p + 1} {cell.scenario} b={cell.batch} c={cell.conc} {name}"
    what = run.get("error") or f"{run['rate']:,.1f} rows/s in {run['wall']:.2f} s"
    print(f"{time.strftime('%H:%M:%S')} {where}: {what}", file=sys.stderr, flush=True)


# ---- the report -------------------------------------------------------------------------


def summary(cell: Cell, runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The median run by rows/s and the checks over all runs; ``None`` if a run failed."""
    from _common import median_by

    if not runs or any("error" in run for run in runs):
        return None
    m = dict(median_by(runs, "rate"))
    m["rates"] = [run["rate"] for run in runs]
    m["cpu_ms"] = m["cpu"] / max(1, m["seen"]) * 1e3
    problems = set()
    for run in runs:
        if run["rows"] != cell.rows:
            problems.add(f"{run['rows']} of {cell.rows} rows with a vector")
        if run["seen"] != cell.requests or run["per_request"] != [cell.batch]:
            sizes = "/".join(map(str, run["per_request"]))
            problems.add(f"{run['seen']} requests of {sizes} rows")
        if cell.scenario == "A" and run["peak"] != cell.conc:
            problems.add(f"peak in flight {run['peak']}")
    m["checks"] = "NO: " + "; ".join(sorted(problems)) if problems else "yes"
    return m


def _ratio(m: dict[str, Any], base: dict[str, Any] | None, key: str, name: str) -> str:
    if name in BASE.values():
        return "base"
    return "-" if base is None else f"{m[key] / base[key]:.2f}"


def _row(cell: Cell, name: str, best: dict[str, Any], runs: list[dict[str, Any]]) -> list[Any]:
    from _common import fmt
    from grid import ideal_rate

    head: list[Any] = [cell.batch, cell.conc, name] if cell.scenario == "A" else [cell.batch, name]
    m = best[name]
    if m is None:
        error = next((run["error"] for run in runs if "error" in run), "no runs")
        return [*head, "failed: " + error.replace("|", "/")]
    base = best.get(BASE[BY_NAME[name].wire]) or best.get("endpointr") or best.get("endpointr-oai")
    rate = fmt(m["rate"], 1)
    if len(m["rates"]) > 1:
        rate += f" [{fmt(min(m['rates']), 1)}–{fmt(max(m['rates']), 1)}]"
    if cell.scenario == "A":
        ideal = ideal_rate(cell.batch, cell.conc)
        body = [f"{cell.rows:,}", fmt(ideal, 1), rate, f"{m['rate'] / ideal:.3f}"]
    else:
        body = [f"{m['seen']:,}", fmt(m["rate"] / cell.batch), rate]
    body += [_ratio(m, base, "rate", name), fmt(m["cpu_ms"], 3), _ratio(m, base, "cpu_ms", name)]
    body += [fmt(m["cpu"] / m["wall"], 2), fmt(m["rss_mb"]), fmt(m["server_cpu"] / m["wall"], 2)]
    return [*head, *body, m["checks"]]


def table(cells: list[Cell], names: list[str], runs: dict[tuple[Cell, str], Any]) -> str:
    """One row per (cell, client): the clients of a cell side by side."""
    from _common import markdown_table

    rows = []
    for cell in cells:
        best = {name: summary(cell, runs[(cell, name)]) for name in names}
        rows += [_row(cell, name, best, runs[(cell, name)]) for name in names]
    if cells[0].scenario == "A":
        head = ["b", "c", "#client", "rows", "ideal rows/s", "rows/s", "efficiency"]
    else:
        head = ["b", "#client", "requests", "req/s", "rows/s"]
    head += ["rows/s vs endpointr", "client CPU ms/request", "CPU vs endpointr"]
    head += ["client CPU/wall", "peak RSS MB", "server CPU/wall", "#checks"]
    return markdown_table(head, rows)


def legend(names: list[str], missing: list[str], runs: dict[tuple[Cell, str], Any]) -> str:
    from _common import markdown_table

    rows = []
    for client in (c for c in CLIENTS if c.name in names + missing):
        versions = []
        for dist in client.dists.split():
            try:
                versions.append(f"{dist} {metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                versions.append(f"{dist} not installed")
        found = [r.get("import_s") for (_, n), rs in runs.items() if n == client.name for r in rs]
        found = [seconds for seconds in found if seconds is not None]
        seconds = f"{statistics.median(found):.2f}" if found else "-"
        if client.name in missing:
            versions, seconds = ["not installed, skipped"], "-"
        rows.append([client.name, client.wire, " · ".join(versions), seconds, HOW[client.name]])
    return markdown_table(["#client", "#wire", "#versions", "import s", "#how it is called"], rows)


def method(args: argparse.Namespace, runs: dict[tuple[Cell, str], Any]) -> str:
    before = [r["before_mb"] for rs in runs.values() for r in rs if "before_mb" in r]
    kept = (
        "one process per client for all its runs, all started together, so imports are paid "
        "once and their seconds are contended; VmHWM is reset before each run, so it also "
        "holds what earlier runs kept"
        if args.keep
        else "a new process per run"
    )
    return (
        f"One fake server process (`python -m endpointr.testing`, dim {DIM}, its vector cache "
        f"filled first); each client in its own process ({kept}), one at a time, interleaved "
        f"cell by cell and client by client; the median of {args.repeats} passes by rows/s "
        "(range in brackets). Wall and CPU (user + system, all threads) are taken inside the "
        "client around the work, imports and input building excluded; CPU ms/request divides "
        "by the requests the server saw. Peak RSS is the client's `VmHWM`, imports included "
        "(not `ru_maxrss`: Linux carries the parent's peak into a child's); a client process "
        f"holds {statistics.median(before) if before else 0:.0f} MB before importing its "
        "library. 'vs endpointr': HF-format clients against `endpointr`, OpenAI-format ones "
        "against `endpointr-oai` (rows/s above 1: faster than endpointr; CPU above 1: costlier). "
        "'checks': every text got one vector and the server saw the expected requests of b "
        f"rows (in A also c in flight at its peak). endpointr ran `*_embed_{args.endpointr_api}`."
    )


def report(
    cells: list[Cell], names: list[str], runs: Any, args: argparse.Namespace, missing: list[str]
) -> str:
    from _common import machine_line
    from grid import LATENCY, PER_ROW

    parts = [f"## endpointr beside its peers ({machine_line()})", method(args, runs)]
    parts.append(legend(names, missing, runs))
    if missing:
        parts.append("Not installed (skipped): " + ", ".join(missing) + ".")
    titles = {
        "A": f"A. Latency grid: {LATENCY * 1e3:.0f} ms + {PER_ROW * 1e3:.0f} ms per row",
        "B": f"B. Zero latency, {ZERO_CONCURRENCY} requests in flight",
    }
    notes = {
        "A": "Efficiency: rows/s over the ideal `c * b / (latency + per-row latency * b)`.",
        "B": "The server answers at once, so its peak in flight is not checked; 'server "
        "CPU/wall' near 1 means the server, not the client, set the pace.",
    }
    for scenario, title in titles.items():
        group = [cell for cell in cells if cell.scenario == scenario]
        if group and names:
            parts += [f"### {title}", notes[scenario], table(group, names, runs)]
    return "\n\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="corner cells, few rows, one pass")
    add("--repeats", type=int, default=None, help="passes (default 3, quick 1)")
    add("--scenario", choices=("A", "B", "all"), default="all", help="A grid, B zero latency")
    add("--clients", default=",".join(BY_NAME), help="comma-separated (default: all)")
    add("--cells", default=None, help="only these grid cells, e.g. 32x20,1x20")
    add("--zero-requests", default=None, help="B requests at b=1,b=32 (default 5000,1000)")
    add("--endpointr-api", choices=("df", "batch"), default="df", help="*_embed_df or _batch")
    keep = "one process per client for all its runs (default: with --quick only)"
    add("--keep", action=argparse.BooleanOptionalAction, default=None, help=keep)
    add("--timeout", type=float, default=900.0, help="seconds a run may take")
    add("--out", type=Path, default=None, help="markdown file (default out/peers[-quick].md)")
    add("--client", choices=tuple(BY_NAME), help=argparse.SUPPRESS)
    add("--texts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.keep = args.quick if args.keep is None else args.keep
    args.out = args.out or OUT / ("peers-quick.md" if args.quick else "peers.md")
    default = QUICK_ZERO_REQUESTS if args.quick else ZERO_REQUESTS
    given = [int(n) for n in (args.zero_requests or "").split(",") if n.strip()]
    args.zero_requests = (given * 2)[:2] if given else default
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main(args.client, args.texts)
    names = [name.strip() for name in args.clients.split(",") if name.strip()]
    if unknown := sorted(set(names) - set(BY_NAME)):
        raise SystemExit(f"unknown clients {unknown}; known: {list(BY_NAME)}")
    top = {n: BY_NAME[n].imports.split()[0].partition(":")[0] for n in names}
    installed = {n: importlib.util.find_spec(top[n]) for n in names}
    missing = [name for name in names if installed[name] is None]
    for name in missing:
        print(f"{name}: not installed, skipped (pip install -e '.[peers]')", file=sys.stderr)
    names = [name for name in names if name not in missing]
    with tempfile.TemporaryDirectory(prefix="endpointr-peers-") as tmp:
        args.texts = Path(tmp) / "texts.json"
        me = [sys.executable, str(Path(__file__).resolve()), "--texts", str(args.texts)]

        def argv_of(name: str) -> list[str]:
            return [*me, "--client", name]

        with ClientProcesses(argv_of, Path(tmp), keep=args.keep, timeout=args.timeout) as clients:
            for name in names if args.keep else ():
                clients.start(name)  # they import while the plan and the server are made
            cells = [] if args.scenario == "B" else grid_cells(args.quick, args.cells)
            cells += [] if args.scenario == "A" else zero_cells(args.zero_requests)
            runs = measure(cells, names, args, clients) if names else {}
    text = report(cells, names, runs, args, missing)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"(written to {args.out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
