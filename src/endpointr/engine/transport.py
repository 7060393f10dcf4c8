"""The only module that touches the HTTP client.

aiohttp was chosen by measurement: at 64 requests in flight it costs ~0.2 ms of CPU per
small request, 6-8x less than httpx (see benchmarks/). Client exceptions are translated
to :class:`~endpointr.errors.TransportError` here and nowhere else.
"""

from __future__ import annotations

import os
import re
import ssl
import urllib.request
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import aiohttp

from ..config import redact_url
from ..errors import (
    AttemptTimeout,
    CertificateError,
    ConfigError,
    ConnectError,
    RequestError,
    TransportError,
)
from ..types import HttpRequest, HttpResponse

__all__ = ["Transport", "ssl_context"]

_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MIN_SECRET = 6
_KEY_KIND = re.compile(r"[A-Za-z]{2,3}[-_]")


def env_proxy(url: str) -> str | None:
    """The proxy URL the environment gives for ``url``, or ``None`` (also when bypassed)."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _secrets(auth: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    """The credentials of ``auth`` headers (``Bearer KEY`` -> ``KEY``), each with what
    replaces it in answers: ``***`` after the key's public kind prefix (``sk-``, ``hf_``)."""
    tokens = {value.split()[-1] for value in auth.values() if value.split()}
    pairs = []
    for token in tokens:
        if len(token) >= _MIN_SECRET:
            kind = _KEY_KIND.match(token)
            pairs.append((token.encode(), (kind.group(0) if kind else "").encode() + b"***"))
    return tuple(pairs)


class Transport:
    """Sends :class:`HttpRequest` objects over one pooled aiohttp session.

    ``auth_headers`` (each value a credential, ``Bearer KEY`` or ``KEY``) go only to
    ``auth_url``'s scheme and host, including after a redirect; a redirect
    elsewhere is followed without them. A credential an answer repeats back is masked in
    it before anyone reads it. ``timeout`` bounds each attempt in seconds. TLS
    certificates are verified unless ``verify=False``; ``ca_bundle`` is a path to extra
    CA certificates.
    """

    def __init__(
        self,
        *,
        timeout: float,
        auth_headers: dict[str, str] | None = None,
        auth_url: str | None = None,
        verify: bool = True,
        ca_bundle: str | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._seconds = timeout
        self._auth = dict(auth_headers or {})
        self._secrets = _secrets(self._auth)
        self._text_secrets = tuple((a.decode(), b.decode()) for a, b in self._secrets)
        self._auth_origin = _origin(auth_url) if auth_url else None
        self._ssl = ssl_context(verify, ca_bundle)
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    async def __aenter__(self) -> Transport:
        connector = aiohttp.TCPConnector(
            limit=0, ssl=self._ssl, enable_cleanup_closed=True, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True, trust_env=False
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

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` (following redirects); raises :class:`TransportError`."""
        url, method, body = request.url, request.method, request.body
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._send_once(method, url, body, request.headers)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return response
            url = urljoin(url, location)
            if response.status == 303:
                method, body = "GET", None
        raise TransportError(f"more than {_MAX_REDIRECTS} redirects from {redact_url(request.url)}")

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) names for ``url``'s
        host, looked up once per host rather than on every request."""
        origin = _origin(url)
        if origin not in self._proxies:
            self._proxies[origin] = env_proxy(url)
        return self._proxies[origin]

    async def _send_once(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> HttpResponse:
        assert self._session is not None, "Transport used outside 'async with'"
        if self._auth and _origin(url) == self._auth_origin:
            headers = {**headers, **self._auth}
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                proxy=self._proxy(url),
            ) as resp:
                payload = self._scrub(await resp.read())
                if self._text_secrets:
                    headers = {k.lower(): self._scrub_text(v) for k, v in resp.headers.items()}
                else:
                    headers = {k.lower(): v for k, v in resp.headers.items()}
                return HttpResponse(resp.status, headers, payload)
        except TimeoutError:
            raise AttemptTimeout(f"no answer within timeout={self._seconds:g} s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise CertificateError(self._scrub_text(_describe(exc))) from None
        except aiohttp.ClientSSLError as exc:
            raise TransportError(self._scrub_text(_describe(exc))) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(self._scrub_text(_describe(exc))) from None
        except aiohttp.ClientError as exc:
            raise TransportError(self._scrub_text(_describe(exc))) from None
        except ValueError as exc:  # aiohttp would not build it (a header value, the URL)
            raise RequestError(f"cannot send the request: {self._scrub_text(str(exc))}") from None

    def _scrub(self, data: bytes) -> bytes:
        """``data`` with our credentials replaced by ``***``: a server that repeats the key
        back in an answer (an error message, a proxy's page) must not put it in a file."""
        for secret, masked in self._secrets:
            if secret in data:
                data = data.replace(secret, masked)
        return data

    def _scrub_text(self, text: str) -> str:
        for secret, masked in self._text_secrets:
            text = text.replace(secret, masked)
        return text


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the connection broke in the middle of the answer"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            f"TLS certificate of {exc.host}:{exc.port} could not be verified; pass "
            "ca_bundle= (--ca-bundle) with its CA, or verify=False (--insecure) for a test server"
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS error: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or 'refused'})"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection error: {exc.strerror or type(exc).__name__}"
    return f"{type(exc).__name__}: {redact_url(str(exc))}"


def ssl_context(verify: bool, ca_bundle: str | None) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` for these settings; a bad ``ca_bundle`` is a :class:`ConfigError`."""
    if not verify:
        return False
    if ca_bundle is None:
        return True
    if not isinstance(ca_bundle, str | os.PathLike):
        raise ConfigError(f"ca_bundle must be the path of a PEM file, got {ca_bundle!r}")
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load ca_bundle {ca_bundle!r}: {exc}") from None
