"""The shape of the package: import layers, the public surface, the registry, and the
one-text functions raising the error class of the request that failed."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import endpointr as er
from cases import CASES, FAST, TABLE
from endpointr.testing import FakeServer, Fault

PACKAGE = Path(er.__file__).parent
# each layer may import only from the layers after it
LAYERS = ["cli", "api", "engine", ("providers", "io", "schema"), ("types", "errors", "config")]


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if top in ((names,) if isinstance(names, str) else names):
            return rank
    return None


def _imports(path: Path) -> Iterator[str]:
    package = path.relative_to(PACKAGE).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            yield ".".join([*base, node.module or ""]).strip(".")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("endpointr."):
            yield node.module.removeprefix("endpointr.")  # type: ignore[union-attr]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")


def test_imports_point_inward_only() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = _layer(_module(path))
        for target in _imports(path):
            there = _layer(target)
            if here is not None and there is not None and there < here:
                wrong.append(f"{_module(path)} imports {target}, a layer above it")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_import_cycle_between_modules() -> None:
    graph = {_module(path): set(_imports(path)) for path in PACKAGE.rglob("*.py")}

    def resolve(target: str) -> str | None:
        while target and target not in graph:
            target = target.rpartition(".")[0]
        return target or None

    def inside(module: str, package: str) -> bool:
        return module.startswith(package + ".")

    # a package's __init__ gathering its own modules is not a cycle
    edges = {
        m: {r for t in ts if (r := resolve(t)) and r != m and not inside(m, r)}
        for m, ts in graph.items()
    }
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        for nxt in edges[node]:
            assert nxt not in trail, "import cycle: " + " -> ".join([*trail, nxt])
            if nxt not in done:
                visit(nxt, [*trail, nxt])
        done.add(node)

    for module in sorted(edges):
        visit(module, [module])


def test_public_surface() -> None:
    assert len(set(er.__all__)) == len(er.__all__)
    for name in er.__all__:
        assert hasattr(er, name), name
    functions = [n for n in er.__all__ if callable(getattr(er, n)) and n[0].islower()]
    for name in functions:
        if inspect.iscoroutinefunction(getattr(er, name)):
            assert name.startswith("a") and name[1:] in er.__all__, f"{name} has no sync twin"
        elif getattr(er, name).__module__.startswith("endpointr.api."):
            twin = "a" + name
            assert twin in er.__all__, f"{name} has no async twin"
            assert inspect.iscoroutinefunction(getattr(er, twin)), twin
            assert inspect.signature(getattr(er, name)) == inspect.signature(getattr(er, twin))


def test_named_functions_show_the_endpoint_defaults() -> None:
    embed = inspect.signature(er.hf_embed_df).parameters
    assert embed["batch_size"].default == er.ENDPOINTS["hf.embed"].defaults.batch_size == 8
    assert embed["key_name"].default == "HF_API_KEY"
    assert embed["concurrent_requests"].default == "auto" and embed["max_retries"].default == 5
    assert inspect.signature(er.oai_embed_df).parameters["batch_size"].default == 100
    chat = inspect.signature(er.ant_complete_df).parameters
    assert chat["model"].default == "claude-haiku-4-5" and chat["timeout"].default == 60
    assert "batch_size" not in chat
    assert inspect.signature(er.oai_complete_batch).parameters["progress"].default is False


def test_a_misspelt_keyword_is_refused_by_name_before_any_request(server: FakeServer) -> None:
    with pytest.raises(er.ConfigError, match="did you mean 'batch_size'"):
        er.hf_embed_df([], text_var="text", id_var="id", endpoint_url=server.url, batchsize=4)
    assert server.stats.request_count == 0


def test_every_registered_endpoint_is_in_the_test_table() -> None:
    assert set(TABLE) == set(er.ENDPOINTS)
    assert [case.name for case in CASES] == list(er.ENDPOINTS)


def test_run_df_reaches_any_endpoint_by_name(server: FakeServer) -> None:
    import pandas as pd

    df = pd.DataFrame({"id": [1, 2], "text": ["a", "b"]})
    out = er.run_df(
        "openai.embed",
        df,
        text_var="text",
        id_var="id",
        base_url=server.url + "/v1",
        key_name=None,
        output_dir=None,
        progress=False,
        batch_size=2,
    )
    assert out["id"].tolist() == [1, 2] and not out[".error"].any()
    assert server.stats.rows_per_request == [2]
    with pytest.raises(er.ConfigError, match="unknown endpoint"):
        er.run_df("nope.embed", df, text_var="text", id_var="id")


def test_one_text_raises_response_format_error_for_malformed_answers(server: FakeServer) -> None:
    server.script(*[Fault.malformed() for _ in range(3)])
    with pytest.raises(er.ResponseFormatError):
        er.hf_embed_text(
            "hello", endpoint_url=server.url + "/embed", key_name=None, max_retries=3, backoff=FAST
        )
    assert server.stats.request_count == 3


def test_one_text_raises_rate_limit_error_past_the_overload_budget(server: FakeServer) -> None:
    server.script(*[Fault.status(429, retry_after=0.01) for _ in range(100)])
    with pytest.raises(er.RateLimitError, match="still overloaded after"):
        er.oai_embed_text(
            "hello",
            base_url=server.url + "/v1",
            key_name=None,
            max_retries=2,
            backoff=FAST,
            overload_timeout=0.1,
        )
    assert server.stats.request_count > 2


def test_import_endpointr_leaves_pandas_until_a_path_needs_it() -> None:
    import subprocess
    import sys

    code = "import sys, endpointr, endpointr.cli.main; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
