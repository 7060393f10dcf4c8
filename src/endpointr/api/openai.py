"""OpenAI and every OpenAI-compatible server: chat completions and embeddings.

``endpoint_url`` is the full URL of the route; ``base_url`` (as the OpenAI SDK takes
it, e.g. ``http://localhost:8000/v1``) may be given instead. ``key_name=None`` sends no
``Authorization`` header, for servers that need no key. Each public function has an
async twin named with a leading ``a`` (``aoai_complete_df``). The run options are those
of :class:`~endpointr.RunOptions`; their defaults are the endpoint's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.options import Backoff
from ..engine.sync import synced
from ..providers.openai import CHAT_URL, EMBEDDINGS_URL, OpenAIChat, OpenAIEmbed
from ._run import run_many, run_one, run_whole

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

CHAT = OpenAIChat.defaults
EMBED = OpenAIEmbed.defaults


async def aoai_complete_text(
    text: str,
    *,
    model: str = OpenAIChat.default_model,
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = CHAT.key_name,
    endpoint_url: str = CHAT_URL,
    base_url: str | None = None,
    max_retries: int = 5,
    timeout: float = CHAT.timeout,
    backoff: Backoff | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> Any:
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
    return await run_one(OpenAIChat, locals())


async def aoai_complete_batch(
    texts: Sequence[str],
    *,
    model: str = OpenAIChat.default_model,
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = CHAT.key_name,
    endpoint_url: str = CHAT_URL,
    base_url: str | None = None,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = CHAT.timeout,
    progress: bool = False,
    backoff: Backoff | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> pd.DataFrame:
    """Complete a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, then those of :func:`oai_complete_df`. Nothing is written to disk.
    """
    return await run_many(OpenAIChat, locals())


async def aoai_complete_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    model: str = OpenAIChat.default_model,
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = CHAT.key_name,
    endpoint_url: str = CHAT_URL,
    base_url: str | None = None,
    output_dir: str | Path | None = "auto",
    chunk_size: int = CHAT.chunk_size,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = CHAT.timeout,
    progress: bool = True,
    overwrite: bool = False,
    retry_failed: bool = False,
    backoff: Backoff | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
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
    return await run_whole(OpenAIChat, locals())


async def aoai_embed_text(
    text: str,
    *,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    key_name: str | None = EMBED.key_name,
    endpoint_url: str = EMBEDDINGS_URL,
    base_url: str | None = None,
    encoding_format: str = "base64",
    max_retries: int = 5,
    timeout: float = EMBED.timeout,
    backoff: Backoff | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> np.ndarray:
    """Embed one text; returns its vector (float32 numpy array).

    Raises the :class:`~endpointr.errors.RequestError` subclass of the last attempt when
    the request fails after ``max_retries`` attempts.
    """
    return await run_one(OpenAIEmbed, locals())


async def aoai_embed_batch(
    texts: Sequence[str],
    *,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    key_name: str | None = EMBED.key_name,
    endpoint_url: str = EMBEDDINGS_URL,
    base_url: str | None = None,
    encoding_format: str = "base64",
    batch_size: int = EMBED.batch_size,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = EMBED.timeout,
    progress: bool = False,
    wide: bool = False,
    backoff: Backoff | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> pd.DataFrame:
    """Embed a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, ``embedding`` (``V1..Vn`` with ``wide=True``), ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. Nothing is written to disk.
    """
    return await run_many(OpenAIEmbed, locals())


async def aoai_embed_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    key_name: str | None = EMBED.key_name,
    endpoint_url: str = EMBEDDINGS_URL,
    base_url: str | None = None,
    encoding_format: str = "base64",
    batch_size: int = EMBED.batch_size,
    concurrent_requests: int | str = 5,
    output_dir: str | Path | None = "auto",
    chunk_size: int = EMBED.chunk_size,
    max_retries: int = 5,
    timeout: float = EMBED.timeout,
    progress: bool = True,
    wide: bool = False,
    overwrite: bool = False,
    retry_failed: bool = False,
    backoff: Backoff | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> Any:
    """Embed every row of a table, ``batch_size`` rows per request; same frame type back.

    Columns: ``id_var``, ``embedding`` (fixed-size float32 vectors; ``V1..Vn`` with
    ``wide=True``), ``.error``, ``.error_msg``, ``.status``, ``.attempts``. Vectors are
    matched to rows by the answer's ``index``. Token usage is per request and is not
    split over rows. Everything else works as in :func:`~endpointr.hf_embed_df`.

    >>> oai_embed_df(df, text_var="text", id_var="id", dimensions=256)  # doctest: +SKIP
    """
    return await run_whole(OpenAIEmbed, locals())


oai_complete_text = synced(aoai_complete_text)
oai_complete_batch = synced(aoai_complete_batch)
oai_complete_df = synced(aoai_complete_df)
oai_embed_text = synced(aoai_embed_text)
oai_embed_batch = synced(aoai_embed_batch)
oai_embed_df = synced(aoai_embed_df)
