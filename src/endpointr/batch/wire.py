"""The provider calls a Batch job makes: OpenAI's Files and Batch APIs, Anthropic's Message
Batches API, each one HTTP exchange over one aiohttp session.

A call that meets a network error, a 429/529 or a 5xx is tried again with backoff (the
server's ``Retry-After`` when it gives one) up to ``max_retries`` attempts in all; any
other error answer raises the :class:`~endpointr.errors.RequestError` subclass its status
stands for, with the provider's own message. The key goes only to the server's own host
and never into a message.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..config import check_url, redact_url
from ..engine.transport import ssl_context
from ..errors import ClientError, ConnectError, RequestError, ResponseFormatError
from ..providers.anthropic import API_VERSION
from ..providers.base import classify_status, error_message, parse_retry_after
from ..providers.llm import scrub_keys
from ..types import HttpResponse

__all__ = [
    "AnthropicBatches",
    "BatchHttp",
    "OpenAIBatches",
    "anthropic_headers",
    "openai_headers",
]

_RETRYABLE = frozenset({408, 409, 429, 529})
_BACKOFF_CAP = 30.0


class BatchHttp:
    """JSON calls to one provider's API below ``base_url``, with ``headers`` on each."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float = 120.0,
        max_retries: int = 5,
        verify: bool = True,
        ca_bundle: str | None = None,
    ) -> None:
        self.base_url = check_url(base_url, "base_url").rstrip("/")
        self._headers = dict(headers)
        self._secrets = [v.split()[-1] for v in self._headers.values() if v]
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_retries = max(1, max_retries)
        self._ssl = ssl_context(verify, ca_bundle)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BatchHttp:
        connector = aiohttp.TCPConnector(ssl=self._ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, trust_env=False
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (already absolute URLs on the same host pass)."""
        if "://" not in path:
            return self.base_url + path
        if urlsplit(path).netloc != urlsplit(self.base_url).netloc:
            raise ClientError(f"refusing to send the key to another host: {redact_url(path)}")
        return path

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, tuple[str, bytes] | str] | None = None,
        raw: bool = False,
    ) -> Any:
        """The decoded JSON answer (``raw``: the body's bytes) of one call."""
        if self._session is None:
            raise RuntimeError("BatchHttp is used outside its 'async with'")
        url = self.url(path)
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        for attempt in range(1, self._max_retries + 1):
            try:
                response = await self._send(method, url, json, query, form)
            except RequestError as exc:
                if attempt == self._max_retries:
                    raise
                await asyncio.sleep(_backoff(attempt, exc.retry_after))
                continue
            if 200 <= response.status < 300:
                return response.body if raw else _decoded(response)
            error = self._error(response)
            retryable = response.status in _RETRYABLE or (
                response.status >= 500 and response.status not in (501, 505)
            )
            if not retryable or attempt == self._max_retries:
                raise error
            await asyncio.sleep(_backoff(attempt, error.retry_after))
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        url: str,
        json: Any,
        query: dict[str, str],
        form: Mapping[str, tuple[str, bytes] | str] | None,
    ) -> HttpResponse:
        assert self._session is not None
        headers = dict(self._headers)
        data: Any = None
        if form is not None:
            data = aiohttp.FormData()
            for name, value in form.items():
                if isinstance(value, tuple):
                    filename, content = value
                    data.add_field(
                        name, content, filename=filename, content_type="application/jsonl"
                    )
                else:
                    data.add_field(name, value)
        elif json is not None:
            data = orjson.dumps(json)
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, url, data=data, params=query, headers=headers, allow_redirects=False
            ) as answer:
                body = await answer.read()
                names = {k.lower(): v for k, v in answer.headers.items()}
                return HttpResponse(answer.status, names, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            text = self._scrub(str(exc) or type(exc).__name__)
            raise ConnectError(f"{method} {redact_url(url)}: {text}") from None

    def _error(self, response: HttpResponse) -> RequestError:
        error = classify_status(
            response.status, error_message(response), parse_retry_after(response.headers)
        )
        error.message = self._scrub(error.message)
        error.args = (error.message,)
        return scrub_keys(error)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if len(secret) >= 8:
                text = text.replace(secret, "***")
        return text


def _decoded(response: HttpResponse) -> Any:
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise ResponseFormatError(
            f"HTTP {response.status} with a body that is not JSON", status=response.status
        ) from None


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, _BACKOFF_CAP * 4)
    return min(_BACKOFF_CAP, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


class OpenAIBatches:
    """OpenAI's Files and Batch APIs below ``base_url`` (ending in ``/v1``)."""

    def __init__(self, http: BatchHttp) -> None:
        self.http = http

    async def upload(self, content: bytes, filename: str, purpose: str = "batch") -> Any:
        form: dict[str, tuple[str, bytes] | str] = {
            "purpose": purpose,
            "file": (filename, content),
        }
        return await self.http.call("POST", "/files", form=form)

    async def files(self, purpose: str | None = None, limit: int | None = None) -> Any:
        return await self.http.call("GET", "/files", params={"purpose": purpose, "limit": limit})

    async def file(self, file_id: str) -> Any:
        return await self.http.call("GET", f"/files/{file_id}")

    async def content(self, file_id: str) -> bytes:
        body: bytes = await self.http.call("GET", f"/files/{file_id}/content", raw=True)
        return body

    async def delete(self, file_id: str) -> Any:
        return await self.http.call("DELETE", f"/files/{file_id}")

    async def create(
        self,
        file_id: str,
        endpoint: str,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
    ) -> Any:
        body: dict[str, Any] = {
            "input_file_id": file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        return await self.http.call("POST", "/batches", json=body)

    async def retrieve(self, batch_id: str) -> Any:
        return await self.http.call("GET", f"/batches/{batch_id}")

    async def list(self, limit: int = 20, after: str | None = None) -> Any:
        return await self.http.call("GET", "/batches", params={"limit": limit, "after": after})

    async def cancel(self, batch_id: str) -> Any:
        return await self.http.call("POST", f"/batches/{batch_id}/cancel")


class AnthropicBatches:
    """Anthropic's Message Batches API at ``base_url`` (the host root)."""

    def __init__(self, http: BatchHttp) -> None:
        self.http = http

    async def create(self, requests: list[Any]) -> Any:
        return await self.http.call("POST", "/v1/messages/batches", json={"requests": requests})

    async def retrieve(self, batch_id: str) -> Any:
        return await self.http.call("GET", f"/v1/messages/batches/{batch_id}")

    async def list(
        self, limit: int = 20, before_id: str | None = None, after_id: str | None = None
    ) -> Any:
        params = {"limit": limit, "before_id": before_id, "after_id": after_id}
        return await self.http.call("GET", "/v1/messages/batches", params=params)

    async def cancel(self, batch_id: str) -> Any:
        return await self.http.call("POST", f"/v1/messages/batches/{batch_id}/cancel")

    async def results(self, batch: Mapping[str, Any]) -> bytes:
        """The JSONL results of the ended ``batch`` (its ``results_url``, on this host)."""
        url = batch.get("results_url") or f"/v1/messages/batches/{batch['id']}/results"
        body: bytes = await self.http.call("GET", str(url), raw=True)
        return body


def anthropic_headers(key: str | None) -> dict[str, str]:
    """The headers of every Message Batches call."""
    headers = {"anthropic-version": API_VERSION, "Accept": "application/json"}
    if key:
        headers["x-api-key"] = key
    return headers


def openai_headers(key: str | None) -> dict[str, str]:
    """The headers of every Files and Batch call."""
    return {"Authorization": f"Bearer {key}"} if key else {}
