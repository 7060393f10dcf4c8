"""Helpers shared by the public functions: one text, a list of texts, a frame or file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from ..errors import InputError, TransportError
from ..io.frames import to_frame
from ..io.readers import Source, open_source
from ..providers.base import Endpoint, classify_status
from ._job import JobSettings, run_job

__all__ = ["run_batch", "run_df", "run_one"]

Present = Callable[[pa.Table], pa.Table]


async def run_df(
    df: Any,
    endpoint: Endpoint,
    settings: JobSettings,
    *,
    text_var: str,
    id_var: str,
    task: str,
    present: Present | None = None,
) -> Any:
    """Run a frame or file through ``endpoint``; the same frame type comes back."""
    settings.check()
    source = open_source(df, text_var=text_var, id_var=id_var)
    outcome = await run_job(source, endpoint, settings, task=task)
    assert outcome.table is not None
    table = present(outcome.table) if present else outcome.table
    return to_frame(table, source.kind)


async def run_batch(
    texts: Sequence[Any], endpoint: Endpoint, settings: JobSettings, *, task: str
) -> pa.Table:
    """Run a list of texts; an Arrow table led by a ``text`` column comes back, in input order."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InputError("texts must be a list of strings (for one text use the *_text function)")
    texts = list(texts)
    if not texts:
        raise InputError("texts is empty; nothing to do")
    settings.check()
    ids = pa.array(range(len(texts)), pa.int64())
    source = Source("pandas", ids, "__id", "text", lambda: iter(enumerate(texts)))
    outcome = await run_job(source, endpoint, settings, task=task)
    assert outcome.table is not None
    shown = pa.array([t if isinstance(t, str) else None for t in texts], pa.string())
    return outcome.table.drop_columns(["__id"]).add_column(0, "text", shown)


async def run_one(text: Any, endpoint: Endpoint, settings: JobSettings) -> dict[str, Any]:
    """The result row for one text; a failure raises the error it stands for."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError("text is empty; give a non-empty string")
    settings.output_dir, settings.progress = None, False
    row: dict[str, Any] = (await run_batch([text], endpoint, settings, task="one")).to_pylist()[0]
    if row[".error"]:
        message = row[".error_msg"] or "request failed"
        if row[".status"] is None:
            raise TransportError(message)
        raise classify_status(row[".status"], message, None)
    return row
