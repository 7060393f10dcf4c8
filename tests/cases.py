"""Every registered endpoint's data-frame function, so that the reliability, security and
bad-input suites run over all of them. A new endpoint is one line of ``TABLE``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

import endpointr as er
from endpointr.testing import FakeServer

# fast retries for suites that provoke many: waits of 10-50 ms; Retry-After is still obeyed
FAST = er.Backoff(base=0.01, cap=0.05)
# a short overload budget for suites whose server never stops answering 429/503/529
QUICK_OVERLOAD = 0.3

# endpoint name: (route on the fake server, a column holding the value on success,
#                 the public data-frame function)
TABLE: dict[str, tuple[str, str, Callable[..., Any]]] = {
    "hf.embed": ("/embed", "embedding", er.hf_embed_df),
    "hf.classify": ("/classify", "label", er.hf_classify_df),
    "local.embed": ("/v1/embeddings", "embedding", er.local_embed_df),
    "openai.embed": ("/v1/embeddings", "embedding", er.oai_embed_df),
    "openai.chat": ("/v1/chat/completions", "content", er.oai_complete_df),
    "anthropic.messages": ("/v1/messages", "content", er.ant_complete_df),
}
# endpoints that send no key by default, and the variable the suites give them as
# ``key_name``: a key handed to them must still go only to their server and never out
KEYLESS: dict[str, str] = {"local.embed": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class Case:
    """How to run one endpoint's ``*_df`` function against the fake server.

    ``run(df, base_url, **kwargs)`` calls the public function with ``text_var="text"``,
    ``id_var="id"``, the endpoint URL built from the fake server's ``base_url`` and fast
    retries; ``kwargs`` pass through (``key_name``, ``output_dir``, ``batch_size``, ...;
    ``batch_size`` is dropped for endpoints that send one row per request). ``route`` is
    the path the requests arrive on; ``batchable`` says whether several rows travel in
    one request; ``value_column`` is a column that holds the value on success.
    """

    name: str
    route: str
    value_column: str
    function: Callable[..., Any]

    @property
    def batchable(self) -> bool:
        return er.ENDPOINTS[self.name].defaults.batchable

    @property
    def key_env(self) -> str:
        key = er.ENDPOINTS[self.name].defaults.key_name or KEYLESS.get(self.name)
        assert key is not None, f"{self.name} sends no key: add it to KEYLESS"
        return key

    def run(self, df: Any, base_url: str, **kw: Any) -> Any:
        kw.setdefault("backoff", FAST)
        kw.setdefault("overload_timeout", QUICK_OVERLOAD)
        if not self.batchable:
            kw.pop("batch_size", None)
        url = base_url + self.route
        return self.function(df, text_var="text", id_var="id", endpoint_url=url, **kw)


CASES: list[Case] = [Case(name, *TABLE[name]) for name in er.ENDPOINTS]


def case_ids() -> list[str]:
    return [case.name for case in CASES]


def frame(n: int) -> pd.DataFrame:
    """``n`` rows: ``id`` 0..n-1 and a distinct ``text`` each."""
    return pd.DataFrame({"id": range(n), "text": [f"row number {i}" for i in range(n)]})


def embed_df(server: FakeServer, df: object, **kw: object) -> Any:
    """``hf_embed_df`` on ``server``'s ``/embed``, in memory, without a progress bar."""
    kw.setdefault("output_dir", None)
    kw.setdefault("progress", False)
    return er.hf_embed_df(
        df, text_var="text", id_var="id", endpoint_url=server.url + "/embed", key_name=None, **kw
    )
