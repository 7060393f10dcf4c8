"""Every endpoint's data-frame function, described once so that the reliability,
security and bad-input checks run over all of them (add a Case per new endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import endpointr as er


@dataclass(frozen=True)
class Case:
    """How to run one endpoint's ``*_df`` function against the fake server.

    ``run(df, base_url, **kwargs)`` calls the public function with ``text_var="text"``,
    ``id_var="id"`` and the endpoint URL built from the fake server's ``base_url``;
    ``kwargs`` pass through (``key_name``, ``output_dir``, ``batch_size``, ...).
    ``route`` is the path the requests arrive on; ``batchable`` says whether several rows
    travel in one request; ``value_column`` is a column that holds the value on success.
    """

    name: str
    route: str
    run: Callable[..., Any]
    batchable: bool
    value_column: str
    key_env: str = "HF_API_KEY"
    extra: dict[str, Any] = field(default_factory=dict)


def _hf_embed(df: Any, base_url: str, **kw: Any) -> Any:
    return er.hf_embed_df(df, text_var="text", id_var="id", endpoint_url=base_url + "/embed", **kw)


def _hf_classify(df: Any, base_url: str, **kw: Any) -> Any:
    url = base_url + "/classify"
    return er.hf_classify_df(df, text_var="text", id_var="id", endpoint_url=url, **kw)


CASES: list[Case] = [
    Case("hf.embed", "/embed", _hf_embed, batchable=True, value_column="embedding"),
    Case("hf.classify", "/classify", _hf_classify, batchable=True, value_column="label"),
]


def _chat_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    kw.pop("batch_size", None)
    return kw


def _openai_chat(df: Any, base_url: str, **kw: Any) -> Any:
    url = base_url + "/v1/chat/completions"
    kw = _chat_kwargs(kw)
    return er.oai_complete_df(df, text_var="text", id_var="id", endpoint_url=url, **kw)


def _openai_embed(df: Any, base_url: str, **kw: Any) -> Any:
    url = base_url + "/v1/embeddings"
    return er.oai_embed_df(df, text_var="text", id_var="id", endpoint_url=url, **kw)


def _anthropic_messages(df: Any, base_url: str, **kw: Any) -> Any:
    url = base_url + "/v1/messages"
    kw = _chat_kwargs(kw)
    return er.ant_complete_df(df, text_var="text", id_var="id", endpoint_url=url, **kw)


CASES += [
    Case(
        "openai.chat",
        "/v1/chat/completions",
        _openai_chat,
        batchable=False,
        value_column="content",
        key_env="OPENAI_API_KEY",
    ),
    Case(
        "openai.embed",
        "/v1/embeddings",
        _openai_embed,
        batchable=True,
        value_column="embedding",
        key_env="OPENAI_API_KEY",
    ),
    Case(
        "anthropic.messages",
        "/v1/messages",
        _anthropic_messages,
        batchable=False,
        value_column="content",
        key_env="ANTHROPIC_API_KEY",
    ),
]


def case_ids() -> list[str]:
    return [case.name for case in CASES]
