"""Provider Batch APIs: half the price, far higher limits, results within 24 hours.

The one job call, :func:`oai_batch_df` / :func:`ant_batch_df`, submits a frame (split over
the provider's limits), records every job in the output directory, follows the jobs
with a progress line and writes their results into the same chunk files and columns as
:func:`~endpointr.oai_complete_df` (or ``oai_embed_df``, ``ant_complete_df``). Stop it,
or let the process die, and the same call on the same ``output_dir`` re-attaches to its
jobs; ``wait=False`` returns at once, and ``endpointr jobs fetch DIR`` collects later.

The low-level calls keep EndpointR's names: ``oai_batch_prepare_*`` (JSONL),
``oai_batch_upload``, ``oai_batch_start``, ``oai_batch_status``, ``oai_batch_list``,
``oai_batch_cancel``, ``oai_batch_parse_*``, the ``oai_file_*`` calls and the
``ant_batch_*`` calls. ``base_url`` is the same as in the online functions: ending in
``/v1`` for OpenAI, the host root for Anthropic, so any server with the same routes
works. Each function has an async twin named with a leading ``a``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ..batch.jobs import (
    BatchSpec,
    batch_spec,
    follow_dir,
    job_states,
    open_job_dir,
    run_batch,
    spec_from_manifest,
)
from ..batch.lines import (
    anthropic_request,
    read_anthropic_line,
)
from ..batch.lines import (
    custom_ids as valid_custom_ids,
)
from ..batch.prepare import (
    batch_route,
    oai_batch_build_completions_req,
    oai_batch_build_embed_req,
    oai_batch_parse_completions,
    oai_batch_parse_embeddings,
    oai_batch_prepare_completions,
    oai_batch_prepare_embeddings,
    one_text,
    parsed_frame,
    read_lines,
)
from ..batch.wire import (
    AnthropicBatches,
    BatchHttp,
    OpenAIBatches,
    anthropic_headers,
    openai_headers,
)
from ..config import resolve_key
from ..engine.sync import synced
from ..errors import ConfigError, InputError, JobError
from ..io.readers import open_source
from ..providers.anthropic import AnthropicMessages

__all__ = [
    "aant_batch_cancel",
    "aant_batch_create",
    "aant_batch_df",
    "aant_batch_list",
    "aant_batch_results",
    "aant_batch_status",
    "ajobs_cancel",
    "ajobs_fetch",
    "ajobs_status",
    "ant_batch_cancel",
    "ant_batch_create",
    "ant_batch_df",
    "ant_batch_list",
    "ant_batch_results",
    "ant_batch_status",
    "aoai_batch_cancel",
    "aoai_batch_df",
    "aoai_batch_list",
    "aoai_batch_start",
    "aoai_batch_status",
    "aoai_batch_upload",
    "aoai_file_content",
    "aoai_file_delete",
    "aoai_file_list",
    "aoai_file_upload",
    "jobs_cancel",
    "jobs_fetch",
    "jobs_status",
    "oai_batch_build_completions_req",
    "oai_batch_build_embed_req",
    "oai_batch_cancel",
    "oai_batch_df",
    "oai_batch_list",
    "oai_batch_parse_completions",
    "oai_batch_parse_embeddings",
    "oai_batch_prepare_completions",
    "oai_batch_prepare_embeddings",
    "oai_batch_start",
    "oai_batch_status",
    "oai_batch_upload",
    "oai_file_content",
    "oai_file_delete",
    "oai_file_list",
    "oai_file_upload",
]

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com"
_PURPOSES = ("batch", "fine-tune", "assistants", "vision", "user_data", "evals")


# ------------------------------------------------------------------ the one job call


def _settings(
    poll_interval: float, timeout: float, max_retries: int, chunk_size: int, **rest: Any
) -> dict[str, Any]:
    if not isinstance(poll_interval, int | float) or poll_interval <= 0:
        raise ConfigError(
            f"poll_interval must be a positive number of seconds, got {poll_interval!r}"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return {
        "poll_interval": float(poll_interval),
        "timeout": float(timeout),
        "max_retries": max_retries,
        "chunk_size": chunk_size,
        **rest,
    }


async def _run(
    spec: BatchSpec,
    df: Any,
    text_var: str,
    id_var: str,
    output_dir: str | Path,
    wait: bool,
    resubmit_failed: bool,
    dry_run: bool,
    overwrite: bool,
    progress: bool,
) -> Any:
    """The job call of ``spec`` over ``df``, once its keywords are checked."""
    return await run_batch(
        spec,
        open_source(df, text_var=text_var, id_var=id_var),
        output_dir=output_dir,
        wait=wait,
        resubmit_failed=resubmit_failed,
        dry_run=dry_run,
        overwrite=overwrite,
        progress=progress,
    )


async def aoai_batch_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    task: str = "complete",
    model: str | None = None,
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    dimensions: int | None = None,
    encoding_format: str = "base64",
    base_url: str | None = None,
    key_name: str | None = "OPENAI_API_KEY",
    output_dir: str | Path = "auto",
    wait: bool = True,
    poll_interval: float = 30.0,
    resubmit_failed: bool = False,
    dry_run: bool = False,
    overwrite: bool = False,
    completion_window: str = "24h",
    max_requests: int | None = None,
    max_bytes: int | None = None,
    chunk_size: int = 5000,
    progress: bool = True,
    timeout: float = 120.0,
    max_retries: int = 5,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> Any:
    """Run every row of ``df`` through OpenAI's Batch API; the same frame type comes back.

    ``task="complete"`` gives the columns of :func:`~endpointr.oai_complete_df` (content,
    the schema's fields, finish_reason, token usage), ``task="embed"`` those of
    :func:`~endpointr.oai_embed_df` (``model``, ``dimensions``, ``encoding_format``),
    one request per row, plus ``.error``, ``.error_msg``, ``.status``, ``.attempts``. A
    line that failed (its own status and message, from the output or the error file),
    expired or was cancelled is an error row; results are matched by ``custom_id``.

    The rows are split into jobs of at most ``max_requests`` requests (50,000) and
    ``max_bytes`` bytes (200 MB) each. Every job id is kept in ``output_dir``'s manifest
    as soon as OpenAI returns it: the same call again (in any process) re-attaches to
    the jobs and submits only rows in none of them. ``wait=False`` returns the jobs table
    at once (columns ``job_id``, ``status``, ``requests``, ...); a later call, or
    ``endpointr jobs fetch DIR``, collects. ``resubmit_failed=True`` sends the failed and
    expired rows once more, as a new job, when the first jobs have ended.
    ``dry_run=True`` sends nothing and returns an :class:`~endpointr.batch.jobs.Estimate`
    (requests, input tokens, bytes, files and jobs).

    Raises :class:`~endpointr.errors.ConfigError`, :class:`~endpointr.errors.InputError`
    or :class:`~endpointr.errors.MissingAPIKeyError` before any request.
    """
    if task == "embed":
        chat_given = (system_prompt, schema, temperature not in (0, None), max_tokens != 500)
        if any(v not in (None, False) for v in chat_given):
            raise ConfigError(
                "system_prompt, schema, temperature and max_tokens are for task='complete'"
            )
        call: dict[str, Any] = {
            "model": model,
            "dimensions": dimensions,
            "encoding_format": encoding_format,
            "base_url": base_url,
        }
    elif task == "complete":
        if dimensions is not None:
            raise ConfigError("dimensions is for task='embed'")
        call = {
            "model": model,
            "system_prompt": system_prompt,
            "schema": schema,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "base_url": base_url,
        }
    else:
        raise ConfigError(f"task must be 'complete' or 'embed', got {task!r}")
    spec = batch_spec(
        "openai",
        task,
        call,
        key_name=key_name,
        max_requests=max_requests,
        max_bytes=max_bytes,
        completion_window=completion_window,
        **_settings(
            poll_interval, timeout, max_retries, chunk_size, verify=verify, ca_bundle=ca_bundle
        ),
    )
    return await _run(
        spec, df, text_var, id_var, output_dir, wait, resubmit_failed, dry_run, overwrite, progress
    )


async def aant_batch_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    model: str | None = None,
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    cache_system_prompt: bool | None = None,
    base_url: str | None = None,
    key_name: str | None = "ANTHROPIC_API_KEY",
    output_dir: str | Path = "auto",
    wait: bool = True,
    poll_interval: float = 30.0,
    resubmit_failed: bool = False,
    dry_run: bool = False,
    overwrite: bool = False,
    max_requests: int | None = None,
    max_bytes: int | None = None,
    chunk_size: int = 5000,
    progress: bool = True,
    timeout: float = 120.0,
    max_retries: int = 5,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> Any:
    """Run every row of ``df`` through Anthropic's Message Batches API; the same frame
    type comes back, with the columns of :func:`~endpointr.ant_complete_df`.

    Ids of any type and length work: those that do not fit Anthropic's custom id rule
    (``^[a-zA-Z0-9_-]{1,64}$``) are mapped to ones that do and back. Jobs hold at most
    ``max_requests`` requests (100,000) and ``max_bytes`` bytes (256 MB). A request
    ``errored`` (with its own message and status), ``canceled`` or ``expired`` is an
    error row. Everything else works as in :func:`oai_batch_df`.
    """
    call = {
        "model": model,
        "system_prompt": system_prompt,
        "schema": schema,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "cache_system_prompt": cache_system_prompt,
        "base_url": base_url,
    }
    spec = batch_spec(
        "anthropic",
        "complete",
        call,
        key_name=key_name,
        max_requests=max_requests,
        max_bytes=max_bytes,
        **_settings(
            poll_interval, timeout, max_retries, chunk_size, verify=verify, ca_bundle=ca_bundle
        ),
    )
    return await _run(
        spec, df, text_var, id_var, output_dir, wait, resubmit_failed, dry_run, overwrite, progress
    )


def _dir_spec(output_dir: str | Path, base_url: str | None, poll_interval: float) -> BatchSpec:
    manifest, _ = open_job_dir(output_dir)
    return spec_from_manifest(
        manifest,
        base_url=base_url,
        poll_interval=poll_interval,
        chunk_size=int(manifest.get("chunk_size") or 5000),
    )


async def ajobs_status(output_dir: str | Path, *, base_url: str | None = None) -> Any:
    """The jobs of a Batch call's ``output_dir`` as the provider describes them now: a
    pandas frame with ``job_id``, ``status``, ``requests``, ``fetched``, ... Nothing is
    fetched or changed."""
    return await job_states(_dir_spec(output_dir, base_url, 30.0), output_dir)


async def ajobs_fetch(
    output_dir: str | Path,
    *,
    wait: bool = True,
    resubmit_failed: bool = False,
    poll_interval: float = 30.0,
    base_url: str | None = None,
    progress: bool = True,
) -> Any:
    """Collect the results of the jobs of ``output_dir`` into its chunks, without the
    input frame (``wait``: follow them to their end first); returns the jobs table. Read
    the rows with :func:`~endpointr.read_results`."""
    spec = _dir_spec(output_dir, base_url, poll_interval)
    return await follow_dir(
        spec, output_dir, wait=wait, resubmit_failed=resubmit_failed, progress=progress
    )


async def ajobs_cancel(
    output_dir: str | Path,
    *,
    wait: bool = True,
    poll_interval: float = 30.0,
    base_url: str | None = None,
    progress: bool = True,
) -> Any:
    """Cancel the unfinished jobs of ``output_dir``; ``wait`` collects the requests they
    finished before the cancel (the rest become error rows ``cancelled``)."""
    spec = _dir_spec(output_dir, base_url, poll_interval)
    return await follow_dir(spec, output_dir, wait=wait, cancel=True, progress=progress)


# ----------------------------------------------------------- OpenAI: Files and Batch


@contextlib.asynccontextmanager
async def _openai(
    key_name: str | None, base_url: str | None, timeout: float = 120.0
) -> AsyncIterator[OpenAIBatches]:
    key = resolve_key(key_name)
    async with BatchHttp(base_url or OPENAI_BASE, openai_headers(key), timeout=timeout) as http:
        yield OpenAIBatches(http)


def _purpose(purpose: str) -> str:
    if purpose not in _PURPOSES:
        raise ConfigError(f"purpose must be one of {', '.join(_PURPOSES)}, got {purpose!r}")
    return purpose


async def aoai_file_upload(
    file: str | os.PathLike[str],
    purpose: str = "batch",
    *,
    key_name: str | None = "OPENAI_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """Upload the file at ``file`` to the Files API; returns the file object (``id``)."""
    path = Path(file)
    if not path.is_file():
        raise InputError(f"file must be the path of a file, got {str(file)!r}")
    async with _openai(key_name, base_url) as api:
        stored: dict[str, Any] = await api.upload(path.read_bytes(), path.name, _purpose(purpose))
        return stored


async def aoai_file_list(
    purpose: str | None = None,
    *,
    key_name: str | None = "OPENAI_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """The Files API's list of files (``data``), of one ``purpose`` if given."""
    async with _openai(key_name, base_url) as api:
        listed: dict[str, Any] = await api.files(None if purpose is None else _purpose(purpose))
        return listed


async def aoai_file_content(
    file_id: str, *, key_name: str | None = "OPENAI_API_KEY", base_url: str | None = None
) -> str:
    """The content of the file ``file_id`` as text (a batch's output or error JSONL)."""
    async with _openai(key_name, base_url) as api:
        return (await api.content(_name(file_id, "file_id"))).decode("utf-8", "replace")


async def aoai_file_delete(
    file_id: str, *, key_name: str | None = "OPENAI_API_KEY", base_url: str | None = None
) -> dict[str, Any]:
    """Delete the file ``file_id``; returns ``{"id", "deleted"}``."""
    async with _openai(key_name, base_url) as api:
        deleted: dict[str, Any] = await api.delete(_name(file_id, "file_id"))
        return deleted


async def aoai_batch_upload(
    jsonl_rows: str,
    purpose: str = "batch",
    *,
    key_name: str | None = "OPENAI_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """Upload JSONL text (from ``oai_batch_prepare_*``) as a Batch file; returns the
    file object, whose ``id`` goes to :func:`oai_batch_start`."""
    if not isinstance(jsonl_rows, str) or not jsonl_rows.strip():
        raise InputError("jsonl_rows is empty: prepare it with oai_batch_prepare_*")
    content = jsonl_rows.encode() + (b"" if jsonl_rows.endswith("\n") else b"\n")
    async with _openai(key_name, base_url) as api:
        stored: dict[str, Any] = await api.upload(
            content, "endpointr-batch.jsonl", _purpose(purpose)
        )
        return stored


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string")
    return value


async def aoai_batch_start(
    file_id: str,
    endpoint: str = "/v1/embeddings",
    completion_window: str = "24h",
    metadata: Mapping[str, str] | None = None,
    *,
    key_name: str | None = "OPENAI_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """Start a batch over the uploaded file ``file_id``; ``endpoint`` must be the lines'
    ``url``. Returns the batch object (``id``, ``status``, ...)."""
    async with _openai(key_name, base_url) as api:
        batch: dict[str, Any] = await api.create(
            _name(file_id, "file_id"), batch_route(endpoint), completion_window, metadata
        )
        return batch


async def aoai_batch_status(
    batch_id: str, *, key_name: str | None = "OPENAI_API_KEY", base_url: str | None = None
) -> dict[str, Any]:
    """The batch object: ``status``, ``request_counts``, ``output_file_id``,
    ``error_file_id``, ``errors``."""
    async with _openai(key_name, base_url) as api:
        batch: dict[str, Any] = await api.retrieve(_name(batch_id, "batch_id"))
        return batch


async def aoai_batch_list(
    limit: int = 20,
    after: str | None = None,
    *,
    key_name: str | None = "OPENAI_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """A page of batches, newest first (``data``, ``has_more``; pass ``after``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ConfigError(f"limit must be an integer from 1 to 100, got {limit!r}")
    async with _openai(key_name, base_url) as api:
        listed: dict[str, Any] = await api.list(limit, after)
        return listed


async def aoai_batch_cancel(
    batch_id: str, *, key_name: str | None = "OPENAI_API_KEY", base_url: str | None = None
) -> dict[str, Any]:
    """Cancel a batch (it is ``cancelling``, then ``cancelled``); returns the batch."""
    async with _openai(key_name, base_url) as api:
        batch: dict[str, Any] = await api.cancel(_name(batch_id, "batch_id"))
        return batch


# ------------------------------------------------------------------------ Anthropic


@contextlib.asynccontextmanager
async def _anthropic(
    key_name: str | None, base_url: str | None, timeout: float = 120.0
) -> AsyncIterator[AnthropicBatches]:
    key = resolve_key(key_name)
    async with BatchHttp(
        base_url or ANTHROPIC_BASE, anthropic_headers(key), timeout=timeout
    ) as http:
        yield AnthropicBatches(http)


async def aant_batch_create(
    texts: Sequence[str],
    custom_ids: Sequence[Any] | None = None,
    model: str = "claude-haiku-4-5",
    system_prompt: str | None = None,
    schema: Any = None,
    max_tokens: int = 1024,
    temperature: float | None = 0,
    *,
    key_name: str | None = "ANTHROPIC_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """Create a Message Batch of one request per text; returns the batch object.

    ``custom_ids`` (default: the positions) may be of any type and length: those that do
    not fit ``^[a-zA-Z0-9_-]{1,64}$`` are sent as ones that do, and the returned dict's
    ``endpointr_ids`` maps every custom id sent back to its id (pass it to
    :func:`ant_batch_results` as ``ids``).
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise InputError("texts must be a non-empty list of strings")
    ids = list(range(len(texts))) if custom_ids is None else list(custom_ids)
    if len(ids) != len(texts):
        raise InputError("texts and custom_ids must be the same length")
    if len({repr(i) for i in ids}) != len(ids):
        raise InputError("custom_ids must be unique")
    if len(texts) > 100_000:
        raise InputError("a Message Batch takes at most 100,000 requests; use ant_batch_df")
    for text in texts:
        one_text(text, 0)
    endpoint = AnthropicMessages.create(
        model=model,
        system_prompt=system_prompt,
        schema=schema,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    names = valid_custom_ids(ids)
    requests = [
        orjson.loads(anthropic_request(endpoint, c, t)) for c, t in zip(names, texts, strict=True)
    ]
    async with _anthropic(key_name, base_url) as api:
        batch: dict[str, Any] = await api.create(requests)
    batch["endpointr_ids"] = dict(zip(names, ids, strict=True))
    return batch


async def aant_batch_status(
    batch_id: str, *, key_name: str | None = "ANTHROPIC_API_KEY", base_url: str | None = None
) -> dict[str, Any]:
    """The batch object: ``processing_status`` (``in_progress``, ``canceling``,
    ``ended``), ``request_counts``, ``results_url``."""
    async with _anthropic(key_name, base_url) as api:
        batch: dict[str, Any] = await api.retrieve(_name(batch_id, "batch_id"))
        return batch


async def aant_batch_results(
    batch_id: str,
    *,
    ids: Mapping[str, Any] | None = None,
    schema: Any = None,
    key_name: str | None = "ANTHROPIC_API_KEY",
    base_url: str | None = None,
) -> Any:
    """The rows of an ended batch: ``custom_id`` (mapped back through ``ids``, the
    ``endpointr_ids`` of :func:`ant_batch_create`), then the columns of
    :func:`~endpointr.ant_complete_df`. ``errored``, ``canceled`` and ``expired``
    requests are error rows with their message. Raises :class:`JobError` when the batch
    has not ended."""
    endpoint = AnthropicMessages.create(schema=schema)
    async with _anthropic(key_name, base_url) as api:
        batch = await api.retrieve(_name(batch_id, "batch_id"))
        if batch.get("processing_status") != "ended":
            raise JobError(
                f"batch {batch_id} has not ended yet (processing_status "
                f"{batch.get('processing_status')!r}); its results come once it has"
            )
        content = await api.results(batch)
    lines = read_lines(content, lambda row, line: read_anthropic_line(endpoint, row, line))
    frame = parsed_frame(lines, endpoint, None, None)
    if ids:
        frame["custom_id"] = [ids.get(c, c) for c in frame["custom_id"]]
    return frame


async def aant_batch_list(
    limit: int = 20,
    before_id: str | None = None,
    after_id: str | None = None,
    *,
    key_name: str | None = "ANTHROPIC_API_KEY",
    base_url: str | None = None,
) -> dict[str, Any]:
    """A page of Message Batches, newest first (``data``, ``has_more``, ``last_id``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ConfigError(f"limit must be between 1 and 1000, got {limit!r}")
    async with _anthropic(key_name, base_url) as api:
        listed: dict[str, Any] = await api.list(limit, before_id, after_id)
        return listed


async def aant_batch_cancel(
    batch_id: str, *, key_name: str | None = "ANTHROPIC_API_KEY", base_url: str | None = None
) -> dict[str, Any]:
    """Cancel a Message Batch (``canceling``, then ``ended``); returns the batch."""
    async with _anthropic(key_name, base_url) as api:
        batch: dict[str, Any] = await api.cancel(_name(batch_id, "batch_id"))
        return batch


oai_batch_df = synced(aoai_batch_df)
ant_batch_df = synced(aant_batch_df)
jobs_status = synced(ajobs_status)
jobs_fetch = synced(ajobs_fetch)
jobs_cancel = synced(ajobs_cancel)
oai_file_upload = synced(aoai_file_upload)
oai_file_list = synced(aoai_file_list)
oai_file_content = synced(aoai_file_content)
oai_file_delete = synced(aoai_file_delete)
oai_batch_upload = synced(aoai_batch_upload)
oai_batch_start = synced(aoai_batch_start)
oai_batch_status = synced(aoai_batch_status)
oai_batch_list = synced(aoai_batch_list)
oai_batch_cancel = synced(aoai_batch_cancel)
ant_batch_create = synced(aant_batch_create)
ant_batch_status = synced(aant_batch_status)
ant_batch_results = synced(aant_batch_results)
ant_batch_list = synced(aant_batch_list)
ant_batch_cancel = synced(aant_batch_cancel)
