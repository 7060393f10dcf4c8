"""An API key never appears in anything endpointr produces (issue 5).

Every entry point (each Case's ``*_df``, every ``*_text`` / ``*_batch`` in
``endpointr.__all__``, the CLI) runs with a sentinel key and is made to fail in each way
a server can fail; then every file in the output directory (raw bytes and decoded
Parquet), stdout/stderr, every log record at DEBUG, every warning and every exception
(str, repr and formatted traceback) is searched for the key.
"""

from __future__ import annotations

import inspect
import json
import logging
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pyarrow.parquet as pq
import pytest

import endpointr as er
from cases import CASES, FAST, QUICK_OVERLOAD, Case, case_ids
from endpointr.cli import main as cli_main
from endpointr.cli.main import EXIT_ROW_ERRORS, EXIT_STOPPED
from endpointr.testing import FakeServer, Fault

KEY = "sk-SENTINEL-abc123xyz"
KEY_ENVS = ("HF_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
TIMEOUT = 0.3  # with room for a loaded machine to take the request in time


@pytest.fixture(autouse=True)
def sentinel_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_ENVS:
        monkeypatch.setenv(name, KEY)


@pytest.fixture(scope="module")
def shared() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def server(shared: FakeServer) -> FakeServer:
    shared.reset()
    shared.configure(api_key=None)
    return shared


def echo_body(status: int) -> Any:
    """An error body that repeats the key back, as some servers and proxies do."""
    return {"error": {"message": f"Incorrect API key provided: {KEY}", "code": status}}


FAILURES: dict[str, Callable[[FakeServer], None]] = {
    "401": lambda s: s.configure(api_key="a-different-key"),
    "500s": lambda s: s.random_faults(rate=1.0, kinds=("500", "502", "503", "504", "529")),
    "429": lambda s: s.random_faults(rate=1.0, kinds=("429", "429_no_retry_after")),
    "timeout": lambda s: s.random_faults(rate=1.0, kinds=("delay",), delay=1.0),
    "reset": lambda s: s.random_faults(rate=1.0, kinds=("reset_before", "reset_mid")),
    "malformed": lambda s: s.random_faults(
        rate=1.0, kinds=("malformed", "html", "empty", "wrong_count")
    ),
    "echo": lambda s: s.script(*[Fault.status(401, body=echo_body(401))] * 50),
    "echo-html": lambda s: s.script(
        *[Fault.status(502, body=f"<html><title>bad key {KEY}</title></html>")] * 50
    ),
    "echo-500": lambda s: s.script(*[Fault.status(500, body=echo_body(500))] * 50),
}


def attempts(failure: str) -> int:
    return 1 if failure == "timeout" else 2  # one timeout says all a timeout can say


class Evidence:
    """Everything an entry point produced, to search for the key."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        self.texts.append((where, str(text)))

    def exception(self, exc: BaseException) -> None:
        self.add("exception str", str(exc))
        self.add("exception repr", repr(exc))
        self.add("exception args", exc.args)
        self.add("traceback", "".join(traceback.format_exception(exc)))

    def directory(self, path: Path) -> None:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            self.add(f"bytes of {file.name}", file.read_bytes().decode("latin-1"))
            if file.suffix == ".parquet":
                table = pq.read_table(file)
                self.add(f"rows of {file.name}", table.to_pylist())
                self.add(f"schema of {file.name}", table.schema.metadata)

    def assert_clean(self) -> None:
        assert self.texts, "nothing was captured"
        leaks = [where for where, text in self.texts if KEY in text or KEY[3:] in text]
        assert not leaks, f"the API key appears in: {leaks}"


def capture(
    call: Callable[[], Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> Evidence:
    evidence = Evidence()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as exc:
            evidence.exception(exc)
        else:
            evidence.add("return value", result)
            if isinstance(result, pd.DataFrame):
                evidence.add("returned frame", result.to_dict("records"))
    out, err = capfd.readouterr()
    evidence.add("stdout", out)
    evidence.add("stderr", err)
    for record in caplog.records:
        evidence.add(f"log {record.name}", record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            evidence.exception(record.exc_info[1])
    for warning in caught:
        evidence.add("warning", warning.message)
    return evidence


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_df_functions_never_write_or_say_the_key(
    case: Case,
    failure: str,
    server: FakeServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    FAILURES[failure](server)
    out = tmp_path / "out"
    df = pd.DataFrame({"id": [1, 2, 3], "text": ["one", "two", "three"]})
    evidence = capture(
        lambda: case.run(
            df,
            server.url,
            key_name=case.key_env,
            output_dir=out,
            progress=True,
            max_retries=attempts(failure),
            timeout=TIMEOUT,
            batch_size=2,
        ),
        caplog,
        capfd,
    )
    evidence.directory(out)
    evidence.assert_clean()
    assert server.stats.request_count > 0
    sent = [
        r.headers.get("authorization", "") + r.headers.get("x-api-key", "")
        for r in server.stats.requests
    ]
    assert all(KEY in s for s in sent), "the key was sent (so there was a key to leak)"
    meta = json.loads((out / "_metadata.json").read_text())
    assert meta["key_name"] == case.key_env


def _route(name: str, function: Callable[..., Any]) -> str:
    """The fake server's path for a ``*_text``/``*_batch`` function."""
    default = inspect.signature(function).parameters["endpoint_url"].default
    if isinstance(default, str) and default.startswith("http"):
        return urlsplit(default).path
    prefix = name.rsplit("_", 1)[0]
    routes = [c.route for c in CASES if c.name.replace(".", "_") == prefix]
    assert routes, f"no Case tells the route of {name}; add one to tests/cases.py"
    return routes[0]


ONE_SHOT = sorted(
    name for name in er.__all__ if name.endswith(("_text", "_batch")) and not name.startswith("a")
)


def test_every_text_and_batch_function_is_covered() -> None:
    assert len(ONE_SHOT) >= 2 * len({c.route for c in CASES}) - 2
    for name in ONE_SHOT:
        assert "endpoint_url" in inspect.signature(getattr(er, name)).parameters, name


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("name", ONE_SHOT)
def test_text_and_batch_functions_never_say_the_key(
    name: str,
    failure: str,
    server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    function = getattr(er, name)
    FAILURES[failure](server)
    url = server.url + _route(name, function)
    first = ["some text", "more text"] if name.endswith("_batch") else "some text"
    evidence = capture(
        lambda: function(
            first,
            endpoint_url=url,
            max_retries=attempts(failure),
            timeout=TIMEOUT,
            overload_timeout=QUICK_OVERLOAD,
        ),
        caplog,
        capfd,
    )
    evidence.assert_clean()
    assert server.stats.request_count > 0


CLI_RUNS = {
    "embed": ["embed", "--endpoint-url", "{url}/embed"],
    "embed-openai": ["embed", "--provider", "openai", "--endpoint-url", "{url}/v1/embeddings"],
    "complete-openai": ["complete", "--endpoint-url", "{url}/v1/chat/completions"],
    "complete-anthropic": [
        "complete",
        "--provider",
        "anthropic",
        "--endpoint-url",
        "{url}/v1/messages",
    ],
}


@pytest.mark.parametrize("failure", ["401", "500s", "echo", "echo-html", "timeout"])
@pytest.mark.parametrize("command", CLI_RUNS)
def test_the_cli_never_writes_or_says_the_key(
    command: str,
    failure: str,
    server: FakeServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    FAILURES[failure](server)
    data = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "text": ["one", "two", "three"]}).to_csv(data, index=False)
    out = tmp_path / "out"
    head, *rest = CLI_RUNS[command]
    argv = [head, str(data), *[a.format(url=server.url) for a in rest]]
    argv += ["--text-col", "text", "--id-col", "id", "--output-dir", str(out)]
    argv += ["--max-retries", str(attempts(failure)), "--timeout", str(TIMEOUT)]
    argv += ["--overload-timeout", str(QUICK_OVERLOAD)]
    codes: list[int] = []
    evidence = capture(lambda: codes.append(cli_main(argv)), caplog, capfd)
    evidence.directory(out)
    evidence.assert_clean()
    # every row failed: exit 3, the results written; but when every request of a run
    # (one row each, so three of them) is refused the same way, the run stops (exit 4)
    refused = command.startswith("complete") and failure in ("401", "echo")
    assert codes == ([EXIT_STOPPED] if refused else [EXIT_ROW_ERRORS])
    assert server.stats.request_count > 0


# --- credentials inside the endpoint URL ---------------------------------------------------


URL_SECRETS = {
    "query-api_key": ("/embed?api_key=URLSECRET-{n}&model=x", "api_key=***"),
    "query-token": ("/embed?token=URLSECRET-{n}", "token=***"),
    "userinfo": ("/embed", "***@"),
}


@pytest.mark.parametrize("where", URL_SECRETS)
def test_credentials_in_the_url_are_redacted_in_metadata_and_messages(
    where: str,
    server: FakeServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path, shown = URL_SECRETS[where]
    secret = "URLSECRET-1"
    base = server.url
    if where == "userinfo":
        base = base.replace("http://", f"http://someone:{secret}@")
    url = base + path.format(n=1)
    df = pd.DataFrame({"id": [1, 2], "text": ["one", "two"]})
    server.random_faults(rate=1.0, kinds=("500", "html", "reset_before"))
    out = tmp_path / "out"
    evidence = capture(
        lambda: er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=url,
            key_name=None,
            output_dir=out,
            max_retries=2,
            timeout=TIMEOUT,
            backoff=FAST,
        ),
        caplog,
        capfd,
    )
    # and the refusals that quote the URL back
    for bad in (url.replace("http://", "ftp://"), url + " "):
        evidence.add("refusal", "")
        try:
            er.hf_embed_df(
                df,
                text_var="text",
                id_var="id",
                endpoint_url=bad,
                key_name=None,
                output_dir=None,
                backoff=FAST,
            )
        except er.EndpointrError as exc:
            evidence.exception(exc)
    other = tmp_path / "other"
    with FakeServer() as elsewhere:
        er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=elsewhere.url + "/embed",
            key_name=None,
            output_dir=other,
            progress=False,
            backoff=FAST,
        )
    try:
        er.hf_embed_df(
            df,
            text_var="text",
            id_var="id",
            endpoint_url=url,
            key_name=None,
            output_dir=other,
            backoff=FAST,
        )
    except er.CheckpointError as exc:
        evidence.exception(exc)
    evidence.directory(out)
    leaks = [w for w, text in evidence.texts if secret in text]
    assert not leaks, f"the URL's credential appears in: {leaks}"
    meta = json.loads((out / "_metadata.json").read_text())
    assert shown in meta["endpoint_url"]
    assert server.stats.request_count > 0, "the URL was used as given"
