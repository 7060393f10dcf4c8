"""Shared fixtures: a real fake server on 127.0.0.1, per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from endpointr.testing import FakeServer


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fresh fake server on a random loopback port, no latency."""
    with FakeServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _own_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test in a directory of its own: ``output_dir="auto"`` folders are made in
    the working directory, and a later test must not resume an earlier one's."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
