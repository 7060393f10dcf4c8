"""The endpoint interface: a pure adapter between rows and one provider's wire format.

An endpoint builds the HTTP request for a list of rows, reads the answer into exactly
one :class:`~endpointr.types.Result` per row (in order), and classifies error answers.
It opens no sockets, sleeps never and counts nothing: the engine does that.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import orjson
import pyarrow as pa

from ..errors import (
    ClientError,
    RateLimitError,
    RequestError,
    ResponseFormatError,
    ServerError,
)
from ..types import HttpRequest, HttpResponse, Launch, Result, Row

__all__ = [
    "Answer",
    "Defaults",
    "Endpoint",
    "Packing",
    "classify_status",
    "error_message",
    "estimate_tokens",
    "parse_retry_after",
    "reported_tokens",
]

_MAX_MESSAGE = 500
_MAX_SNIPPET = 200
_TEXT_PEEK = 4096
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_RETRYABLE_4XX = {408: ServerError, 429: RateLimitError}
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Defaults:
    """What an endpoint starts from when the caller says nothing: the run options it
    suits (``batch_size``, ``timeout`` in seconds per attempt, ``chunk_size``), the
    environment variable its key is read from (``None``: no key), its model and its URL
    (``None``: the caller must give ``endpoint_url``)."""

    key_name: str | None
    batch_size: int = 1
    timeout: float = 30.0
    chunk_size: int = 5000
    model: str | None = None
    url: str | None = None

    @property
    def batchable(self) -> bool:
        """Whether several rows travel in one request."""
        return self.batch_size > 1


@dataclass(frozen=True, slots=True)
class Packing:
    """What one request may carry (``None``: no limit): ``max_rows`` inputs and
    ``max_tokens`` tokens in all, ``max_input_tokens`` per input. ``truncates``: the
    server cuts a longer input itself, so none is too long."""

    max_rows: int | None = None
    max_tokens: int | None = None
    max_input_tokens: int | None = None
    truncates: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A good answer read: one result per row, and the ``(input, output)`` tokens its
    usage reports (``None`` when it reports none)."""

    results: list[Result]
    tokens: tuple[int, int] | None = None
    served: dict[str, Any] | None = None  # what the answer says it was made with


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` by OpenAI's rule of thumb, one per four characters, at least one.

    >>> estimate_tokens("Hello, world!")
    4
    """
    return max(1, math.ceil(len(text) / _CHARS_PER_TOKEN))


def reported_tokens(body: Any) -> tuple[int, int] | None:
    """``(input, output)`` tokens from the ``usage`` of an OpenAI or Anthropic answer.

    >>> reported_tokens({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
    (12, 3)
    >>> reported_tokens({"usage": {"input_tokens": 7, "output_tokens": 2}})
    (7, 2)
    """
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    given = usage.get("prompt_tokens", usage.get("input_tokens"))
    if not isinstance(given, int) or isinstance(given, bool):
        return None
    made = usage.get("completion_tokens", usage.get("output_tokens", 0))
    return given, made if isinstance(made, int) and not isinstance(made, bool) else 0


class Endpoint(ABC):
    """A provider x task adapter, e.g. ``hf.embed``: one entry of the registry.

    Subclasses set ``name``, ``command`` (the CLI subcommand that runs them), ``defaults``
    and ``option_help``; implement :meth:`create` (the endpoint's own keywords, checked,
    :class:`~endpointr.errors.ConfigError` before any request), :meth:`build_request`,
    :meth:`parse_values` and :meth:`columns`. ``fingerprint`` lists what changes the
    answers: a run is only resumed into an output directory whose fingerprint matches.
    ``reads_info`` says whether the server's ``GET /info`` limits apply (TEI). An endpoint
    that brings its own server says what to start in :meth:`launch`; the runners start it
    around the run and stop it after.
    """

    name: ClassVar[str]
    command: ClassVar[str]
    defaults: ClassVar[Defaults]
    option_help: ClassVar[Mapping[str, str]] = {}
    reads_info: ClassVar[bool] = False
    url: str

    @property
    def tokenizer_model(self) -> str | None:
        """The model whose tokenizer counts this endpoint's texts (``None``: estimate)."""
        return None

    def token_cost(self, rows: Sequence[Row], count: Callable[[str], int]) -> int:
        """The input tokens a request of ``rows`` sends, counting a text with ``count``."""
        return sum(count(row.text) for row in rows)

    def output_allowance(self) -> int:
        """The most tokens one answer may add (rate limits charge it up front)."""
        return 0

    def fallback(self, error: RequestError) -> tuple[Self, str] | None:
        """A variant of this endpoint for a server that refused a request with ``error``
        (e.g. a structured-output form it does not take), and a line saying what changed;
        ``None`` when there is none. The run switches to it once, for every request."""
        return None

    @classmethod
    @abstractmethod
    def create(cls, *args: Any, **options: Any) -> Self:
        """The endpoint the public function's own keywords describe (see ``option_help``)."""

    @classmethod
    def stands_in_for(cls, name: str, call: Mapping[str, Any]) -> bool:
        """Whether this endpoint serves a call made to the endpoint registered as ``name``
        with the keywords ``call`` (``hf.embed`` with ``endpoint_url="local"`` runs
        ``local.embed``)."""
        return False

    def launch(self) -> Launch | None:
        """The server to start around a run, for an endpoint that brings its own; ``None``
        (the default) when its URL is served already. Raises
        :class:`~endpointr.errors.ConfigError` when the server cannot be had."""
        return None

    def served_at(self, base_url: str) -> Self:
        """This endpoint sending to the server :meth:`launch` started at ``base_url``
        (``http://127.0.0.1:PORT``)."""
        return self

    def for_columns(self, taken: Sequence[str]) -> Self:
        """This endpoint for output beside the columns ``taken`` (the id column);
        raises :class:`~endpointr.errors.ConfigError` when its own columns clash."""
        return self

    def fitted(self, info: Mapping[str, Any] | None) -> Self:
        """This endpoint adapted to what the server's ``/info`` says (``None``: nothing)."""
        return self

    def one_value(self, value: Any) -> Any:
        """What the one-text function returns for a row's successful ``value``."""
        return value

    def manifest_fields(self) -> dict[str, Any]:
        """What ``_metadata.json`` records of this endpoint besides the common fields."""
        return {}

    def packing(self) -> Packing | None:
        """The server's limits on one request, which requests are packed to fit."""
        return None

    def decode(self, data: bytes) -> Any:
        """The answer's body ``data`` as the object :meth:`parse_values` reads (JSON).

        Raises ``orjson.JSONDecodeError`` when it is not JSON.
        """
        return orjson.loads(data)

    def to_cache(self, value: Any) -> bytes:
        """A row's good ``value`` as the bytes a response cache keeps (JSON by default)."""
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)

    def from_cache(self, data: bytes) -> Any:
        """The value :meth:`to_cache` encoded as ``data``."""
        return orjson.loads(data)

    def auth_headers(self, key: str) -> dict[str, str]:
        """Headers that carry ``key``; sent only to the endpoint's own host."""
        return {"Authorization": f"Bearer {key}"}

    @abstractmethod
    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        """The request that carries ``rows``."""

    @abstractmethod
    def parse_values(self, rows: Sequence[Row], body: Any) -> list[Any]:
        """One value per row from the decoded JSON ``body``.

        Raises :class:`ResponseFormatError` when the body does not fit. A value may be a
        :class:`Result` itself, for a row-level failure inside a good answer.
        """

    @abstractmethod
    def columns(self, values: Sequence[Any]) -> dict[str, pa.Array]:
        """Output columns for ``values``, one per result, error rows included.

        A value is ``None`` where a row got no answer; an error result from
        :meth:`parse_values` may carry a value (e.g. token usage of a refused row).
        """

    def fingerprint(self) -> dict[str, Any]:
        """The request-defining settings, JSON-serialisable, without secrets."""
        return {"endpoint": self.name}

    def asked(self) -> dict[str, Any]:
        """The settings this endpoint asks for that an answer reports back (``model``,
        ``dimensions``): an answer made otherwise means the server ignored them."""
        return {}

    def answered_with(self, body: Any, values: Sequence[Any]) -> dict[str, Any]:
        """What a good answer says it was made with: the ``model`` it names, and for
        vectors their ``dimensions``."""
        model = body.get("model") if isinstance(body, Mapping) else None
        return {"model": model} if isinstance(model, str) else {}

    def finalize(self, table: pa.Table) -> pa.Table:
        """Last touches to the whole result table (e.g. fixed-size vectors)."""
        return table

    def parse_response(self, rows: Sequence[Row], response: HttpResponse) -> list[Result]:
        """Exactly one result per row, in order. Raises :class:`ResponseFormatError`."""
        return self.read_answer(rows, response).results

    def read_answer(
        self, rows: Sequence[Row], response: HttpResponse, *, describe: bool = False
    ) -> Answer:
        """:meth:`parse_response` with the tokens the answer's usage reports, and with
        ``describe`` what it says it was made with (:meth:`answered_with`)."""
        try:
            body = self.decode(response.body)
        except orjson.JSONDecodeError as exc:
            kind = "an empty body" if not response.body.strip() else "a body that is not JSON"
            raise ResponseFormatError(
                f"HTTP {response.status} with {kind} ({exc})", status=response.status
            ) from None
        values = self.parse_values(rows, body)
        if len(values) != len(rows):
            raise ResponseFormatError(
                f"expected {len(rows)} results, the server returned {len(values)}",
                status=response.status,
            )
        out = []
        for row, value in zip(rows, values, strict=True):
            if isinstance(value, Result):
                value.id, value.status = row.id, value.status or response.status
                if value.error and value.cause is None:
                    value.cause = ResponseFormatError(
                        value.error_msg or "unusable answer", status=value.status
                    )
                out.append(value)
            else:
                out.append(Result(id=row.id, value=value, status=response.status))
        served = self.answered_with(body, values) if describe else None
        return Answer(out, reported_tokens(body), served)

    def parse_error(self, response: HttpResponse) -> RequestError:
        """The error a non-2xx ``response`` stands for, classified by meaning."""
        return classify_status(
            response.status, error_message(response), parse_retry_after(response.headers)
        )


def classify_status(status: int, message: str, retry_after: float | None) -> RequestError:
    """Map an HTTP error status to the error class that says whether to retry."""
    if status in _RETRYABLE_4XX:
        return _RETRYABLE_4XX[status](message, status=status, retry_after=retry_after)
    if status == 529:
        return RateLimitError(message, status=status, retry_after=retry_after)
    if status >= 500 and status not in (501, 505):
        return ServerError(message, status=status, retry_after=retry_after)
    return ClientError(message, status=status, retry_after=retry_after)


def error_message(response: HttpResponse) -> str:
    """The server's message from the HF, OpenAI or Anthropic error shapes, else ``HTTP <n>``.

    A body that is not JSON (a proxy's HTML page, plain text) gives ``HTTP <n>: `` and its
    title or first words.
    """
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return _text_message(response)
    message = _find_message(body)
    if not message:
        return f"HTTP {response.status}"
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."


def _text_message(response: HttpResponse) -> str:
    text = response.body[:_TEXT_PEEK].decode("utf-8", "replace")
    title = _HTML_TITLE.search(text)
    words = " ".join(_HTML_TAG.sub(" ", title.group(1) if title else text).split())
    if not words:
        return f"HTTP {response.status}"
    if len(words) > _MAX_SNIPPET:
        words = words[:_MAX_SNIPPET] + "..."
    return f"HTTP {response.status}: {words}"


def _find_message(body: Any) -> str | None:
    if isinstance(body, list) and body:
        return _find_message(body[0])
    if not isinstance(body, Mapping):
        return body if isinstance(body, str) and body else None
    error = body.get("error")
    if isinstance(error, str) and error:
        return error
    if isinstance(error, list) and error:
        return "; ".join(str(e) for e in error)
    if isinstance(error, Mapping):
        inner = error.get("message")
        if isinstance(inner, str) and inner:
            return inner
    for key in ("message", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return _validation_errors(body.get("detail"))


def _validation_errors(detail: Any) -> str | None:
    """FastAPI's 422 body (vLLM, infinity, ...): ``{"detail": [{"loc": [...], "msg"}]}``."""
    if not isinstance(detail, list):
        return None
    parts = []
    for item in detail:
        if not isinstance(item, Mapping) or not isinstance(item.get("msg"), str):
            continue
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts) or None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), ``None`` if absent.

    ``retry-after-ms`` (OpenAI) wins when present. ``now`` is a Unix time (for tests).
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
