"""Transport: the key stays with the endpoint's origin across redirects; TLS is verified
by default and a CA bundle can be given (issue 5). Servers here are real aiohttp apps on
127.0.0.1: the fake provider app, wrapped in a redirecting middleware or served over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web

import endpointr as er
from cases import CASES, Case, case_ids
from endpointr.testing import FakeServer
from endpointr.testing.app import build_app
from endpointr.testing.state import ServerState, Settings

KEY = "sk-SENTINEL-abc123xyz"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(autouse=True)
def keys_and_fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    for case in CASES:
        monkeypatch.setenv(case.key_env, KEY)


@contextlib.contextmanager
def serve(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def frame(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"row number {i}" for i in range(n)]})


def run(case: Case, base_url: str, tmp_path: Path, **kw: Any) -> Any:
    kw = {
        "key_name": case.key_env,
        "output_dir": tmp_path / "out",
        "progress": False,
        "batch_size": 2,
        "max_retries": 2,
        "timeout": 5,
        **kw,
    }
    return case.run(frame(), base_url, **kw)


def credentials(headers: dict[str, str]) -> str:
    return headers.get("authorization", "") + headers.get("x-api-key", "")


# --- redirects ------------------------------------------------------------------------


def redirecting_app(state: ServerState, elsewhere: str, seen: list[dict[str, str]]) -> Any:
    """The fake provider app, plus ``/here/<path>`` -> 307 ``/<path>`` on this origin and
    ``/away/<path>`` -> 307 ``<elsewhere>/<path>``; ``/loop/...`` redirects to itself."""

    @web.middleware
    async def redirect(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        path = request.path_qs
        for prefix, target in (("/here", ""), ("/away", elsewhere), ("/loop", None)):
            if path.startswith(prefix + "/"):
                location = path if target is None else target + path[len(prefix) :]
                raise web.HTTPTemporaryRedirect(location)
        return await handler(request)

    app = build_app(state)
    app.middlewares.append(redirect)
    return app


@pytest.fixture
def redirector() -> Iterator[tuple[str, ServerState, FakeServer, list[dict[str, str]]]]:
    state = ServerState(Settings())
    seen: list[dict[str, str]] = []
    with FakeServer() as elsewhere, serve(redirecting_app(state, elsewhere.url, seen)) as url:
        yield url, state, elsewhere, seen


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_the_key_is_not_sent_on_a_redirect_to_another_origin(
    case: Case, redirector: Any, tmp_path: Path
) -> None:
    url, state, elsewhere, seen = redirector
    out = run(case, url + "/away", tmp_path)

    assert not out[".error"].any(), "the redirect was followed"
    assert elsewhere.stats.request_count > 0
    assert all(not credentials(r.headers) for r in elsewhere.stats.requests)
    assert all(KEY in credentials(h) for h in seen), "the endpoint's own origin got the key"
    assert state.snapshot().request_count == 0


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_the_key_is_kept_on_a_redirect_within_the_origin(
    case: Case, redirector: Any, tmp_path: Path
) -> None:
    url, state, elsewhere, _ = redirector
    out = run(case, url + "/here", tmp_path)

    assert not out[".error"].any()
    requests = state.snapshot().requests
    assert requests and all(KEY in credentials(r.headers) for r in requests)
    assert elsewhere.stats.request_count == 0


def test_a_redirect_loop_ends_in_error_rows(redirector: Any, tmp_path: Path) -> None:
    url, state, _, _ = redirector
    out = run(CASES[0], url + "/loop", tmp_path, max_retries=1)
    assert out[".error"].all()
    assert out[".error_msg"].str.contains("redirects").all()
    assert state.snapshot().request_count == 0


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[str, ServerState]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    state = ServerState(Settings())
    with serve(build_app(state), context) as url:
        yield url, state


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_tls_is_verified_by_default(case: Case, tls_server: Any, tmp_path: Path) -> None:
    url, state = tls_server
    state.reset()
    out = run(case, url, tmp_path, max_retries=5)

    assert out[".error"].all()
    assert out[".status"].isna().all()
    assert (out[".attempts"] == 1).all(), "a certificate that fails once fails every time"
    for message in out[".error_msg"]:
        assert "certificate" in message and "ca_bundle" in message, message
    assert state.snapshot().request_count == 0, "nothing was sent over the unverified link"


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_a_ca_bundle_makes_the_self_signed_server_trusted(
    case: Case, tls_server: Any, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    url, state = tls_server
    state.reset()
    out = run(case, url, tmp_path, ca_bundle=str(certificate[0]))

    assert not out[".error"].any() and out[case.value_column].notna().all()
    requests = state.snapshot().requests
    assert requests and all(KEY in credentials(r.headers) for r in requests)


def test_verify_false_also_connects(tls_server: Any, tmp_path: Path) -> None:
    url, _ = tls_server
    out = run(CASES[0], url, tmp_path, verify=False)
    assert not out[".error"].any()


def test_a_ca_bundle_that_is_not_a_certificate_is_refused_before_any_request(
    tls_server: Any, tmp_path: Path
) -> None:
    url, state = tls_server
    state.reset()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(er.ConfigError, match="ca_bundle"):
        run(CASES[0], url, tmp_path, ca_bundle=str(junk))
    assert state.snapshot().request_count == 0 and not (tmp_path / "out").exists()


def test_a_url_with_credentials_and_a_key_gives_error_rows_not_a_crash(
    tmp_path: Path,
) -> None:
    with FakeServer() as server:
        url = server.url.replace("http://", "http://someone:URLSECRET@")
        out = run(CASES[0], url, tmp_path)
        assert server.stats.request_count == 0
    assert out[".error"].all()
    for message in out[".error_msg"]:
        assert message.startswith("cannot send the request") and "URLSECRET" not in message


def test_one_text_raises_certificate_error_for_a_bad_certificate(tls_server: Any) -> None:
    url, _ = tls_server
    with pytest.raises(er.CertificateError, match="certificate"):
        er.hf_embed_text("hello", endpoint_url=url + "/embed", key_name=None)
