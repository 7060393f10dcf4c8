"""The manifest (``_metadata.json``) and resume: what a run is, and which ids it has done.

An output directory belongs to one run, named by a fingerprint of the settings that
change answers (endpoint, URL, model, parameters, schema, prompt, columns). A re-run with
the same fingerprint skips the ids already committed; a different one is refused unless
the caller asks to start over. Settings that do not change answers (concurrency,
timeouts) may differ between the runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import CheckpointError, ConfigError
from .chunks import chunk_paths, chunk_stamp, read_chunks, write_atomic
from .readers import duplicated

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MANIFEST",
    "OutputDir",
    "auto_dir",
    "committed_ids",
    "fingerprint",
    "finish_manifest",
    "now_iso",
    "prepare_output_dir",
    "read_manifest",
]

# a leading underscore: Parquet readers (pyarrow, pandas, polars, DuckDB) skip the file, so
# the output directory reads as a dataset as it is
MANIFEST = "_metadata.json"
# the name earlier versions wrote; read when resuming their directories
LEGACY_MANIFEST = "metadata.json"
LOCK = ".lock"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fingerprint(settings: dict[str, Any]) -> str:
    """A short stable hash of the request-defining ``settings``."""
    canonical = orjson.dumps(settings, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()[:16]


@dataclass
class OutputDir:
    """A prepared output directory: where to write, and which ids are already settled."""

    path: Path
    done_ids: set[Any]
    resumed_rows: int
    manifest: dict[str, Any]
    lock: IO[bytes] | None = None

    def release(self) -> None:
        """Let other runs use the directory again."""
        if self.lock is not None:
            (self.path / LOCK).unlink(missing_ok=True)
            self.lock.close()
            self.lock = None

    def save(self, **updates: Any) -> None:
        """Merge ``updates`` into the manifest and write it atomically."""
        self.manifest.update(updates)
        body = orjson.dumps(self.manifest, option=orjson.OPT_INDENT_2, default=str)
        write_atomic(self.path / MANIFEST, lambda tmp: Path(tmp).write_bytes(body))
        legacy = self.path / LEGACY_MANIFEST
        if legacy.exists():  # an earlier version's directory, resumed: one manifest only
            legacy.unlink()


def auto_dir(prefix: str, request_settings: dict[str, Any], input_digest: str) -> Path:
    """The directory ``output_dir="auto"`` names: one per endpoint, settings and input,
    in the working directory, so the same call on the same input finds its results
    again, and a changed input or setting gets a directory of its own."""
    key = fingerprint({"settings": request_settings, "input": input_digest})[:12]
    return Path(f"endpointr-{prefix}-{key}")


def prepare_output_dir(
    output_dir: str | Path,
    *,
    id_var: str,
    request_settings: dict[str, Any],
    overwrite: bool = False,
    retry_failed: bool = False,
) -> OutputDir:
    """Create or reopen ``output_dir``.

    Raises :class:`CheckpointError` when the directory holds another run's results and
    ``overwrite`` is false, and :class:`ConfigError` when it cannot be created.
    """
    path = Path(output_dir)
    print_ = fingerprint(request_settings)
    old = None if overwrite else read_manifest(path)
    if not overwrite:
        _check_reusable(path, old, print_, request_settings)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output_dir {str(path)!r}: {exc}") from None
    lock = _lock(path)
    if overwrite:
        _clear(path)
    done, resumed = committed_ids(path, id_var, retry_failed=retry_failed) if old else (set(), 0)
    manifest = dict(old or {})
    manifest.update(fingerprint=print_, request_settings=request_settings)
    return OutputDir(path, done, resumed, manifest, lock)


def _check_reusable(
    path: Path, old: dict[str, Any] | None, print_: str, request_settings: dict[str, Any]
) -> None:
    chunks = chunk_paths(path)
    if old is None and chunks:
        raise CheckpointError(
            f"{path} holds chunk files but no {MANIFEST}; choose another output_dir, or pass "
            "overwrite=True (--overwrite) to start over"
        )
    if old is not None and old.get("fingerprint") != print_:
        raise CheckpointError(_mismatch(path, old.get("request_settings", {}), request_settings))
    for chunk in chunks:
        stamp = chunk_stamp(chunk)
        if stamp is not None and stamp != print_:
            raise CheckpointError(
                f"{chunk} was written by a run with other settings; move it out of {path}, "
                "or pass overwrite=True (--overwrite) to start over"
            )


def _lock(path: Path) -> IO[bytes] | None:
    """Hold an exclusive lock on ``path`` for this process (released when it ends)."""
    if fcntl is None:
        return None
    handle = open(path / LOCK, "wb")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise CheckpointError(
            f"another endpointr run is writing to {path}; wait for it to finish or choose "
            "another output_dir"
        ) from None
    return handle


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of ``path`` (this name or an earlier version's), ``None`` when there
    is none; :class:`CheckpointError` when it cannot be read."""
    file = path / MANIFEST
    if not file.is_file():
        file = path / LEGACY_MANIFEST
    if not file.is_file():
        return None
    try:
        manifest = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{file} is not an endpointr manifest")
    return manifest


def _clear(path: Path) -> None:
    for chunk in chunk_paths(path):
        chunk.unlink()
    for name in (MANIFEST, LEGACY_MANIFEST):
        if (path / name).exists():
            (path / name).unlink()
    for tmp in path.glob(".chunk-*.tmp") if path.is_dir() else ():
        tmp.unlink()


def _mismatch(path: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return (
        f"{path} holds results of a run with different settings ({', '.join(changed)} "
        "changed), so its rows cannot be reused. Use another output_dir, or pass "
        "overwrite=True (--overwrite) to delete them and start over."
    )


def committed_ids(path: Path, id_var: str, *, retry_failed: bool) -> tuple[set[Any], int]:
    """The ids committed in ``path``'s chunks (with ``retry_failed``: only those without
    an error), and how many."""
    done: set[Any] = set()
    for table in read_chunks(chunk_paths(path), columns=[id_var, ".error"]):
        ids = table.column(id_var)
        if retry_failed:
            ids = ids.filter(pc.invert(table.column(".error")))
        done.update(ids.to_pylist())
    return done, len(done)


def latest_per_id(table: pa.Table, id_var: str) -> pa.Table:
    """``table`` with one row per id: where an id repeats, its last row wins."""
    if not len(duplicated(table.column(id_var))):
        return table
    order = pa.array(range(table.num_rows))
    keyed = table.append_column("__row", order)
    last = keyed.group_by(id_var, use_threads=False).aggregate([("__row", "max")])
    return table.take(pc.sort_indices(last.column("__row_max")))


def finish_manifest(
    out: OutputDir, this_run: dict[str, Any], *, id_var: str, interrupted: bool
) -> None:
    """Record this run's counters and the totals over every committed chunk."""
    paths = chunk_paths(out.path)
    tables = read_chunks(paths, columns=[id_var, ".error"])
    errors = latest_per_id(pa.concat_tables(tables), id_var).column(".error") if tables else None
    failures = (pc.sum(errors).as_py() or 0) if errors is not None else 0
    out.save(
        status="interrupted" if interrupted else "completed",
        ended_at=now_iso(),
        successes=(len(errors) if errors is not None else 0) - failures,
        failures=failures,
        this_run=this_run,
        rows_resumed=out.resumed_rows,
        chunks=[p.name for p in paths],
    )
