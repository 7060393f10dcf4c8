"""A persistent response cache: answers kept in SQLite, so a later run sends only what is new.

An entry is keyed by a hash of the request-defining settings (endpoint, URL, model,
parameters: :meth:`~endpointr.providers.base.Endpoint.fingerprint`) and the text, and holds
the endpoint's encoding of the answer (:meth:`~endpointr.providers.base.Endpoint.to_cache`)
with a checksum. Only good answers are kept; error rows are sent again next time.

The file is ``<cache_dir>/responses.sqlite`` in WAL mode, so runs in several processes
share one cache: readers never wait, writers take turns. A file that is not SQLite, a
SQLite file that is not an endpointr cache, or an entry whose checksum does not match is a
:class:`~endpointr.errors.CacheError`, never an answer.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..errors import CacheError

__all__ = ["CACHE_FILE", "ResponseCache"]

_T = TypeVar("_T")
CACHE_FILE = "responses.sqlite"
FORMAT = "endpointr-response-cache"
VERSION = 1
_BUSY_MS = 60_000  # how long a writer waits for another run's write to finish
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS endpointr_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS endpointr_answers ("
    " key BLOB PRIMARY KEY, answer BLOB NOT NULL, checksum BLOB NOT NULL,"
    " status INTEGER, stored REAL NOT NULL) WITHOUT ROWID",
)


def _checksum(key: bytes, answer: bytes) -> bytes:
    return hashlib.blake2b(answer, key=key, digest_size=8).digest()


class ResponseCache:
    """The answers cached in ``directory`` for one set of request settings.

    ``settings`` (JSON-serialisable) are what make two requests of one text the same
    request; an answer stored under other settings is never returned. Open it with
    :meth:`open`; :meth:`close` writes what is still buffered.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path, settings: Mapping[str, Any]):
        self._db, self.path = connection, path
        self._scope = hashlib.blake2b(
            orjson.dumps(dict(settings), option=orjson.OPT_SORT_KEYS), digest_size=16
        ).digest()
        self._pending: list[tuple[bytes, bytes, bytes, int | None, float]] = []

    @classmethod
    def open(cls, directory: str | Path, settings: Mapping[str, Any]) -> ResponseCache:
        """The cache in ``directory`` (made if missing). Raises :class:`CacheError` when
        the directory cannot be made or its file is not an endpointr cache."""
        where = Path(directory).expanduser()
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot use cache_dir {str(where)!r}: {exc}") from None
        if not where.is_dir():
            raise CacheError(f"cache_dir {str(where)!r} is not a directory")
        path = where / CACHE_FILE
        try:
            db = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open the cache {str(path)!r}: {exc}") from None
        try:
            _prepare_waiting(db, path)
        except BaseException:
            db.close()
            raise
        return cls(db, path, settings)

    def key(self, text: str) -> bytes:
        """The entry key of ``text`` under this cache's settings."""
        data = text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, key=self._scope, digest_size=16).digest()

    def get(self, key: bytes) -> tuple[bytes, int | None] | None:
        """The stored answer and its HTTP status under ``key``, or ``None``."""
        row = _waiting(
            self.path,
            lambda: self._db.execute(
                "SELECT answer, checksum, status FROM endpointr_answers WHERE key = ?", (key,)
            ).fetchone(),
        )
        if row is None:
            return None
        answer, checksum, status = row
        if not isinstance(answer, bytes) or _checksum(key, answer) != checksum:
            raise CacheError(
                f"the cache {str(self.path)!r} is corrupt (an entry does not match its "
                "checksum); delete the file or point cache_dir elsewhere"
            )
        return answer, status

    def put(self, key: bytes, answer: bytes, status: int | None) -> None:
        """Keep ``answer`` under ``key``; written by :meth:`flush`."""
        self._pending.append((key, answer, _checksum(key, answer), status, time.time()))

    def put_many(self, entries: Iterable[tuple[bytes, bytes, int | None]]) -> None:
        for key, answer, status in entries:
            self.put(key, answer, status)

    def flush(self) -> None:
        """Write the buffered answers in one transaction (waiting for another run's)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []

        def write() -> None:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO endpointr_answers VALUES (?, ?, ?, ?, ?)", pending
                )

        _waiting(self.path, write)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM endpointr_answers").fetchone()
        return int(count)


def _prepare_waiting(db: sqlite3.Connection, path: Path) -> None:
    """:func:`_prepare`, waiting while another run holds the file: switching to WAL
    (made by the first run to open a new cache) does not wait for a lock by itself."""
    _waiting(path, lambda: _prepare(db, path))


def _waiting(path: Path, action: Callable[[], _T]) -> _T:
    """``action()``, again while the file is locked by another run (SQLite's own wait
    does not cover every case: a journal switch, a checkpoint); a lock that outlasts
    the busy timeout, or any other error, is a :class:`CacheError`."""
    deadline = time.monotonic() + _BUSY_MS / 1000
    pause = 0.01
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise _broken(path, exc) from None
            if time.monotonic() > deadline:
                raise CacheError(
                    f"the cache {str(path)!r} stayed locked by another run for "
                    f"{_BUSY_MS // 1000} s; try again when it is done"
                ) from None
        except sqlite3.DatabaseError as exc:
            raise _broken(path, exc) from None
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    """Check ``db`` is an endpointr cache (making one in an empty file) and set it up."""
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if tables and "endpointr_meta" not in tables:
            raise CacheError(
                f"{str(path)!r} is an SQLite file but not an endpointr cache (it has "
                f"{', '.join(sorted(tables)[:5])}); point cache_dir at a directory of its own"
            )
        db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        if not tables:
            with db:
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    db.execute(statement)
                db.executemany(
                    "INSERT OR IGNORE INTO endpointr_meta VALUES (?, ?)",
                    [("format", FORMAT), ("version", str(VERSION))],
                )
        meta = dict(db.execute("SELECT name, value FROM endpointr_meta").fetchall())
    except sqlite3.OperationalError as exc:
        if _locked(exc):
            raise  # another run is making or changing the file: wait for it
        raise _broken(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise _broken(path, exc) from None
    if meta.get("format") != FORMAT:
        raise CacheError(
            f"{str(path)!r} is not an endpointr cache (format {meta.get('format')!r}); "
            "point cache_dir at a directory of its own"
        )
    if meta.get("version") != str(VERSION):
        raise CacheError(
            f"the cache {str(path)!r} has version {meta.get('version')}, this endpointr "
            f"reads version {VERSION}; use another cache_dir (or upgrade endpointr)"
        )


def _broken(path: Path, exc: sqlite3.DatabaseError) -> CacheError:
    return CacheError(
        f"cannot read the cache {str(path)!r} ({exc}): the file is corrupt or not an "
        "endpointr cache; delete it or point cache_dir elsewhere"
    )
