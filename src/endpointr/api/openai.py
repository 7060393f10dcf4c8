"""OpenAI and every OpenAI-compatible server: chat completions and embeddings.

``endpoint_url`` is the full URL of the route; ``base_url`` (as the OpenAI SDK takes
it, e.g. ``http://localhost:8000/v1``) may be given instead. ``key_name=None`` sends no
``Authorization`` header, for servers that need no key. Each public function has an
async twin named with a leading ``a`` (``aoai_complete_df``). The run options are those
of :class:`~endpointr.RunOptions`; their defaults are the endpoint's. ``base_url="local"``
(or ``endpoint_url="local"``) on the embedding functions runs the bundled local model
(see :mod:`endpointr.api.local`; it takes no ``model``, ``dimensions`` or
``encoding_format``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from ..engine.calls import run_many, run_one, run_whole
from ..engine.sync import synced
from ..providers.openai import OpenAIChat, OpenAIEmbed
from ._keywords import (
    ChatBatch,
    ChatTable,
    ChatText,
    OpenAIEmbedBatch,
    OpenAIEmbedTable,
    OpenAIEmbedText,
)
from ._signature import takes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "aoai_complete_batch",
    "aoai_complete_df",
    "aoai_complete_text",
    "aoai_embed_batch",
    "aoai_embed_df",
    "aoai_embed_text",
    "oai_complete_batch",
    "oai_complete_df",
    "oai_complete_text",
    "oai_embed_batch",
    "oai_embed_df",
    "oai_embed_text",
]

EMBED = OpenAIEmbed.defaults


@takes(OpenAIChat, ChatText)
async def aoai_complete_text(text: str, **keywords: Unpack[ChatText]) -> Any:
    """Complete one text; returns the content string.

    With ``schema`` (a dict, ``JsonSchema``, pydantic model class or ``.json`` path) the
    answer is validated and the parsed dict comes back, or an instance of the model
    class. Raises :class:`~endpointr.errors.ResponseFormatError` for a refusal, no
    content or an answer that breaks the schema, another
    :class:`~endpointr.errors.RequestError` (the class of the last attempt's error) when
    the request fails after ``max_retries`` attempts,
    :class:`~endpointr.errors.ConfigError` for a bad argument or schema.

    >>> oai_complete_text("Say hi", key_name=None, base_url=url)  # doctest: +SKIP
    'Hi!'
    """
    return await run_one(OpenAIChat, text, keywords)


@takes(OpenAIChat, ChatBatch)
async def aoai_complete_batch(texts: Sequence[str], **keywords: Unpack[ChatBatch]) -> pd.DataFrame:
    """Complete a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, then those of :func:`oai_complete_df`. Nothing is written to disk.
    """
    return await run_many(OpenAIChat, texts, keywords)


@takes(OpenAIChat, ChatTable)
async def aoai_complete_df(
    df: Any, *, text_var: str, id_var: str, **keywords: Unpack[ChatTable]
) -> Any:
    """Complete every row of a table, one request per row; the same frame type comes back.

    Columns: ``id_var``, ``content``, the schema's top-level fields (typed scalars;
    objects and arrays as JSON text), ``finish_reason``, ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``.error``, ``.error_msg``, ``.status``,
    ``.attempts``. A refusal ("refused: ..."), no content ("no content ...") or an
    answer that is not JSON or breaks the schema (the message names the field) is an
    error row that keeps ``content`` and the usage. ``df``, ``output_dir``,
    ``chunk_size``, resuming and retries work as in :func:`~endpointr.hf_embed_df`.

    Raises :class:`~endpointr.errors.ConfigError` (an invalid schema included) or
    :class:`~endpointr.errors.InputError` before any request.

    >>> oai_complete_df(df, text_var="review", id_var="id", schema=Review)  # doctest: +SKIP
    """
    return await run_whole(OpenAIChat, df, text_var, id_var, keywords)


@takes(OpenAIEmbed, OpenAIEmbedText)
async def aoai_embed_text(text: str, **keywords: Unpack[OpenAIEmbedText]) -> np.ndarray:
    """Embed one text; returns its vector (float32 numpy array).

    Raises the :class:`~endpointr.errors.RequestError` subclass of the last attempt when
    the request fails after ``max_retries`` attempts.
    """
    return await run_one(OpenAIEmbed, text, keywords)


@takes(OpenAIEmbed, OpenAIEmbedBatch)
async def aoai_embed_batch(
    texts: Sequence[str], **keywords: Unpack[OpenAIEmbedBatch]
) -> pd.DataFrame:
    """Embed a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, ``embedding`` (``V1..Vn`` with ``wide=True``), ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. Nothing is written to disk.
    """
    return await run_many(OpenAIEmbed, texts, keywords)


@takes(OpenAIEmbed, OpenAIEmbedTable)
async def aoai_embed_df(
    df: Any, *, text_var: str, id_var: str, **keywords: Unpack[OpenAIEmbedTable]
) -> Any:
    """Embed every row of a table, ``batch_size`` rows per request; same frame type back.

    Columns: ``id_var``, ``embedding`` (fixed-size float32 vectors; ``V1..Vn`` with
    ``wide=True``), ``.error``, ``.error_msg``, ``.status``, ``.attempts``. Vectors are
    matched to rows by the answer's ``index``. Token usage is per request and is not
    split over rows. Everything else works as in :func:`~endpointr.hf_embed_df`.

    >>> oai_embed_df(df, text_var="text", id_var="id", dimensions=256)  # doctest: +SKIP
    """
    return await run_whole(OpenAIEmbed, df, text_var, id_var, keywords)


oai_complete_text = synced(aoai_complete_text)
oai_complete_batch = synced(aoai_complete_batch)
oai_complete_df = synced(aoai_complete_df)
oai_embed_text = synced(aoai_embed_text)
oai_embed_batch = synced(aoai_embed_batch)
oai_embed_df = synced(aoai_embed_df)
