"""One resumable Batch-API job call: a frame in, its rows submitted as provider jobs, their
results written into the output directory's chunks with the columns of an online run.

The output directory is the job's memory. Before a request is submitted its rows'
custom ids, ids and texts are written to ``_jobs/part-NNNNN.parquet``, and every job id
goes into the manifest (``_metadata.json``, key ``jobs``) the moment the provider returns
it, so a process that dies is replaced by one that re-attaches instead of submitting
again. An OpenAI job is tagged with a token in its ``metadata`` before it is created, so
even a crash between the create call and its answer re-attaches (Anthropic has no such
tag: a crash inside that one call may submit once more). Results are committed as
chunks, then the job is marked fetched; rows already committed are never written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._version import __version__
from ..config import redact_url, resolve_key
from ..engine.tokens import TokenCounter
from ..errors import CheckpointError, ConfigError, EndpointrError, InputError
from ..io.chunks import ChunkWriter, chunk_paths, drop_superseded, read_chunks, write_atomic
from ..io.frames import to_frame
from ..io.manifest import (
    OutputDir,
    auto_dir,
    committed_ids,
    finish_manifest,
    latest_per_id,
    now_iso,
    prepare_output_dir,
    read_manifest,
)
from ..io.readers import Source
from ..providers.anthropic import AnthropicMessages
from ..providers.base import Endpoint
from ..providers.chat import ChatEndpoint
from ..providers.openai import OpenAIChat, OpenAIEmbed
from ..schema import JsonSchema
from ..types import Result, Row
from .lines import (
    anthropic_request,
    custom_ids,
    jsonl,
    missing,
    openai_line,
    read_anthropic_line,
    read_openai_line,
    result_lines,
)
from .wire import AnthropicBatches, BatchHttp, OpenAIBatches, anthropic_headers, openai_headers

__all__ = [
    "LIMITS",
    "BatchSpec",
    "Estimate",
    "JobState",
    "batch_spec",
    "cancel_jobs",
    "job_states",
    "run_batch",
    "spec_from_manifest",
]

JOBS = "_jobs"
# (requests, bytes) at most per job: OpenAI 50,000 requests and 200 MB per input file,
# Anthropic 100,000 requests and 256 MB per batch
LIMITS: Mapping[str, tuple[int, int]] = {
    "openai": (50_000, 200 * 1024 * 1024),
    "anthropic": (100_000, 256 * 1024 * 1024),
}
_OPENAI_FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# the endpoint class, and OpenAI's batch route, of each (provider, task)
_TASKS: Mapping[tuple[str, str], tuple[type[Endpoint], str]] = {
    ("openai", "complete"): (OpenAIChat, "/v1/chat/completions"),
    ("openai", "embed"): (OpenAIEmbed, "/v1/embeddings"),
    ("anthropic", "complete"): (AnthropicMessages, "/v1/messages"),
}
_ENVELOPE = 64  # bytes an Anthropic batch body adds around its requests, with margin


@dataclass
class BatchSpec:
    """What a job call sends and how: the endpoint that builds every line and reads every
    result, the keywords it was made from (kept in the manifest, so ``endpointr jobs fetch
    DIR`` can rebuild it), the API root of the batch calls, and the limits per job."""

    provider: str
    task: str
    endpoint: Endpoint
    call: dict[str, Any]
    api_url: str
    key_name: str | None
    max_requests: int
    max_bytes: int
    completion_window: str = "24h"
    poll_interval: float = 30.0
    timeout: float = 120.0
    max_retries: int = 5
    verify: bool = True
    ca_bundle: str | None = None
    chunk_size: int = 5000

    @property
    def route(self) -> str:
        return _TASKS[(self.provider, self.task)][1]

    def http(self, key: str | None) -> BatchHttp:
        headers = anthropic_headers(key) if self.provider == "anthropic" else openai_headers(key)
        return BatchHttp(
            self.api_url,
            headers,
            timeout=self.timeout,
            max_retries=self.max_retries,
            verify=self.verify,
            ca_bundle=self.ca_bundle,
        )

    def manifest_section(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "task": self.task,
            "call": self.call,
            "api_url": redact_url(self.api_url),
            "key_name": self.key_name,
            "completion_window": self.completion_window,
        }


@dataclass(frozen=True)
class Estimate:
    """What a job call would submit (``dry_run=True``): nothing is sent to make it."""

    rows: int
    requests: int
    input_tokens: int
    tokens_counted: bool  # counted by the model's tokenizer, not estimated
    bytes: int
    jobs: int
    files: int
    rows_done: int
    rows_in_jobs: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        how = "counted" if self.tokens_counted else "estimated at 4 characters each"
        files = f", {self.files:,} files" if self.files else ""
        return (
            f"{self.requests:,} requests in {self.jobs:,} jobs{files}, {self.bytes / 1e6:,.1f} MB, "
            f"~{self.input_tokens:,} input tokens ({how}); {self.rows_done:,} rows already "
            f"done, {self.rows_in_jobs:,} in jobs submitted before"
        )


@dataclass
class JobState:
    """One job as the provider last described it."""

    record: dict[str, Any]
    status: str = "unknown"
    final: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def batch_spec(
    provider: str,
    task: str,
    call: Mapping[str, Any],
    *,
    key_name: str | None,
    max_requests: int | None = None,
    max_bytes: int | None = None,
    **settings: Any,
) -> BatchSpec:
    """The spec of a job call: ``call`` holds the endpoint's own keywords (``model``,
    ``system_prompt``, ``schema``, ``base_url``, ...). Raises :class:`ConfigError`."""
    if (provider, task) not in _TASKS:
        tasks = sorted({t for p, t in _TASKS if p == provider}) or ["complete"]
        raise ConfigError(f"task must be one of {', '.join(tasks)} for {provider}, got {task!r}")
    cls, route = _TASKS[(provider, task)]
    endpoint = cls.create(**call)
    limit_requests, limit_bytes = LIMITS[provider]
    max_requests = _positive(max_requests, "max_requests", limit_requests)
    max_bytes = _positive(max_bytes, "max_bytes", limit_bytes)
    suffix = route.removeprefix("/v1") if provider == "openai" else route
    if not endpoint.url.endswith(suffix):
        raise ConfigError(
            f"the {provider} batch calls need a URL ending in {suffix}, got "
            f"{redact_url(endpoint.url)}; give base_url instead"
        )
    api_url = endpoint.url.removesuffix(suffix)
    kept = {k: _json_safe(k, v, endpoint) for k, v in call.items() if v is not None}
    return BatchSpec(
        provider, task, endpoint, kept, api_url, key_name, max_requests, max_bytes, **settings
    )


def _positive(value: int | None, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _json_safe(name: str, value: Any, endpoint: Endpoint) -> Any:
    """A keyword as the manifest keeps it: a schema as its JSON, a URL with any secret
    in it masked, the rest as given."""
    if name in ("base_url", "endpoint_url") and isinstance(value, str):
        return redact_url(value)
    if name == "schema" and isinstance(endpoint, ChatEndpoint) and endpoint.schema is not None:
        s = endpoint.schema
        return {
            "name": s.name,
            "schema": s.schema,
            "strict": s.strict,
            "description": s.description,
        }
    return value


def spec_from_manifest(
    manifest: Mapping[str, Any], *, base_url: str | None = None, **settings: Any
) -> BatchSpec:
    """The spec a job's output directory was made with; ``base_url`` overrides the API
    root kept there (which has any secret in it masked)."""
    section = manifest.get("batch")
    if not isinstance(section, Mapping):
        raise CheckpointError("this output directory was not made by a Batch job call")
    call = dict(section.get("call") or {})
    if isinstance(call.get("schema"), Mapping):
        call["schema"] = JsonSchema(**call["schema"])
    if base_url is not None:
        call.pop("endpoint_url", None)
        call["base_url"] = base_url
    return batch_spec(
        str(section["provider"]),
        str(section["task"]),
        call,
        key_name=section.get("key_name"),
        completion_window=str(section.get("completion_window", "24h")),
        **settings,
    )


# ---------------------------------------------------------------------------- the call


async def run_batch(
    spec: BatchSpec,
    source: Source,
    *,
    output_dir: str | Path,
    wait: bool = True,
    resubmit_failed: bool = False,
    dry_run: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Any:
    """Submit what is left of ``source``, then (``wait``) follow every job of the output
    directory to its end and give back the results as a frame of ``source``'s kind; with
    ``wait=False`` the jobs table comes back at once, and ``dry_run`` gives an
    :class:`Estimate` and sends nothing."""
    key = resolve_key(spec.key_name)
    endpoint = spec.endpoint.for_columns((source.id_var,))
    spec = replace(spec, endpoint=endpoint)
    out = _prepare(spec, source, output_dir, overwrite)
    try:
        records = _records(out)
        in_jobs = _ids_in_jobs(out, [r for r in records if not r.get("fetched")])
        skip = out.done_ids | in_jobs
        left = list(source.pairs(skip))
        if dry_run:
            return _estimate(spec, left, len(out.done_ids), len(in_jobs))
        _check_texts(left, source.text_var)
        out.save(
            endpointr_version=__version__,
            batch=spec.manifest_section(),
            row_count=source.total,
            chunk_size=spec.chunk_size,
            status="submitted",
        )
        async with spec.http(key) as http:
            await _reattach(spec, http, out)
            if left:
                await _submit(spec, http, out, left, id_type=source.ids.type, resubmission=False)
            if not wait:
                states = [await _state(spec, http, r) for r in _records(out)]
                await _fetch_ended(spec, http, out, states, progress=False)
                _summary(out, states, progress)
                return jobs_frame(_records(out), states, out.path)
            try:
                await _follow(spec, http, out, progress=progress)
            except (KeyboardInterrupt, asyncio.CancelledError):
                _note(
                    f"stopped following; the jobs go on at {spec.provider}. The same call "
                    f"again, or `endpointr jobs fetch {out.path}`, collects them."
                )
                raise
            if resubmit_failed:
                await _resubmit(spec, http, out, progress=progress)
        return _collect(out, source, endpoint)
    finally:
        out.release()
        if dry_run:  # a dry run leaves no empty directory behind
            with contextlib.suppress(OSError):
                out.path.rmdir()


def _prepare(spec: BatchSpec, source: Source, output_dir: str | Path, overwrite: bool) -> OutputDir:
    request_settings = {
        **spec.endpoint.fingerprint(),
        "url": redact_url(spec.endpoint.url),
        "text_var": source.text_var,
        "id_var": source.id_var,
    }
    if output_dir == "auto":
        prefix = f"{spec.endpoint.name.replace('.', '-')}-batch"
        where = auto_dir(prefix, request_settings, source.digest())
    else:
        where = Path(output_dir)
    out = prepare_output_dir(
        where, id_var=source.id_var, request_settings=request_settings, overwrite=overwrite
    )
    if overwrite:
        for path in (out.path / JOBS).glob("part-*.parquet"):
            path.unlink()
        out.manifest.pop("jobs", None)
    before = out.manifest.get("batch")
    if isinstance(before, Mapping) and before.get("provider") != spec.provider:
        out.release()
        raise CheckpointError(f"{out.path} holds jobs of another provider; use another output_dir")
    out.manifest.update(
        endpoint=spec.endpoint.name,
        endpoint_url=redact_url(spec.endpoint.url),
        key_name=spec.key_name,
        input=redact_url(source.label) if "://" in source.label else source.label,
        text_var=source.text_var,
        id_var=source.id_var,
        input_digest=source.digest(),
        **spec.endpoint.manifest_fields(),
    )
    if output_dir == "auto" and not out.manifest.get("jobs"):
        _note(f"results go to {out.path} (the same call again re-attaches to its jobs)")
    return out


def _check_texts(left: Sequence[tuple[Any, Any]], text_var: str) -> None:
    for row_id, text in left:
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                f"{text_var} of id {row_id!r} is {'empty' if isinstance(text, str) else 'missing'}"
                "; a Batch job sends every row, so fill or drop such rows first"
            )


def _records(out: OutputDir) -> list[dict[str, Any]]:
    jobs = out.manifest.setdefault("jobs", [])
    assert isinstance(jobs, list)
    return jobs


def _map_path(out: OutputDir, record: Mapping[str, Any]) -> Path:
    return out.path / str(record["map"])


def _read_map(
    out: OutputDir, record: Mapping[str, Any], columns: list[str] | None = None
) -> pa.Table:
    path = _map_path(out, record)
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise CheckpointError(f"cannot read {path} ({exc}): the job's rows are not known") from None


def _ids_in_jobs(out: OutputDir, records: Sequence[Mapping[str, Any]]) -> set[Any]:
    ids: set[Any] = set()
    for record in records:
        ids.update(_read_map(out, record, ["id"]).column("id").to_pylist())
    return ids


# ------------------------------------------------------------------------- submitting


def _lines(spec: BatchSpec, names: Sequence[str], texts: Sequence[str]) -> list[bytes]:
    if spec.provider == "openai":
        return [
            openai_line(spec.endpoint, spec.route, c, t) for c, t in zip(names, texts, strict=True)
        ]
    return [anthropic_request(spec.endpoint, c, t) for c, t in zip(names, texts, strict=True)]


def _parts(spec: BatchSpec, lines: Sequence[bytes]) -> list[tuple[int, int]]:
    """``(start, end)`` of each job: at most ``max_requests`` lines and ``max_bytes``."""
    parts, start, size = [], 0, 0
    for i, line in enumerate(lines):
        cost = len(line) + 1
        if cost + _ENVELOPE > spec.max_bytes:
            raise InputError(
                f"the request of row {i + 1} of those left is {cost:,} bytes, more than one "
                f"job may carry ({spec.max_bytes:,}); shorten its text"
            )
        if i > start and (
            i - start >= spec.max_requests or size + cost + _ENVELOPE > spec.max_bytes
        ):
            parts.append((start, i))
            start, size = i, 0
        size += cost
    if start < len(lines):
        parts.append((start, len(lines)))
    return parts


async def _submit(
    spec: BatchSpec,
    http: BatchHttp,
    out: OutputDir,
    rows: Sequence[tuple[Any, Any]],
    *,
    id_type: pa.DataType,
    resubmission: bool,
) -> None:
    ids = [i for i, _ in rows]
    texts = [str(t) for _, t in rows]
    names = custom_ids(ids)
    lines = _lines(spec, names, texts)
    (out.path / JOBS).mkdir(exist_ok=True)
    for start, end in _parts(spec, lines):
        number = 1 + max((int(r["part"]) for r in _records(out)), default=0)
        record: dict[str, Any] = {
            "part": number,
            "provider": spec.provider,
            "id": None,
            "status": "submitting",
            "requests": end - start,
            "bytes": sum(len(line) + 1 for line in lines[start:end]),
            "map": f"{JOBS}/part-{number:05d}.parquet",
            "token": secrets.token_hex(8),
            "resubmission": resubmission,
            "fetched": False,
        }
        table = pa.table(
            {
                "custom_id": pa.array(names[start:end], pa.string()),
                "id": pa.array(ids[start:end], type=id_type),
                "text": pa.array(texts[start:end], pa.string()),
            }
        )
        write_atomic(_map_path(out, record), lambda tmp, t=table: pq.write_table(t, tmp))
        _records(out).append(record)
        out.save()
        await _create(spec, http, out, record, lines[start:end])


async def _create(
    spec: BatchSpec,
    http: BatchHttp,
    out: OutputDir,
    record: dict[str, Any],
    lines: Sequence[bytes] | None = None,
) -> None:
    """Create the provider job of ``record`` (its lines rebuilt from its map if not
    given), saving each id the provider returns at once."""
    if lines is None:
        table = _read_map(out, record, ["custom_id", "text"])
        lines = _lines(
            spec, table.column("custom_id").to_pylist(), table.column("text").to_pylist()
        )
    if spec.provider == "openai":
        api = OpenAIBatches(http)
        if not record.get("input_file_id"):
            name = f"endpointr-part-{record['part']:05d}.jsonl"
            stored = await api.upload(jsonl(lines), name)
            record["input_file_id"] = stored["id"]
            out.save()
        metadata = {"endpointr_token": record["token"]}
        batch = await api.create(
            record["input_file_id"], spec.route, spec.completion_window, metadata
        )
    else:
        body = b"[" + b",".join(lines) + b"]"
        batch = await AnthropicBatches(http).create(orjson.loads(body))
    record.update(id=batch["id"], status=_status_of(spec, batch), submitted_at=now_iso())
    out.save()


async def _reattach(spec: BatchSpec, http: BatchHttp, out: OutputDir) -> None:
    """Jobs whose creation a crash cut short: found again by their token (OpenAI), or
    created now."""
    for record in _records(out):
        if record.get("id"):
            continue
        found = await _find_by_token(http, record["token"]) if spec.provider == "openai" else None
        if found is not None:
            record.update(id=found["id"], status=found.get("status"), submitted_at=now_iso())
            out.save()
        else:
            await _create(spec, http, out, record)


async def _find_by_token(http: BatchHttp, token: str) -> dict[str, Any] | None:
    after: str | None = None
    for _ in range(10):  # the 1,000 newest batches
        page = await OpenAIBatches(http).list(limit=100, after=after)
        for batch in page.get("data") or []:
            if (batch.get("metadata") or {}).get("endpointr_token") == token:
                return dict(batch)
        if not page.get("has_more") or not page.get("data"):
            return None
        after = page["data"][-1]["id"]
    return None


# --------------------------------------------------------------------------- following


def _status_of(spec: BatchSpec, batch: Mapping[str, Any]) -> str:
    if spec.provider == "openai":
        return str(batch.get("status"))
    return str(batch.get("processing_status"))


async def _state(spec: BatchSpec, http: BatchHttp, record: dict[str, Any]) -> JobState:
    if record.get("fetched"):
        return JobState(record, str(record.get("status")), True, dict(record.get("counts") or {}))
    if spec.provider == "openai":
        batch = await OpenAIBatches(http).retrieve(record["id"])
        status = str(batch.get("status"))
        final = status in _OPENAI_FINAL
    else:
        batch = await AnthropicBatches(http).retrieve(record["id"])
        status = str(batch.get("processing_status"))
        final = status == "ended"
    counts = batch.get("request_counts") or {}
    return JobState(record, status, final, {k: int(v) for k, v in counts.items()}, dict(batch))


async def _follow(spec: BatchSpec, http: BatchHttp, out: OutputDir, *, progress: bool) -> None:
    """Poll every unfetched job until it ends, fetching each as it does."""
    started = time.monotonic()
    shown = ""
    while True:
        states = [await _state(spec, http, r) for r in _records(out)]
        await _fetch_ended(spec, http, out, states, progress=progress)
        line = _progress_line(states, time.monotonic() - started)
        if progress and line != shown:
            _note(line)
            shown = line
        if all(s.record.get("fetched") for s in states):
            _finish(out)
            return
        await asyncio.sleep(spec.poll_interval)


async def _fetch_ended(
    spec: BatchSpec,
    http: BatchHttp,
    out: OutputDir,
    states: Sequence[JobState],
    *,
    progress: bool,
) -> None:
    for state in states:
        record = state.record
        if record.get("fetched") or not state.final:
            continue
        results = await _results(spec, http, out, state)
        id_var = str(out.manifest["id_var"])
        written = await _write(spec, out, results, id_var, replace_old=bool(record["resubmission"]))
        failed = sum(r.error for r in results)
        record.update(
            status=state.status,
            fetched=True,
            fetched_at=now_iso(),
            counts=state.counts,
            succeeded=len(results) - failed,
            failed=failed,
            written=written,
        )
        out.save()
        if progress:
            _note(
                f"job {record['id']} {state.status}: {len(results) - failed:,} rows ok, "
                f"{failed:,} error rows"
            )


async def _results(
    spec: BatchSpec, http: BatchHttp, out: OutputDir, state: JobState
) -> list[Result]:
    """One result per row of the ended job of ``state``, matched by custom id."""
    table = _read_map(out, state.record, ["custom_id", "id"])
    rows = {
        c: Row(i, "")
        for c, i in zip(
            table.column("custom_id").to_pylist(), table.column("id").to_pylist(), strict=True
        )
    }
    found: dict[str, Result] = {}
    batch = state.raw
    if spec.provider == "openai":
        if state.status == "failed":
            message = _validation_message(batch)
            return [Result.failed(row.id, message) for row in rows.values()]
        api = OpenAIBatches(http)
        for name in ("output_file_id", "error_file_id"):
            file_id = batch.get(name)
            if not file_id:
                continue
            for _, custom, line in result_lines(await api.content(str(file_id))):
                if custom is not None and custom in rows and custom not in found:
                    found[custom] = read_openai_line(spec.endpoint, rows[custom], line)
    else:
        content = await AnthropicBatches(http).results(batch)
        for _, custom, line in result_lines(content):
            if custom is not None and custom in rows and custom not in found:
                found[custom] = read_anthropic_line(spec.endpoint, rows[custom], line)
    return [found.get(c) or missing(row.id) for c, row in rows.items()]


def _validation_message(batch: Mapping[str, Any]) -> str:
    errors = (batch.get("errors") or {}).get("data") or []
    parts = []
    for error in errors[:3]:
        where = f" (line {error['line']})" if error.get("line") else ""
        parts.append(f"{error.get('code')}: {error.get('message')}{where}")
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return "the batch failed validation: " + ("; ".join(parts) or "no reason given") + more


async def _write(
    spec: BatchSpec, out: OutputDir, results: list[Result], id_var: str, *, replace_old: bool
) -> int:
    """Commit ``results`` as chunks; rows already committed are skipped, unless they
    ``replace_old`` ones (a resubmission), which then leave the older chunks."""
    if not replace_old:
        done, _ = committed_ids(out.path, id_var, retry_failed=False)
        results = [r for r in results if r.id not in done]
    if not results:
        return 0
    id_type = _read_type(out, id_var)
    writer = ChunkWriter(
        out.path,
        chunk_size=spec.chunk_size,
        endpoint=spec.endpoint,
        id_var=id_var,
        id_type=id_type,
        stamp=out.manifest["fingerprint"],
    )
    try:
        await writer.add(results)
    finally:
        await writer.close()
    if replace_old:
        drop_superseded(out.path, writer.written, id_var)
    return len(results)


def _read_type(out: OutputDir, id_var: str) -> pa.DataType:
    """The type of the run's ids, as the jobs' maps keep it."""
    for record in _records(out):
        with contextlib.suppress(OSError, pa.ArrowException):
            return pq.read_schema(_map_path(out, record)).field("id").type
    raise CheckpointError(f"{out.path / JOBS} holds no readable map of a job's rows")


async def _resubmit(spec: BatchSpec, http: BatchHttp, out: OutputDir, *, progress: bool) -> None:
    """Send the failed rows once more, as a new job, and follow it to its end."""
    id_var = str(out.manifest["id_var"])
    again = _failed_once(out, id_var)
    if not again:
        return
    if progress:
        _note(f"resubmitting {len(again):,} failed rows once, as a new job")
    id_type = _read_type(out, id_var)
    await _submit(spec, http, out, again, id_type=id_type, resubmission=True)
    await _follow(spec, http, out, progress=progress)


def _failed_once(out: OutputDir, id_var: str) -> list[tuple[Any, str]]:
    """The rows whose latest result is an error and that no resubmission carried yet,
    with their texts (from the jobs' maps)."""
    tables = read_chunks(chunk_paths(out.path), columns=[id_var, ".error"])
    if not tables:
        return []
    latest = latest_per_id(pa.concat_tables(tables), id_var)
    failed = set(latest.filter(latest.column(".error")).column(id_var).to_pylist())
    again = [r for r in _records(out) if r.get("resubmission")]
    failed -= _ids_in_jobs(out, again)
    rows: list[tuple[Any, str]] = []
    for record in _records(out):
        if record.get("resubmission") or not failed:
            continue
        table = _read_map(out, record, ["id", "text"])
        for row_id, text in zip(
            table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True
        ):
            if row_id in failed:
                rows.append((row_id, text))
                failed.discard(row_id)
    return rows


def _finish(out: OutputDir) -> None:
    records = _records(out)
    this_run = {
        "jobs": len(records),
        "requests": sum(int(r.get("requests", 0)) for r in records),
        "succeeded": sum(int(r.get("succeeded", 0)) for r in records),
        "failed": sum(int(r.get("failed", 0)) for r in records),
    }
    finish_manifest(out, this_run, id_var=str(out.manifest["id_var"]), interrupted=False)


def _summary(out: OutputDir, states: Sequence[JobState], progress: bool) -> None:
    if progress:
        _note(
            _progress_line(states, None) + f"; collect with the same call or "
            f"`endpointr jobs fetch {out.path}`"
        )


def _progress_line(states: Sequence[JobState], elapsed: float | None) -> str:
    by_status: dict[str, int] = {}
    total = done = failed = 0
    for state in states:
        by_status[state.status] = by_status.get(state.status, 0) + 1
        total += int(state.record.get("requests", 0))
        if state.record.get("fetched"):
            done += int(state.record.get("requests", 0))
            failed += int(state.record.get("failed", 0))
        else:
            counts = state.counts
            done += counts.get("completed", 0) + counts.get("failed", 0)
            done += sum(counts.get(k, 0) for k in ("succeeded", "errored", "canceled", "expired"))
            failed += counts.get("failed", 0) + counts.get("errored", 0)
    jobs = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    clock = f" | {_clock(elapsed)}" if elapsed is not None else ""
    return (
        f"{len(states)} job{'s' * (len(states) != 1)} ({jobs}) | {done:,}/{total:,} requests "
        f"done, {failed:,} failed{clock}"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _collect(out: OutputDir, source: Source, endpoint: Endpoint) -> Any:
    tables = read_chunks(chunk_paths(out.path))
    if not tables:
        raise EndpointrError(f"{out.path} holds no results yet")
    id_var = source.id_var
    table = latest_per_id(pa.concat_tables(tables, promote_options="permissive"), id_var)
    table = endpoint.finalize(table)
    ids = source.ids
    column = table.column(id_var)
    if not column.type.equals(ids.type):
        ids = ids.cast(column.type)
    position = pc.index_in(ids, value_set=column)
    if position.null_count:
        raise EndpointrError(
            f"{position.null_count} input rows have no result in {out.path}; run the same "
            "call again to submit them"
        )
    frame = to_frame(table.take(position), source.kind)
    if source.kind == "pandas":
        frame.attrs["output_dir"] = str(out.path.resolve())
    return frame


def _estimate(
    spec: BatchSpec, left: Sequence[tuple[Any, Any]], done: int, in_jobs: int
) -> Estimate:
    texts = [str(t) for _, t in left]
    names = [f"r{i}" for i in range(len(texts))]
    lines = _lines(spec, names, texts) if texts else []
    parts = _parts(spec, lines) if lines else []
    counter = TokenCounter(spec.endpoint.tokenizer_model)
    tokens = sum(spec.endpoint.token_cost([Row(None, t)], counter.count) for t in texts)
    return Estimate(
        rows=len(texts),
        requests=len(lines),
        input_tokens=tokens,
        tokens_counted=counter.exact,
        bytes=sum(len(line) + 1 for line in lines),
        jobs=len(parts),
        files=len(parts) if spec.provider == "openai" else 0,
        rows_done=done,
        rows_in_jobs=in_jobs,
    )


# ------------------------------------------------------------ jobs of a directory only


def jobs_frame(
    records: Sequence[Mapping[str, Any]], states: Sequence[JobState], where: Path
) -> Any:
    """The jobs of an output directory as a pandas frame (one row per job)."""
    import pandas as pd

    rows = []
    for record, state in zip(records, states, strict=True):
        rows.append(
            {
                "job_id": record.get("id"),
                "provider": record.get("provider"),
                "status": state.status,
                "requests": record.get("requests"),
                "fetched": bool(record.get("fetched")),
                "resubmission": bool(record.get("resubmission")),
                "provider_counts": orjson.dumps(state.counts).decode() if state.counts else None,
            }
        )
    frame = pd.DataFrame(rows)
    frame.attrs["output_dir"] = str(where.resolve())
    return frame


def open_job_dir(output_dir: str | Path) -> tuple[dict[str, Any], Path]:
    """The manifest of a job's output directory; :class:`CheckpointError` if it is not one."""
    path = Path(output_dir)
    manifest = read_manifest(path)
    if manifest is None or not isinstance(manifest.get("batch"), Mapping):
        raise CheckpointError(f"{path} is not the output directory of a Batch job call")
    return manifest, path


async def job_states(spec: BatchSpec, output_dir: str | Path) -> Any:
    """The jobs of ``output_dir`` as the provider describes them now (nothing fetched)."""
    manifest, path = open_job_dir(output_dir)
    records = list(manifest.get("jobs") or [])
    key = resolve_key(spec.key_name)
    async with spec.http(key) as http:
        states = [
            await _state(spec, http, r) if r.get("id") else JobState(r, "submitting")
            for r in records
        ]
    return jobs_frame(records, states, path)


async def follow_dir(
    spec: BatchSpec,
    output_dir: str | Path,
    *,
    wait: bool = True,
    resubmit_failed: bool = False,
    cancel: bool = False,
    progress: bool = True,
) -> Any:
    """Fetch (``wait``: follow to the end) the jobs of ``output_dir`` without its input
    frame; ``cancel`` first asks the provider to cancel every unfetched job (their
    finished requests are still collected). Returns the jobs table."""
    manifest, path = open_job_dir(output_dir)
    key = resolve_key(spec.key_name)
    out = prepare_output_dir(
        path, id_var=str(manifest["id_var"]), request_settings=manifest["request_settings"]
    )
    try:
        async with spec.http(key) as http:
            await _reattach(spec, http, out)
            if cancel:
                await _cancel(spec, http, out, progress=progress)
            if wait:
                await _follow(spec, http, out, progress=progress)
                if resubmit_failed:
                    await _resubmit(spec, http, out, progress=progress)
            states = [await _state(spec, http, r) for r in _records(out)]
            if not wait:
                await _fetch_ended(spec, http, out, states, progress=progress)
            return jobs_frame(_records(out), states, out.path)
    finally:
        out.release()


async def _cancel(spec: BatchSpec, http: BatchHttp, out: OutputDir, *, progress: bool) -> None:
    for record in _records(out):
        if record.get("fetched") or not record.get("id"):
            continue
        state = await _state(spec, http, record)
        if state.final:
            continue
        if spec.provider == "openai":
            await OpenAIBatches(http).cancel(record["id"])
        else:
            await AnthropicBatches(http).cancel(record["id"])
        if progress:
            _note(f"cancelling job {record['id']}")


async def cancel_jobs(spec: BatchSpec, output_dir: str | Path, *, wait: bool = True) -> Any:
    """Cancel the unfetched jobs of ``output_dir``; ``wait`` collects what they finished."""
    return await follow_dir(spec, output_dir, wait=wait, cancel=True)


def _note(line: str) -> None:
    print(f"endpointr: {line}", file=sys.stderr)
