"""Plain data passed between the layers: rows in, requests out, results back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HttpRequest", "HttpResponse", "Launch", "Result", "Row", "Usage"]


@dataclass(frozen=True, slots=True)
class Row:
    """One input record. ``text`` is what is sent (a text or a prompt)."""

    id: Any
    text: str


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What an endpoint asks the transport to send. ``body`` is already-encoded JSON."""

    method: str
    url: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What the transport got back: the status, headers (lower-case names) and raw body."""

    status: int
    headers: dict[str, str]
    body: bytes


Usage = dict[str, int]


@dataclass(frozen=True, slots=True)
class Launch:
    """A server an endpoint starts for the length of a run (the local model server).

    ``module`` runs as ``python -m module`` with ``args``, where ``{host}`` and ``{port}``
    stand for the loopback address and the free port chosen for it. It takes requests once
    ``GET ready_path`` answers 200, which it must do within ``start_timeout`` seconds.
    ``name`` is what messages call it.
    """

    name: str
    module: str
    args: tuple[str, ...]
    ready_path: str = "/health"
    start_timeout: float = 60.0


@dataclass(slots=True)
class Result:
    """The outcome of one row: a value, or an error that says why.

    ``value`` is endpoint-specific (a vector, label scores, a completion); the endpoint
    turns a list of values into output columns. ``status`` is the HTTP status of the last
    attempt (``None`` for a network error or a row that was never sent). ``cause`` is the
    error a failed row stands for (not written out; the one-text functions raise it).
    """

    id: Any
    value: Any = None
    error: bool = False
    error_msg: str | None = None
    status: int | None = None
    attempts: int = 0
    cause: Exception | None = None

    @classmethod
    def failed(cls, row_id: Any, message: str, status: int | None = None) -> Result:
        return cls(id=row_id, error=True, error_msg=message, status=status)
