"""The lines of a Batch job and the results that come back, both through a registered
endpoint: it builds each request body exactly as an online run would send it, and reads
each result as it would read the online answer, so a job's rows get the same columns.

Custom ids must match ``^[a-zA-Z0-9_-]{1,64}$`` at Anthropic (OpenAI takes any string);
:func:`custom_ids` gives one id that fits both for every row id, of any type or length.
Results are matched by custom id, never by position.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from ..errors import RequestError
from ..providers.base import Endpoint
from ..types import HttpResponse, Result, Row

__all__ = [
    "ANTHROPIC_ERRORS",
    "CUSTOM_ID",
    "anthropic_request",
    "custom_ids",
    "jsonl",
    "missing",
    "openai_line",
    "read_anthropic_line",
    "read_openai_line",
    "result_lines",
]

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Anthropic's error types and the HTTP status each stands for
ANTHROPIC_ERRORS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_NOT_RUN = {
    "canceled": "canceled: the batch was canceled before this request ran",
    "expired": "expired: the batch expired before this request ran",
}


def custom_ids(ids: Sequence[Any]) -> list[str]:
    """One custom id per row id, unique, each fitting ``^[a-zA-Z0-9_-]{1,64}$``.

    A string or integer id that fits already is kept as it is (readable in the
    provider's console); any other gets ``h`` and a hash of its value, made unique.

    >>> custom_ids(["a-1", 7, "x" * 65])[:2]
    ['a-1', '7']
    """
    out: list[str | None] = []
    used: set[str] = set()
    for value in ids:
        text = value if isinstance(value, str) else _int_text(value)
        if text is not None and CUSTOM_ID.fullmatch(text) and text not in used:
            used.add(text)
            out.append(text)
        else:
            out.append(None)
    for i, value in enumerate(ids):
        if out[i] is not None:
            continue
        digest = hashlib.blake2b(repr(value).encode(), digest_size=12).hexdigest()
        candidate, n = f"h{digest}", 1
        while candidate in used:
            candidate, n = f"h{digest}-{n}", n + 1
        used.add(candidate)
        out[i] = candidate
    return [c for c in out if c is not None]


def _int_text(value: Any) -> str | None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        return None
    return str(int(value))


def openai_line(endpoint: Endpoint, url: str, custom_id: str, text: str) -> bytes:
    """The JSONL line (without newline) of one request to OpenAI's ``url`` route."""
    request = endpoint.build_request([Row(custom_id, text)])
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": orjson.Fragment(request.body or b"{}"),
    }
    return orjson.dumps(line)


def anthropic_request(endpoint: Endpoint, custom_id: str, text: str) -> bytes:
    """One item of a Message Batch's ``requests`` list, as JSON."""
    request = endpoint.build_request([Row(custom_id, text)])
    return orjson.dumps({"custom_id": custom_id, "params": orjson.Fragment(request.body or b"{}")})


def jsonl(lines: Iterable[bytes]) -> bytes:
    """``lines`` as one JSONL file."""
    return b"".join(line + b"\n" for line in lines)


def result_lines(content: bytes) -> Iterator[tuple[int, str | None, Any]]:
    """``(line number, custom_id, line)`` of each non-blank line of a batch's results;
    ``custom_id`` is ``None`` for a line that is not a JSON object with a string one."""
    for number, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            yield number, None, None
            continue
        custom = line.get("custom_id") if isinstance(line, dict) else None
        yield number, custom if isinstance(custom, str) else None, line


def _answer(endpoint: Endpoint, row: Row, status: int, body: Any) -> Result:
    """What ``endpoint`` makes of the answer ``body`` with ``status`` for ``row``."""
    response = HttpResponse(status, {}, orjson.dumps(body))
    if 200 <= status < 300:
        try:
            (result,) = endpoint.read_answer([row], response).results
        except RequestError as exc:
            return Result(row.id, error=True, error_msg=exc.message, status=status, attempts=1)
        result.attempts = 1
        return result
    error = endpoint.parse_error(response)
    return Result(row.id, error=True, error_msg=error.message, status=status, attempts=1)


def read_openai_line(endpoint: Endpoint, row: Row, line: Mapping[str, Any]) -> Result:
    """The row's result from one line of an OpenAI output or error file."""
    error = line.get("error")
    response = line.get("response")
    if isinstance(response, Mapping) and isinstance(response.get("status_code"), int):
        return _answer(endpoint, row, response["status_code"], response.get("body"))
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message") or "the request failed"
        text = f"{code}: {message}" if code else str(message)
        return Result.failed(row.id, text)
    return Result.failed(row.id, "the batch's result line has neither a response nor an error")


def read_anthropic_line(endpoint: Endpoint, row: Row, line: Mapping[str, Any]) -> Result:
    """The row's result from one line of an Anthropic batch's results."""
    result = line.get("result")
    kind = result.get("type") if isinstance(result, Mapping) else None
    if kind == "succeeded":
        return _answer(endpoint, row, 200, result.get("message"))  # type: ignore[union-attr]
    if kind == "errored":
        body = result.get("error")  # type: ignore[union-attr]
        inner = body.get("error") if isinstance(body, Mapping) else None
        kind_of = inner.get("type") if isinstance(inner, Mapping) else None
        status = ANTHROPIC_ERRORS.get(str(kind_of), 500)
        return _answer(endpoint, row, status, body)
    if kind in _NOT_RUN:
        return Result.failed(row.id, _NOT_RUN[str(kind)])
    return Result.failed(row.id, f"the batch's result line has an unknown type {kind!r}")


def missing(row_id: Any) -> Result:
    """The result of a row the provider's results do not mention."""
    return Result.failed(row_id, "the batch's results have no line for this request")
