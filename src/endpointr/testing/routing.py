"""The contract between the dispatcher and the per-provider route modules.

A :class:`Route` is a pair of pure functions: ``parse`` reads a request body into a
:class:`Parsed` (never raising: a bad body becomes ``Parsed.error``) and ``answer``
turns a valid :class:`Parsed` into the bytes of the 200 JSON answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .providers import Family
from .state import ServerState, Settings

__all__ = ["AnswerContext", "BadRequest", "Parsed", "Route", "dumps", "parse_with"]

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``; numpy arrays are written as lists of numbers."""
    return orjson.dumps(value, option=_DUMP_OPTIONS)


class BadRequest(Exception):
    """Raised by a parser: the request is answered ``status`` with ``message``.

    ``texts`` are the inputs, when they could be read, so the request's rows are recorded;
    ``body``, if given, replaces the provider's error body (as :class:`Parsed.error_body`).
    """

    def __init__(
        self, status: int, message: str, texts: tuple[str, ...] = (), body: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.texts = texts
        self.body = body


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request body as a route understood it.

    ``texts`` are the row texts (checked for poison, counted in ``texts_seen``);
    ``rows`` is the number of inputs; ``payload`` is route-specific; ``error`` is
    ``(status, message)`` when the body is invalid, answered with ``error_body`` if set
    (a string verbatim, anything else as JSON), else the provider's error body.
    ``tokens`` counts the input tokens by the fake tokenizer (what the answer's usage
    reports) and ``max_output`` the output tokens asked for at most; both are the
    request's cost for ``tpm``.
    """

    texts: tuple[str, ...] = ()
    rows: int = 0
    payload: Any = None
    error: tuple[int, str] | None = None
    error_body: Any = None
    tokens: int = 0
    max_output: int = 0

    @property
    def cost(self) -> int:
        """Tokens the request spends of a ``tpm`` budget."""
        return self.tokens + self.max_output


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What an answer may depend on besides the request: settings and server state.

    ``wrong_count`` asks for one result fewer than inputs (chat: no result at all).
    """

    settings: Settings
    state: ServerState
    wrong_count: bool = False


Parser = Callable[[Any, Mapping[str, str], Settings], Parsed]
Answerer = Callable[[Parsed, AnswerContext], bytes]


@dataclass(frozen=True, slots=True)
class Route:
    """A provider route: ``method`` and ``path``, its family and its two functions."""

    method: str
    path: str
    family: Family
    parse: Parser
    answer: Answerer


def parse_with(
    reader: Callable[[Any, Mapping[str, str], Settings], Parsed],
) -> Parser:
    """``reader`` made total: a :class:`BadRequest` it raises becomes ``Parsed.error``."""

    def parse(data: Any, headers: Mapping[str, str], settings: Settings) -> Parsed:
        try:
            return reader(data, headers, settings)
        except BadRequest as exc:
            error = (exc.status, exc.message)
            return Parsed(exc.texts, len(exc.texts), error=error, error_body=exc.body)

    return parse
