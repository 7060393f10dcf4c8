"""Scripted faults: what the fake server does instead of a correct answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "SHORTCUT_KINDS", "Fault"]

_RETRY_AFTER = 0.05
_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class _Ask:
    """What a kind's builder may use: the keys of a JSON fault (empty for a bare kind
    name) and the ``retry_after`` and ``delay`` of :meth:`Fault.from_kind`."""

    fields: Mapping[str, Any]
    retry_after: float | None
    delay: float

    @property
    def code(self) -> int | None:
        """The ``code`` (or ``status``) key as an int, ``None`` when absent."""
        code = self.fields.get("code", self.fields.get("status"))
        return None if code is None else int(code)


def _status(ask: _Ask) -> Fault:
    if ask.code is None:
        return Fault.status(500)
    return Fault.status(ask.code, ask.fields.get("retry_after"), ask.fields.get("body"))


def _delay(ask: _Ask) -> Fault:
    return Fault.delay(ask.fields.get("seconds", ask.delay))


def _html(ask: _Ask) -> Fault:
    return Fault.html() if ask.code is None else Fault.html(ask.code)


def _status_code(code: int) -> Callable[[_Ask], Fault]:
    return lambda ask: Fault.status(code)


_KIND_BUILDERS: dict[str, Callable[[_Ask], Fault]] = {
    "ok": lambda ask: Fault.ok(),
    "status": _status,
    "delay": _delay,
    "malformed": lambda ask: Fault.malformed(),
    "html": _html,
    "empty": lambda ask: Fault.empty(),
    "wrong_count": lambda ask: Fault.wrong_count(),
    "reset_before": lambda ask: Fault.reset_before(),
    "reset_mid": lambda ask: Fault.reset_mid(),
}
_SHORTCUT_BUILDERS: dict[str, Callable[[_Ask], Fault]] = {
    "429": lambda ask: Fault.status(429, retry_after=ask.retry_after),
    "429_no_retry_after": _status_code(429),
    **{str(code): _status_code(code) for code in (500, 502, 503, 504, 529, 400, 413, 422)},
}
_BUILDERS = {**_KIND_BUILDERS, **_SHORTCUT_BUILDERS}

FAULT_KINDS = tuple(_KIND_BUILDERS)
SHORTCUT_KINDS = tuple(_SHORTCUT_BUILDERS)


def _build(kind: str, ask: _Ask) -> Fault:
    builder = _BUILDERS.get(kind)
    if builder is None:
        known = ", ".join(FAULT_KINDS + SHORTCUT_KINDS)
        raise ValueError(f"unknown fault kind {kind!r}; known kinds: {known}")
    return builder(ask)


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
    def from_kind(
        cls, kind: str, *, retry_after: float | None = _RETRY_AFTER, delay: float = _DELAY
    ) -> Fault:
        """The fault a kind name stands for, as used by random faults.

        Accepts :data:`FAULT_KINDS` and the shortcuts :data:`SHORTCUT_KINDS`: a status
        code (``"429"`` carries ``Retry-After: retry_after``, none if it is ``None``;
        ``"429_no_retry_after"`` does not). ``"status"`` alone means 500 and ``"delay"``
        waits ``delay`` seconds. Unknown names raise ``ValueError``.
        """
        return _build(kind, _Ask({}, retry_after, delay))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from JSON such as ``{"kind": "status", "code": 503, "retry_after": 1}``.

        Keys besides ``kind``: ``code`` (or ``status``), ``retry_after`` and ``body`` of a
        ``"status"`` fault given its code, ``code`` of ``"html"`` and ``seconds`` of
        ``"delay"``; otherwise the fault is :meth:`from_kind`'s for the kind.
        """
        return _build(str(data.get("kind", "ok")), _Ask(data, _RETRY_AFTER, _DELAY))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form :meth:`from_dict` reads back."""
        return asdict(self)
