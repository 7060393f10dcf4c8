"""The callable class for :meth:`ray.data.Dataset.map_batches`, and the stage built on it."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import ray

from ..engine.calls import _endpoint, run_options, run_whole
from ..engine.options import SHARED_FLOW
from ..engine.sync import run_sync
from ..errors import ConfigError, RunStoppedError
from ..io.chunks import results_table
from ..providers.base import Endpoint
from ..types import Result
from .budget import Budget, SharedLimit

__all__ = ["NOT_FOR_A_STAGE", "EndpointStage", "build_stage", "steady_schema"]

# keywords of the *_df functions about files of their own, which a stage leaves to Ray
NOT_FOR_A_STAGE = ("output_dir", "chunk_size", "overwrite", "retry_failed", "cache_dir", "wide")


class EndpointStage:
    """Runs each batch (an Arrow table) through the endpoint with the worker's share of
    the stage's :class:`~endpointr.ray.budget.Budget`; for ``map_batches`` with
    ``batch_format="pyarrow"`` and an actor pool.

    ``call`` holds the keywords of the ``*_df`` function, ``budget`` the handle of the
    stage's budget actor. Returns a table of the ``*_df`` function's columns, one row per
    input row, in the schema every other block has."""

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
        self._budget = budget
        self._columns = _endpoint(endpoint, call).for_columns((id_var,))
        index, lease = ray.get(budget.join.remote())
        self.limit = SharedLimit(budget, index, lease)

    def __call__(self, batch: pa.Table) -> pa.Table:
        token = SHARED_FLOW.set(self.limit.adapt)
        try:
            table = run_sync(run_whole(self._cls, batch, self._text_var, self._id_var, self._call))
        except RunStoppedError as exc:
            # the block's rows refused alike, or the server down: each row an error row
            # that says so (re-run the failed ids later), never a whole dataset aborted
            table = self._failed(batch, f"{type(exc).__name__}: {exc}")
        finally:
            SHARED_FLOW.reset(token)
        table = steady_schema(table)
        union = ray.get(self._budget.columns.remote(table.schema))
        return steady_schema(self._columns.finalize(_widened(table, union)))

    def _failed(self, batch: pa.Table, message: str) -> pa.Table:
        ids = batch.column(self._id_var).combine_chunks()
        results = [Result.failed(i, message) for i in ids.to_pylist()]
        table = results_table(results, self._columns, self._id_var, ids.type)
        return self._columns.finalize(table)


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


def _widened(table: pa.Table, union: pa.Schema) -> pa.Table:
    """``table`` with a null column for each of ``union``'s it lacks, in ``union``'s
    order (the endpoint's ``finalize`` then orders label columns)."""
    columns = []
    for field in union:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    extra = [n for n in table.column_names if n not in union.names]
    return pa.table(
        [*columns, *(table.column(n) for n in extra)],
        names=[*union.names, *extra],
    )


def build_stage(
    cls: type[Endpoint],
    ds: Any,
    *,
    text_var: str,
    id_var: str,
    workers: int,
    batch_size_rows: int,
    num_cpus: float,
    call: dict[str, Any],
) -> Any:
    """``ds.map_batches`` with :class:`EndpointStage` on ``workers`` actors sharing one
    new :class:`~endpointr.ray.budget.Budget`. Every check of the keywords runs here,
    before any request (:class:`~endpointr.errors.ConfigError`)."""
    for name, value in (("workers", workers), ("batch_size_rows", batch_size_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(num_cpus, bool) or not isinstance(num_cpus, int | float) or num_cpus < 0:
        raise ConfigError(f"num_cpus must be a number from 0 up, got {num_cpus!r}")
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
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=num_cpus,
    )
    out._endpointr_budget = budget  # kept alive with the dataset; read by benchmarks
    return out
