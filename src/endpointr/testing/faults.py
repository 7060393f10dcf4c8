"""Scripted faults: what the fake server does instead of a correct answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "SHORTCUT_KINDS", "Fault"]

FAULT_KINDS = (
    "ok",
    "status",
    "delay",
    "malformed",
    "html",
    "empty",
    "wrong_count",
    "reset_before",
    "reset_mid",
)
SHORTCUT_KINDS = (
    "429",
    "429_no_retry_after",
    "500",
    "502",
    "503",
    "504",
    "529",
    "400",
    "413",
    "422",
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One request's misbehaviour; build it with the classmethods, not the constructor.

    ``kind`` is one of :data:`FAULT_KINDS`. ``code`` is the HTTP status of ``"status"``
    and ``"html"`` faults, ``retry_after`` the ``Retry-After`` header of a ``"status"``
    fault (seconds, or an HTTP-date string sent as-is), ``body`` replaces the provider's
    error body (a string is sent verbatim, anything else as JSON), and ``seconds`` is the
    extra wait of a ``"delay"`` fault.
    """

    kind: str
    code: int | None = None
    retry_after: float | str | None = None
    body: Any = None
    seconds: float = 0.0

    @classmethod
    def ok(cls) -> Fault:
        """No fault: the request is answered normally."""
        return cls("ok")

    @classmethod
    def status(cls, code: int, retry_after: float | str | None = None, body: Any = None) -> Fault:
        """Answer ``code`` with the route's provider error body (or ``body``)."""
        return cls("status", code=int(code), retry_after=retry_after, body=body)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer correctly, ``seconds`` later than the latency model says."""
        return cls("delay", seconds=float(seconds))

    @classmethod
    def malformed(cls) -> Fault:
        """200 ``application/json`` whose body is truncated, invalid JSON."""
        return cls("malformed")

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page with ``status``, as a proxy in front of the model sends."""
        return cls("html", code=int(status))

    @classmethod
    def empty(cls) -> Fault:
        """200 with an empty body."""
        return cls("empty")

    @classmethod
    def wrong_count(cls) -> Fault:
        """200 with one result fewer than inputs (chat: no choices / no content)."""
        return cls("wrong_count")

    @classmethod
    def reset_before(cls) -> Fault:
        """Close the connection without answering."""
        return cls("reset_before")

    @classmethod
    def reset_mid(cls) -> Fault:
        """Send the headers and part of the body, then abort the connection."""
        return cls("reset_mid")

    @classmethod
    def from_kind(cls, kind: str, *, retry_after: float = 0.05, delay: float = 1.0) -> Fault:
        """The fault a kind name stands for, as used by random faults.

        Accepts :data:`FAULT_KINDS` and the shortcuts :data:`SHORTCUT_KINDS`: a status
        code (``"429"`` carries ``Retry-After: retry_after``; ``"429_no_retry_after"``
        does not). ``"status"`` alone means 500 and ``"delay"`` waits ``delay`` seconds.
        """
        if kind == "429":
            return cls.status(429, retry_after=retry_after)
        if kind == "429_no_retry_after":
            return cls.status(429)
        if kind in SHORTCUT_KINDS:
            return cls.status(int(kind))
        if kind == "status":
            return cls.status(500)
        if kind == "delay":
            return cls.delay(delay)
        if kind == "html":
            return cls.html()
        if kind in FAULT_KINDS:
            return cls(kind)
        known = ", ".join(FAULT_KINDS + SHORTCUT_KINDS)
        raise ValueError(f"unknown fault kind {kind!r}; known kinds: {known}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from JSON such as ``{"kind": "status", "code": 503, "retry_after": 1}``.

        Keys besides ``kind``: ``code`` (or ``status``), ``retry_after``, ``body`` and
        ``seconds``; a kind given alone may be any name :meth:`from_kind` accepts.
        """
        kind = str(data.get("kind", "ok"))
        code = data.get("code", data.get("status"))
        if kind == "status" and code is not None:
            return cls.status(int(code), data.get("retry_after"), data.get("body"))
        if kind == "delay" and "seconds" in data:
            return cls.delay(float(data["seconds"]))
        if kind == "html" and code is not None:
            return cls.html(int(code))
        return cls.from_kind(kind)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form :meth:`from_dict` reads back."""
        return {
            "kind": self.kind,
            "code": self.code,
            "retry_after": self.retry_after,
            "body": self.body,
            "seconds": self.seconds,
        }
