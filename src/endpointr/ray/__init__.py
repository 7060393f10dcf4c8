"""endpointr's endpoints as Ray Data stages, with one budget shared by every worker.

Each function takes and returns a :class:`ray.data.Dataset` and takes the keywords of
its ``*_df`` twin (``hf_embed_ds`` those of :func:`~endpointr.hf_embed_df`, ...), plus
``workers``, the number of actors that send, and ``batch_size_rows``, the rows each call
of a worker gets. ``concurrent_requests`` (a number or ``"auto"``),
``requests_per_minute`` and ``tokens_per_minute`` are the budget of all workers
together:

- one :class:`Budget` actor holds the in-flight limit of the whole stage (the adaptive
  controller of ``"auto"`` included); each worker sends within its share of it, and
  leases a new share in the background every 64 answers or 0.25 s, never a remote call
  per request. An overload answer (429, 529, a timeout) is reported at once, so every
  worker slows down on one;
- the request and token rates are split evenly over the workers.

Every row comes back once, as a value or an error row, with the columns of the ``*_df``
function (a block whose rows the server refuses all alike, or a server that stays down,
gives error rows that say so rather than abort the dataset); vector columns are
``list<float32>`` in every block (a block of error rows alone has the same schema as the
others), so ``ds.write_parquet`` works. Ids must be unique over the dataset. Needs
``pip install "endpointr[ray]"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import ray

from ..engine.calls import _endpoint, run_options, run_whole
from ..engine.flow import Flow
from ..engine.limits import ConcurrencyLimit
from ..engine.options import AUTO_START, SHARED_FLOW
from ..engine.sync import run_sync
from ..errors import ConfigError, RunStoppedError
from ..io.chunks import results_table
from ..providers.anthropic import AnthropicMessages
from ..providers.base import Endpoint
from ..providers.hf import HFEmbed
from ..providers.hf_classify import HFClassify
from ..providers.openai import OpenAIChat, OpenAIEmbed
from ..types import Result

__all__ = [
    "Budget",
    "EndpointStage",
    "SharedLimit",
    "ant_complete_ds",
    "hf_classify_ds",
    "hf_embed_ds",
    "oai_complete_ds",
    "oai_embed_ds",
]

_SYNC_EVERY = 64  # answers between two leases
_SYNC_SECONDS = 0.25
_LOOK_EVERY = 8  # answers between two looks at whether a lease has come back
_BACKOFF = 0.7


class Budget:
    """The in-flight limit of all workers of a stage (run as a Ray actor).

    Workers :meth:`join` to get their index, then :meth:`report` their answers'
    latencies and overloads in batches; each report returns the worker's share of the
    limit. The shares add up to the limit, each at least one."""

    def __init__(self, concurrent_requests: int | str, maximum: int, workers: int) -> None:
        auto = concurrent_requests == "auto"
        start = min(max(AUTO_START, workers), maximum) if auto else int(concurrent_requests)
        self.limit = ConcurrencyLimit(
            start, auto=auto, minimum=workers, maximum=maximum if auto else start
        )
        self.workers = workers
        self.joined = 0
        self.reports = 0
        self.answers = 0
        self.overloads = 0
        self.worker_seconds = 0.0

    def join(self) -> tuple[int, int]:
        index = self.joined % self.workers
        self.joined += 1
        return index, self.share(index)

    def share(self, index: int) -> int:
        base, extra = divmod(self.limit.value, self.workers)
        return max(1, base + (1 if index < extra else 0))

    def report(
        self, index: int, latencies: list[float], overloads: list[float], seconds: float
    ) -> int:
        now = time.monotonic()
        for latency in latencies:
            self.limit.on_success(latency)
        for age in overloads:
            self.limit.on_overload(now - age, now)
        self.reports += 1
        self.answers += len(latencies) + len(overloads)
        self.overloads += len(overloads)
        self.worker_seconds += seconds
        return self.share(index)

    def stats(self) -> dict[str, Any]:
        return {
            "limit": self.limit.value,
            "reports": self.reports,
            "answers": self.answers,
            "overloads": self.overloads,
            "worker_seconds": self.worker_seconds,
        }


class SharedLimit:
    """A worker's share of a :class:`Budget`, in the place of its own
    :class:`~endpointr.engine.limits.ConcurrencyLimit`: the engine reads ``value`` and
    tells ``on_success`` / ``on_overload`` as it would its own limit."""

    def __init__(self, budget: Any, index: int, share: int) -> None:
        self.value = share
        self._budget, self._index = budget, index
        self._latencies: list[float] = []
        self._overloads: list[float] = []
        self._pending: Any = None
        self._last = time.monotonic()
        self._spent = 0.0
        self._calls = 0

    def on_success(self, latency: float) -> None:
        self._latencies.append(latency)
        self._sync(force=False)

    def on_overload(
        self,
        sent_at: float = 0.0,
        now: float = 0.0,
        *,
        at_most: int | None = None,
        seen: int | None = None,
    ) -> None:
        self._overloads.append(max(0.0, now - sent_at))
        self.value = max(1, min(int(self.value * _BACKOFF), at_most or self.value))
        self._sync(force=True)

    def _sync(self, *, force: bool) -> None:
        started = time.perf_counter()
        self._calls += 1
        if self._pending is not None and (force or self._calls % _LOOK_EVERY == 0):
            ready, _ = ray.wait([self._pending], timeout=0)
            if ready:
                self.value = int(ray.get(ready[0]))
                self._pending = None
        due = len(self._latencies) >= _SYNC_EVERY or time.monotonic() - self._last >= _SYNC_SECONDS
        if self._pending is None and (force or due) and (self._latencies or self._overloads):
            spent = self._spent + time.perf_counter() - started
            self._pending = self._budget.report.remote(
                self._index, self._latencies, self._overloads, spent
            )
            self._latencies, self._overloads, self._spent = [], [], 0.0
            self._last = time.monotonic()
            return
        self._spent += time.perf_counter() - started

    def adapt(self, flow: Flow) -> Flow:
        """``flow`` sending within this share."""
        flow.limit = self  # type: ignore[assignment]
        return flow


class EndpointStage:
    """The callable class for :meth:`ray.data.Dataset.map_batches`: runs each batch (an
    Arrow table) through the endpoint with the worker's share of the budget."""

    def __init__(
        self,
        endpoint: type[Endpoint],
        call: dict[str, Any],
        text_var: str,
        id_var: str,
        budget: Any,
    ) -> None:
        self._cls, self._call = endpoint, call
        self._text_var, self._id_var = text_var, id_var
        index, share = ray.get(budget.join.remote())
        self._limit = SharedLimit(budget, index, share)

    def __call__(self, batch: pa.Table) -> pa.Table:
        token = SHARED_FLOW.set(self._limit.adapt)
        try:
            table = run_sync(run_whole(self._cls, batch, self._text_var, self._id_var, self._call))
        except RunStoppedError as exc:
            # the block's rows refused alike, or the server down: each row an error row
            # that says so (re-run the failed ids later), never a whole dataset aborted
            table = self._failed(batch, f"{type(exc).__name__}: {exc}")
        finally:
            SHARED_FLOW.reset(token)
        return steady_schema(table)

    def _failed(self, batch: pa.Table, message: str) -> pa.Table:
        ids = batch.column(self._id_var).combine_chunks()
        endpoint = _endpoint(self._cls, self._call).for_columns((self._id_var,))
        results = [Result.failed(i, message) for i in ids.to_pylist()]
        return endpoint.finalize(results_table(results, endpoint, self._id_var, ids.type))


def steady_schema(table: pa.Table) -> pa.Table:
    """``table`` with vector columns as ``list<float32>``: every block the same schema,
    whether or not it holds a vector."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_fixed_size_list(kind) or (
            pa.types.is_list(kind) and pa.types.is_null(kind.value_type)
        ):
            kind = pa.list_(pa.float32())
        fields.append(field.with_type(kind))
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)


def _stage(
    cls: type[Endpoint],
    ds: Any,
    text_var: str,
    id_var: str,
    workers: int,
    batch_size_rows: int,
    num_cpus: float,
    call: dict[str, Any],
) -> Any:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if (
        isinstance(batch_size_rows, bool)
        or not isinstance(batch_size_rows, int)
        or batch_size_rows < 1
    ):
        raise ConfigError(f"batch_size_rows must be a positive integer, got {batch_size_rows!r}")
    for name in ("output_dir", "retry_failed", "overwrite", "cache_dir"):
        if call.get(name):
            raise ConfigError(
                f"{name} is not for a Ray stage: write the dataset with ds.write_parquet"
            )
    call = {**call, "output_dir": None, "progress": False}
    _endpoint(cls, call)  # every check of the endpoint's keywords, before any request
    options = run_options(cls, call)
    concurrency = options.concurrent_requests
    if concurrency != "auto" and int(concurrency) < workers:
        raise ConfigError(
            f"concurrent_requests={concurrency} is less than workers={workers}: each worker "
            "needs at least one request in flight"
        )
    for name in ("requests_per_minute", "tokens_per_minute"):
        if call.get(name):
            call[name] = float(call[name]) / workers  # each worker's even share
    budget = (
        ray.remote(Budget)
        .options(num_cpus=0)
        .remote(concurrency, options.max_concurrent_requests, workers)
    )
    out = ds.map_batches(
        EndpointStage,
        fn_constructor_kwargs={
            "endpoint": cls,
            "call": call,
            "text_var": text_var,
            "id_var": id_var,
            "budget": budget,
        },
        batch_format="pyarrow",
        batch_size=batch_size_rows,
        concurrency=workers,
        num_cpus=num_cpus,
    )
    out._endpointr_budget = budget  # kept alive with the dataset; read by benchmarks
    return out


def _maker(cls: type[Endpoint], name: str, twin: str) -> Callable[..., Any]:
    def stage(
        ds: Any,
        *,
        text_var: str,
        id_var: str,
        workers: int = 2,
        batch_size_rows: int = 1000,
        num_cpus: float = 0.25,
        **keywords: Any,
    ) -> Any:
        return _stage(cls, ds, text_var, id_var, workers, batch_size_rows, num_cpus, keywords)

    stage.__name__ = stage.__qualname__ = name
    stage.__doc__ = (
        f"Run every row of the Ray dataset ``ds`` through the endpoint of "
        f":func:`~endpointr.{twin}`, with its keywords; ``workers`` actors send, within one "
        "shared budget. Returns a lazy dataset of the same columns as the frame "
        f"``{twin}`` returns (error rows included). Raises "
        ":class:`~endpointr.errors.ConfigError` for a bad keyword before any request."
    )
    return stage


hf_embed_ds = _maker(HFEmbed, "hf_embed_ds", "hf_embed_df")
hf_classify_ds = _maker(HFClassify, "hf_classify_ds", "hf_classify_df")
oai_embed_ds = _maker(OpenAIEmbed, "oai_embed_ds", "oai_embed_df")
oai_complete_ds = _maker(OpenAIChat, "oai_complete_ds", "oai_complete_df")
ant_complete_ds = _maker(AnthropicMessages, "ant_complete_ds", "ant_complete_df")
