"""Plain data passed between the layers: rows in, requests out, results back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HttpRequest", "HttpResponse", "Result", "Row", "Usage"]


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
