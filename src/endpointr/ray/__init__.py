"""endpointr's endpoints as Ray Data stages, with one budget shared by every worker.

Each function takes and returns a :class:`ray.data.Dataset` and takes the keywords of
its ``*_df`` twin (``hf_embed_ds`` those of :func:`~endpointr.hf_embed_df`, ...) but the
ones about files of its own (``output_dir``, ``chunk_size``, ``overwrite``,
``retry_failed``, ``cache_dir``, ``wide``: Ray writes the dataset), plus ``workers``, the
number of actors that send, ``batch_size_rows``, the rows each call of a worker gets, and
``num_cpus``, the CPUs Ray reserves per worker. ``concurrent_requests`` (a number or
``"auto"``), ``requests_per_minute`` and ``tokens_per_minute`` are the budget of all
workers together:

- one :class:`~endpointr.ray.budget.Budget` actor holds the in-flight limit of the whole
  stage (the adaptive controller of ``"auto"`` included) and its pauses; each worker
  sends within its share of the limit, and leases a new share in the background every 64
  answers or 0.25 s, never a remote call per request. An overload answer (429, 529, a
  timeout) is reported at once, and a ``Retry-After`` pauses every worker, so all slow
  down on one;
- the request and token rates are split evenly over the workers.

Every row comes back once, as a value or an error row, with the columns of the ``*_df``
function (a block whose rows the server refuses all alike, or a server that stays down,
gives error rows that say so rather than abort the dataset); vector columns are
``list<float32>`` in every block and a block of error rows alone has the columns the
others found (a classifier's labels), so ``ds.write_parquet`` works. Ids must be unique
over the dataset. Needs ``pip install "endpointr[ray]"``.

>>> vectors = hf_embed_ds(ray.data.read_parquet("docs/"), text_var="text", id_var="id",
...                       endpoint_url=url, workers=4)  # doctest: +SKIP
>>> vectors.write_parquet("vectors/")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..api._keywords import AntChatTable, ChatTable, ClassifyTable, EmbedTable, OpenAIEmbedTable
from ..api._signature import shown_keywords, unknown_keyword
from ..errors import ConfigError
from ..providers.anthropic import AnthropicMessages
from ..providers.base import Endpoint
from ..providers.hf import HFEmbed
from ..providers.hf_classify import HFClassify
from ..providers.openai import OpenAIChat, OpenAIEmbed
from .budget import Budget, SharedLimit
from .stage import NOT_FOR_A_STAGE, EndpointStage, build_stage

__all__ = [
    "Budget",
    "EndpointStage",
    "SharedLimit",
    "ant_complete_ds",
    "hf_classify_ds",
    "hf_embed_ds",
    "oai_complete_ds",
    "oai_embed_ds",
]

_KW = inspect.Parameter.KEYWORD_ONLY
_OWN = [
    inspect.Parameter("ds", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Dataset"),
    inspect.Parameter("text_var", _KW, annotation=str),
    inspect.Parameter("id_var", _KW, annotation=str),
    inspect.Parameter("workers", _KW, default=2, annotation=int),
    inspect.Parameter("batch_size_rows", _KW, default=1000, annotation=int),
    inspect.Parameter("num_cpus", _KW, default=0.25, annotation=float),
]


def _maker(
    cls: type[Endpoint], name: str, twin: str, keywords: type, required: tuple[str, ...] = ()
) -> Callable[..., Any]:
    """The stage function of ``cls``, showing the keywords of its ``*_df`` twin."""
    hidden = (*NOT_FOR_A_STAGE, "progress")  # Ray shows its own progress
    shown = [p for p in shown_keywords(cls, keywords) if p.name not in hidden]
    needed = [inspect.Parameter(n, _KW, annotation=str) for n in required]
    shown = [p for p in shown if p.name not in required]
    allowed = {p.name for p in [*_OWN, *needed, *shown]}

    def stage(
        ds: Any,
        *,
        text_var: str,
        id_var: str,
        workers: int = 2,
        batch_size_rows: int = 1000,
        num_cpus: float = 0.25,
        **call: Any,
    ) -> Any:
        for key in call:
            if key in NOT_FOR_A_STAGE:
                raise ConfigError(
                    f"{key} is not for a Ray stage: write the dataset with ds.write_parquet"
                )
            if key not in allowed:
                raise unknown_keyword(name, key, allowed)
        for key in required:
            if key not in call:
                raise ConfigError(f"{name}() needs {key}=")
        return build_stage(
            cls,
            ds,
            text_var=text_var,
            id_var=id_var,
            workers=workers,
            batch_size_rows=batch_size_rows,
            num_cpus=num_cpus,
            call=call,
        )

    stage.__name__ = stage.__qualname__ = name
    stage.__doc__ = (
        f"Run every row of the Ray dataset ``ds`` through the endpoint of "
        f":func:`~endpointr.{twin}`, with its keywords; ``workers`` actors send, within one "
        "shared budget. Returns a lazy dataset of the same columns as the frame "
        f"``{twin}`` returns (error rows included). Raises "
        ":class:`~endpointr.errors.ConfigError` for a bad keyword before any request."
    )
    whole = inspect.Signature([*_OWN, *needed, *shown], return_annotation="Dataset")
    setattr(stage, "__signature__", whole)  # noqa: B010 (mypy knows no __signature__)
    return stage


hf_embed_ds = _maker(HFEmbed, "hf_embed_ds", "hf_embed_df", EmbedTable, ("endpoint_url",))
hf_classify_ds = _maker(
    HFClassify, "hf_classify_ds", "hf_classify_df", ClassifyTable, ("endpoint_url",)
)
oai_embed_ds = _maker(OpenAIEmbed, "oai_embed_ds", "oai_embed_df", OpenAIEmbedTable)
oai_complete_ds = _maker(OpenAIChat, "oai_complete_ds", "oai_complete_df", ChatTable)
ant_complete_ds = _maker(AnthropicMessages, "ant_complete_ds", "ant_complete_df", AntChatTable)
