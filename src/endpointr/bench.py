"""``batch_size`` x ``concurrent_requests``: the throughput grid of an endpoint, measured.

:func:`bench` runs the same rows through an endpoint once per cell of the grid and
returns one row per cell: rows/s, request latency (p50, p95), error rows, 429s, and, on
the bundled fake endpoint, the efficiency against the ideal its latency model allows.
:func:`write_report` writes ``bench.csv``, ``bench.md`` and, with matplotlib
(``pip install "endpointr[plot]"``), ``throughput.png`` and ``heatmap.png``.

Without an endpoint the grid runs against the fake server in a process of its own, with
the latency model fitted to EndpointR's measurement of a Hugging Face endpoint: 0.25 s
plus 0.025 s per row, and a server that holds 20 requests at once and answers 429 beyond.
``time_scale`` (default 0.1) runs it ten times faster, so the grid takes about a minute;
its rows/s are then ten times the real endpoint's, its efficiencies the same.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import redact_url
from .engine.calls import run_whole
from .engine.sync import run_sync
from .errors import ConfigError, InputError
from .providers.registry import ENDPOINTS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SEED_BATCH_SIZES",
    "SEED_CONCURRENT_REQUESTS",
    "SeedModel",
    "bench",
    "write_report",
]

SEED_BATCH_SIZES = (1, 4, 8, 16, 32)
SEED_CONCURRENT_REQUESTS: tuple[int | str, ...] = (1, 5, 10, 20)
# every row is sent and nothing is kept: the cells measure the endpoint, not a cache
_QUIET = {"dedupe": False, "output_dir": None, "progress": False}
_COLUMNS = [
    "batch_size",
    "concurrent_requests",
    "rows",
    "seconds",
    "rows_per_s",
    "requests",
    "p50_ms",
    "p95_ms",
    "error_rows",
    "http_429",
    "peak_in_flight",
    "ideal_rows_per_s",
    "efficiency",
]


@dataclass(frozen=True)
class SeedModel:
    """The fake endpoint: a request of ``b`` rows takes ``latency + per_row * b`` seconds
    (times ``time_scale``); at most ``capacity`` are served at once, more get 429."""

    latency: float = 0.25
    per_row: float = 0.025
    capacity: int = 20
    time_scale: float = 0.1

    def seconds(self, batch: int) -> float:
        return (self.latency + self.per_row * batch) * self.time_scale

    def ideal(self, batch: int, concurrency: int | str, ceiling: int) -> float:
        """Rows/s with every slot busy all the time, at most ``capacity`` of them."""
        slots = ceiling if concurrency == "auto" else int(concurrency)
        return min(slots, self.capacity) * batch / self.seconds(batch)


def bench(
    *,
    endpoint_url: str | None = None,
    provider: str = "hf",
    base_url: str | None = None,
    model: str | None = None,
    local: bool = False,
    batch_sizes: Sequence[int] = SEED_BATCH_SIZES,
    concurrent_requests: Sequence[int | str] = SEED_CONCURRENT_REQUESTS,
    rows: int | None = None,
    df: Any = None,
    text_var: str = "text",
    key_name: str | None = "default",
    seed_model: SeedModel | None = None,
    max_concurrent_requests: int = 200,
    out: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The grid of ``batch_sizes`` x ``concurrent_requests`` (numbers or ``"auto"``) as a
    frame, one row per cell.

    The endpoint: ``endpoint_url`` (Hugging Face / TEI embeddings), ``provider="openai"``
    with ``base_url`` and ``model`` (OpenAI or any server of its embeddings route),
    ``local=True`` (the bundled local model), or none of them: the fake endpoint of
    ``seed_model``. ``rows`` per cell (default: 2,000 on a real endpoint, as EndpointR's
    measurement; on the fake one enough for about two seconds of each cell). The texts
    are ``df[text_var]`` (a frame or a file), cycled to ``rows``, or the bundled reviews.
    Every row is sent (``dedupe=False``). ``key_name="default"`` reads the endpoint's
    own environment variable (``HF_API_KEY``, ``OPENAI_API_KEY``); ``None`` sends no key.
    ``out`` also writes the report there.
    """
    import pandas as pd

    _check_grid(batch_sizes, concurrent_requests)
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise ConfigError(f"rows must be a positive integer, got {rows!r}")
    fake = endpoint_url is None and base_url is None and not local
    model_ = seed_model or SeedModel()
    texts = _texts(df, text_var)
    cells = [(b, c) for b in batch_sizes for c in concurrent_requests]
    counts = [rows or _cell_rows(b, c, model_, max_concurrent_requests, fake) for b, c in cells]
    pool = _distinct(texts, max(counts))
    with _endpoint(fake, model_) as where:
        kind, call, shown = _call(where, provider, endpoint_url, base_url, model, local, key_name)
        if fake:  # the fake server keeps the vectors it made: make them all before timing
            warm = {"batch_size": 32, "concurrent_requests": 20, "progress": False}
            frame = pd.DataFrame({"id": range(len(pool)), "text": pool})
            run_sync(run_whole(ENDPOINTS[kind], frame, "text", "id", {**call, **warm, **_QUIET}))
        found = []
        for number, ((batch, conc), count) in enumerate(zip(cells, counts, strict=True), 1):
            frame = pd.DataFrame({"id": range(count), "text": pool[:count]})
            cell = {
                **call,
                "batch_size": batch,
                "concurrent_requests": conc,
                "max_concurrent_requests": max_concurrent_requests,
                **_QUIET,
            }
            if progress:
                print(
                    f"[{number}/{len(cells)}] batch_size={batch} concurrent_requests={conc}: "
                    f"{count:,} rows ...",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            if fake:
                _fake_reset(where)
            started = time.perf_counter()
            outcome = run_sync(run_whole(ENDPOINTS[kind], frame, "text", "id", cell, collect=False))
            seconds = time.perf_counter() - started
            stats = outcome.stats
            peak = _fake_peak(where) if fake else None
            ideal = model_.ideal(batch, conc, max_concurrent_requests) if fake else None
            rate = count / seconds
            found.append(
                {
                    "batch_size": batch,
                    "concurrent_requests": str(conc),
                    "rows": count,
                    "seconds": round(seconds, 3),
                    "rows_per_s": round(rate, 1),
                    "requests": stats.requests,
                    "p50_ms": _ms(stats.latency.percentile(50)),
                    "p95_ms": _ms(stats.latency.percentile(95)),
                    "error_rows": stats.failed,
                    "http_429": stats.overloaded,
                    "peak_in_flight": peak,
                    "ideal_rows_per_s": round(ideal, 1) if ideal else None,
                    "efficiency": round(rate / ideal, 3) if ideal else None,
                }
            )
            if progress:
                print(f" {rate:,.1f} rows/s", file=sys.stderr)
    table = pd.DataFrame(found, columns=_COLUMNS)
    table.attrs["endpoint"] = "fake (seed model)" if fake else redact_url(shown)
    table.attrs["seed_model"] = model_ if fake else None
    if out is not None:
        write_report(table, out)
    return table


def write_report(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """``bench.csv``, ``bench.md`` and (with matplotlib) the two PNGs in ``out``; the
    paths written."""
    where = Path(out)
    where.mkdir(parents=True, exist_ok=True)
    written = [where / "bench.csv", where / "bench.md"]
    table.to_csv(written[0], index=False)
    written[1].write_text(markdown(table), encoding="utf-8")
    try:
        from . import plots
    except ImportError:
        return written
    written += plots.write_plots(table, where)
    return written


def markdown(table: pd.DataFrame) -> str:
    """The report as Markdown: how it was measured, the grid of rows/s, every cell."""
    lines = ["# endpointr bench", ""]
    seed = table.attrs.get("seed_model")
    if seed is not None:
        lines += [
            f"Endpoint: the bundled fake server, {seed.latency} s + {seed.per_row} s per row "
            f"(x{seed.time_scale} time scale), {seed.capacity} requests at once, 429 beyond. "
            "Efficiency is measured / ideal rows/s.",
            "",
        ]
    else:
        lines += [f"Endpoint: {table.attrs.get('endpoint', '?')}", ""]
    pivot = table.pivot(index="batch_size", columns="concurrent_requests", values="rows_per_s")
    pivot = pivot[list(dict.fromkeys(table["concurrent_requests"]))]
    lines += ["## Rows per second", ""]
    lines.append("| batch_size | " + " | ".join(f"c={c}" for c in pivot.columns) + " |")
    lines.append("|---:|" + "---:|" * len(pivot.columns))
    for batch, values in pivot.iterrows():
        lines.append(f"| {batch} | " + " | ".join(f"{v:,.1f}" for v in values) + " |")
    lines += ["", "## Every cell", ""]
    shown = table.fillna("-")
    lines.append("| " + " | ".join(_COLUMNS) + " |")
    lines.append("|" + "---:|" * len(_COLUMNS))
    for record in shown.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in record) + " |")
    return "\n".join(lines) + "\n"


def _check_grid(batch_sizes: Sequence[int], concurrent: Sequence[int | str]) -> None:
    if not batch_sizes or not concurrent:
        raise ConfigError("batch_sizes and concurrent_requests need at least one value each")
    for b in batch_sizes:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ConfigError(f"batch sizes must be positive integers, got {b!r}")
    for c in concurrent:
        if c != "auto" and (isinstance(c, bool) or not isinstance(c, int) or c < 1):
            raise ConfigError(f"concurrent_requests must be positive integers or 'auto', got {c!r}")


def _cell_rows(batch: int, conc: int | str, model: SeedModel, ceiling: int, fake: bool) -> int:
    """Rows for a cell: 2,000 on a real endpoint; on the fake one about two seconds of
    the ideal (at least 20 full waves of requests, at most 20,000 rows)."""
    if not fake:
        return 2000
    ideal = model.ideal(batch, conc, ceiling)
    slots = min(ceiling if conc == "auto" else int(conc), model.capacity)
    wave = batch * slots
    rows = min(max(ideal * 2.0, 20 * wave), 20_000)
    return max(wave, math.ceil(rows / wave) * wave)


def _texts(df: Any, text_var: str) -> list[str]:
    """The texts to send: ``df[text_var]`` of a frame or file, else the bundled reviews."""
    if df is None:
        from .datasets import reviews

        return [str(t) for t in reviews()["text"]]
    if isinstance(df, str | Path):
        df = _read_column(Path(df), text_var)
    try:
        column = df.column(text_var).to_pylist() if hasattr(df, "column") else list(df[text_var])
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"text_var={text_var!r} is not a column of the input ({exc})") from None
    texts = [t for t in column if isinstance(t, str) and t.strip()]
    if not texts:
        raise InputError(f"column {text_var!r} holds no texts to send")
    return texts


def _read_column(path: Path, text_var: str) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise InputError(f"input file not found: {str(path)!r}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path, columns=[text_var])
        if suffix == ".csv":
            options = pacsv.ConvertOptions(include_columns=[text_var])
            return pacsv.read_csv(path, convert_options=options)
        if suffix in (".jsonl", ".ndjson"):
            import pandas as pd

            return pd.read_json(path, lines=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read column {text_var!r} of {str(path)!r}: {exc}") from None
    raise InputError(f"cannot read {str(path)!r}: use a .csv, .parquet or .jsonl file")


def _distinct(texts: list[str], count: int) -> list[str]:
    """``count`` distinct texts from ``texts``, cycled and numbered past their end."""
    if count <= len(texts) and len(set(texts[:count])) == count:
        return texts[:count]
    return [f"{texts[i % len(texts)]} ({i})" for i in range(count)]


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


@contextlib.contextmanager
def _endpoint(fake: bool, model: SeedModel) -> Iterator[str | None]:
    """The fake server's URL (started in a process of its own), or ``None``."""
    if not fake:
        yield None
        return
    from .testing.server import server_process

    with server_process(
        latency=model.latency * model.time_scale,
        per_row_latency=model.per_row * model.time_scale,
        capacity=model.capacity,
        retry_after=model.time_scale,
    ) as (_, url):
        yield url


def _call(
    fake_url: str | None,
    provider: str,
    endpoint_url: str | None,
    base_url: str | None,
    model: str | None,
    local: bool,
    key_name: str | None,
) -> tuple[str, dict[str, Any], str]:
    """The registered endpoint to run, the keywords of its call, and what to call it."""
    keys: dict[str, Any] = {} if key_name == "default" else {"key_name": key_name}
    if fake_url is not None:
        return "hf.embed", {"endpoint_url": f"{fake_url}/embed", "key_name": None}, "fake"
    if local:
        return "hf.embed", {"endpoint_url": "local"}, "the bundled local model"
    if provider == "openai":
        if base_url is None:
            raise ConfigError("provider='openai' needs base_url (e.g. https://api.openai.com/v1)")
        call = {"base_url": base_url, **keys}
        if model:
            call["model"] = model
        return "openai.embed", call, base_url
    if provider != "hf":
        raise ConfigError(f"provider must be 'hf' or 'openai', got {provider!r}")
    if endpoint_url is None:
        raise ConfigError("give endpoint_url (Hugging Face / TEI) or base_url (openai)")
    return "hf.embed", {"endpoint_url": endpoint_url, **keys}, endpoint_url


def _fake_get(url: str | None, path: str) -> Any:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}{path}", timeout=30) as response:
        return json.loads(response.read())


def _fake_reset(url: str | None) -> None:
    import urllib.request

    request = urllib.request.Request(f"{url}/_reset", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass


def _fake_peak(url: str | None) -> int:
    return int(_fake_get(url, "/_stats?requests=0")["peak_in_flight"])
