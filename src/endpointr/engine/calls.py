"""The three runners under every public function and the CLI: one text, a list of
texts, a table.

Each takes an endpoint class and the keywords as the caller gave them: the run options
(the fields of :class:`~endpointr.engine.options.RunOptions`), the endpoint's own
keywords (those of its ``create``) and ``wide``. Every check runs before the first
request; the endpoint's defaults fill in what was not given. A registered endpoint may
stand in for the one called (``endpoint_url="local"``), and an endpoint that brings its
own server has it started around the run (:func:`~endpointr.engine.serving.served`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import ConfigError, InputError, TransportError
from ..io.frames import to_frame, widen_vectors
from ..io.readers import Source, open_source
from ..providers.base import Defaults, Endpoint, classify_status
from ..providers.registry import serving_endpoint
from ..types import Result
from .options import RUN_OPTION_NAMES, RunOptions
from .probe import fit_batch_size, probe_info
from .run import Outcome, run_rows, run_table
from .serving import served

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DECLARED",
    "MANY",
    "SHOWN",
    "declared_defaults",
    "endpoint_keywords",
    "run_many",
    "run_one",
    "run_options",
    "run_whole",
]

# keywords that shape the frame handed back, not the requests
SHOWN = ("wide",)
# the run options whose default each endpoint declares for itself
DECLARED = tuple(f.name for f in fields(Defaults) if f.name in RUN_OPTION_NAMES)


ONE: dict[str, Any] = {
    "batch_size": 1,
    "concurrent_requests": 1,
    "output_dir": None,
    "progress": False,
}
MANY: dict[str, Any] = {"progress": False}


@functools.cache
def endpoint_keywords(cls: type[Endpoint]) -> Mapping[str, inspect.Parameter]:
    """The endpoint's own keywords, from the signature of its ``create``."""
    return inspect.signature(cls.create).parameters


def declared_defaults(cls: type[Endpoint]) -> dict[str, Any]:
    """The run-option defaults ``cls`` declares (``batch_size``, ``timeout``, ...)."""
    return {name: getattr(cls.defaults, name) for name in DECLARED}


def run_options(cls: type[Endpoint], given: Mapping[str, Any]) -> RunOptions:
    """:class:`RunOptions` from ``given``, the endpoint's defaults filling the rest."""
    chosen = {k: v for k, v in given.items() if k in RUN_OPTION_NAMES}
    return RunOptions(**{**declared_defaults(cls), **chosen})


def _endpoint(cls: type[Endpoint], call: Mapping[str, Any]) -> Endpoint:
    own = {k: v for k, v in call.items() if k not in RUN_OPTION_NAMES and k not in SHOWN}
    takes = endpoint_keywords(cls)
    unknown = sorted(set(own) - set(takes))
    if unknown:
        raise ConfigError(
            f"{cls.name} takes no keyword {unknown[0]!r}; its own keywords are "
            f"{', '.join(takes)}, plus the run options"
        )
    return cls.create(**own)


async def _fitted(endpoint: Endpoint, options: RunOptions) -> tuple[Endpoint, RunOptions]:
    """``endpoint`` and ``options`` fitted to the server: its ``/info`` limits (TEI) and
    the endpoint's rows per request."""
    defaults = endpoint.defaults
    if not defaults.batchable:
        return endpoint, replace(options, batch_size=1)
    if not endpoint.reads_info:
        if options.batch_size == "auto":
            options = replace(options, batch_size=defaults.batch_size)
        return endpoint, options
    info = await probe_info(
        endpoint.url, options.key_name, verify=options.verify, ca_bundle=options.ca_bundle
    )
    return endpoint.fitted(info), replace(
        options, batch_size=fit_batch_size(options.batch_size, info)
    )


async def run_whole(
    cls: type[Endpoint],
    df: Any,
    text_var: str,
    id_var: str,
    call: Mapping[str, Any],
    *,
    collect: bool = True,
    command: Sequence[str] | None = None,
) -> Any:
    """Run a frame or file; the same frame type comes back.

    Without ``collect`` the results stay on disk and the :class:`Outcome` comes back.
    """
    cls = serving_endpoint(cls, call)
    endpoint = _endpoint(cls, call)
    options = run_options(cls, call)
    source = open_source(df, text_var=text_var, id_var=id_var)
    async with served(endpoint.for_columns((source.id_var,))) as ready:
        ready, options = await _fitted(ready, options)
        outcome: Outcome = await run_table(source, ready, options, collect=collect, command=command)
    if not collect:
        return outcome
    assert outcome.table is not None
    table = widen_vectors(outcome.table) if call.get("wide") else outcome.table
    frame = to_frame(table, source.kind)
    if outcome.output_dir is not None and source.kind == "pandas":
        frame.attrs["output_dir"] = str(outcome.output_dir.resolve())  # where the chunks are
    return frame


async def run_many(
    cls: type[Endpoint], texts: Sequence[str], call: Mapping[str, Any]
) -> pd.DataFrame:
    """Run a list of texts; a pandas frame led by ``text`` comes back, in input order.
    Nothing is written to disk."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InputError("texts must be a list of strings (for one text use the *_text function)")
    texts = list(texts)
    if not texts:
        raise InputError("texts is empty; nothing to do")
    cls = serving_endpoint(cls, call)
    endpoint = _endpoint(cls, call).for_columns(("text",))
    options = run_options(cls, {**MANY, **call, "output_dir": None})
    ids = pa.array(range(len(texts)), pa.int64())
    source = Source(
        "pandas", ids, "__id", "text", lambda: iter(enumerate(texts)), texts=lambda: texts
    )
    async with served(endpoint) as ready:
        ready, options = await _fitted(ready, options)
        outcome = await run_table(source, ready, options)
    assert outcome.table is not None
    shown = pa.array([t if isinstance(t, str) else None for t in texts], pa.string())
    table = outcome.table.drop_columns(["__id"]).add_column(0, "text", shown)
    return to_frame(widen_vectors(table) if call.get("wide") else table, "pandas")


async def run_one(cls: type[Endpoint], text: str, call: Mapping[str, Any]) -> Any:
    """The value for one text; a failure raises the error it stands for (the error class
    of the last attempt: :class:`ResponseFormatError`, :class:`CertificateError`,
    :class:`RateLimitError`, ...)."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError("text is empty; give a non-empty string")
    cls = serving_endpoint(cls, call)
    endpoint = _endpoint(cls, call)
    options = run_options(cls, {**call, **ONE})
    async with served(endpoint) as ready:
        (result,) = await run_rows([(0, text)], ready, options)
    if result.error:
        raise _cause(result)
    return endpoint.one_value(result.value)


def _cause(result: Result) -> Exception:
    if result.cause is not None:
        return result.cause
    message = result.error_msg or "request failed"
    if result.status is None:
        return TransportError(message)
    return classify_status(result.status, message, None)
