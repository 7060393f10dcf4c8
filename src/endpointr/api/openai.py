"""OpenAI and every OpenAI-compatible server: chat completions and embeddings.

``endpoint_url`` is the full URL of the route; ``base_url`` (as the OpenAI SDK takes
it, e.g. ``http://localhost:8000/v1``) may be given instead. ``key_name=None`` sends no
``Authorization`` header, for servers that need no key. Each public function has an
async twin named with a leading ``a`` (``aoai_complete_df``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.frames import widen_vectors
from ..providers.llm import resolve_url
from ..providers.openai import CHAT_URL, EMBEDDINGS_URL, OpenAIChat, OpenAIEmbed
from ..schema import as_json_schema
from ._chat import check_columns, complete_one
from ._common import run_batch, run_df, run_one
from ._job import JobSettings, synced

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


def chat_endpoint(
    endpoint_url: str,
    base_url: str | None,
    *,
    model: str,
    system_prompt: str | None,
    schema: Any,
    temperature: float | None,
    max_tokens: int,
) -> OpenAIChat:
    """The chat endpoint the arguments describe; :class:`ConfigError` before any request."""
    url = resolve_url(endpoint_url, base_url, default=CHAT_URL, path="/chat/completions")
    return OpenAIChat(
        url,
        model,
        system_prompt,
        temperature,
        max_tokens,
        None if schema is None else as_json_schema(schema),
    )


def embed_endpoint(
    endpoint_url: str,
    base_url: str | None,
    *,
    model: str,
    dimensions: int | None,
    encoding_format: str,
) -> OpenAIEmbed:
    """The embeddings endpoint the arguments describe."""
    url = resolve_url(endpoint_url, base_url, default=EMBEDDINGS_URL, path="/embeddings")
    return OpenAIEmbed(url, model, dimensions, encoding_format)


async def aoai_complete_text(
    text: str,
    *,
    model: str = "gpt-4.1-nano",
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = "OPENAI_API_KEY",
    endpoint_url: str = CHAT_URL,
    base_url: str | None = None,
    max_retries: int = 5,
    timeout: float = 30,
) -> Any:
    """Complete one text; returns the content string.

    With ``schema`` (a dict, ``JsonSchema``, pydantic model class or ``.json`` path) the
    answer is validated and the parsed dict comes back, or an instance of the model
    class. Raises :class:`~endpointr.errors.ResponseFormatError` for a refusal, no
    content or an answer that breaks the schema, another
    :class:`~endpointr.errors.RequestError` when the request fails after ``max_retries``
    attempts, :class:`~endpointr.errors.ConfigError` for a bad argument or schema.

    >>> oai_complete_text("Say hi", key_name=None, base_url=url)  # doctest: +SKIP
    'Hi!'
    """
    endpoint = chat_endpoint(
        endpoint_url,
        base_url,
        model=model,
        system_prompt=system_prompt,
        schema=schema,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    settings = JobSettings(
        batch_size=1, max_retries=max_retries, timeout=timeout, key_name=key_name
    )
    return await complete_one(text, endpoint, settings, schema)


async def aoai_complete_batch(
    texts: Sequence[str],
    *,
    model: str = "gpt-4.1-nano",
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = "OPENAI_API_KEY",
    endpoint_url: str = CHAT_URL,
    base_url: str | None = None,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 30,
    progress: bool = False,
) -> Any:
    """Complete a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, then those of :func:`oai_complete_df`. Nothing is written to disk.
    """
    endpoint = chat_endpoint(
        endpoint_url,
        base_url,
        model=model,
        system_prompt=system_prompt,
        schema=schema,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    check_columns(endpoint, "text")
    settings = JobSettings(
        batch_size=1,
        concurrent_requests=concurrent_requests,
        max_retries=max_retries,
        timeout=timeout,
        key_name=key_name,
        output_dir=None,
        progress=progress,
    )
    table = await run_batch(texts, endpoint, settings, task="oai-complete")
    return table.to_pandas()


async def aoai_complete_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    model: str = "gpt-4.1-nano",
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = "OPENAI_API_KEY",
    endpoint_url: str = CHAT_URL,
    base_url: str | None = None,
    output_dir: str | Path | None = "auto",
    chunk_size: int = 1000,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 30,
    progress: bool = True,
    overwrite: bool = False,
    retry_failed: bool = False,
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
    endpoint = chat_endpoint(
        endpoint_url,
        base_url,
        model=model,
        system_prompt=system_prompt,
        schema=schema,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    check_columns(endpoint, id_var)
    settings = JobSettings(
        batch_size=1,
        concurrent_requests=concurrent_requests,
        max_retries=max_retries,
        timeout=timeout,
        chunk_size=chunk_size,
        output_dir=output_dir,
        progress=progress,
        key_name=key_name,
        overwrite=overwrite,
        retry_failed=retry_failed,
        verify=verify,
        ca_bundle=ca_bundle,
        extra_manifest={"model": model},
    )
    return await run_df(
        df, endpoint, settings, text_var=text_var, id_var=id_var, task="oai-complete"
    )


async def aoai_embed_text(
    text: str,
    *,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    key_name: str | None = "OPENAI_API_KEY",
    endpoint_url: str = EMBEDDINGS_URL,
    base_url: str | None = None,
    encoding_format: str = "base64",
    max_retries: int = 5,
    timeout: float = 20,
) -> np.ndarray:
    """Embed one text; returns its vector (float32 numpy array).

    Raises a :class:`~endpointr.errors.RequestError` subclass when the request fails
    after ``max_retries`` attempts.
    """
    endpoint = embed_endpoint(
        endpoint_url,
        base_url,
        model=model,
        dimensions=dimensions,
        encoding_format=encoding_format,
    )
    settings = JobSettings(
        batch_size=1, max_retries=max_retries, timeout=timeout, key_name=key_name
    )
    row = await run_one(text, endpoint, settings)
    return np.asarray(row["embedding"], dtype=np.float32)


async def aoai_embed_batch(
    texts: Sequence[str],
    *,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    key_name: str | None = "OPENAI_API_KEY",
    endpoint_url: str = EMBEDDINGS_URL,
    base_url: str | None = None,
    encoding_format: str = "base64",
    batch_size: int = 100,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 20,
    progress: bool = False,
    wide: bool = False,
) -> Any:
    """Embed a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, ``embedding`` (``V1..Vn`` with ``wide=True``), ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. Nothing is written to disk.
    """
    endpoint = embed_endpoint(
        endpoint_url,
        base_url,
        model=model,
        dimensions=dimensions,
        encoding_format=encoding_format,
    )
    settings = JobSettings(
        batch_size=batch_size,
        concurrent_requests=concurrent_requests,
        max_retries=max_retries,
        timeout=timeout,
        key_name=key_name,
        output_dir=None,
        progress=progress,
    )
    table = await run_batch(texts, endpoint, settings, task="oai-embed")
    return (widen_vectors(table) if wide else table).to_pandas()


async def aoai_embed_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    model: str = "text-embedding-3-small",
    dimensions: int | None = None,
    key_name: str | None = "OPENAI_API_KEY",
    endpoint_url: str = EMBEDDINGS_URL,
    base_url: str | None = None,
    encoding_format: str = "base64",
    batch_size: int = 100,
    concurrent_requests: int | str = 5,
    output_dir: str | Path | None = "auto",
    chunk_size: int = 5000,
    max_retries: int = 5,
    timeout: float = 20,
    progress: bool = True,
    wide: bool = False,
    overwrite: bool = False,
    retry_failed: bool = False,
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
    endpoint = embed_endpoint(
        endpoint_url,
        base_url,
        model=model,
        dimensions=dimensions,
        encoding_format=encoding_format,
    )
    settings = JobSettings(
        batch_size=batch_size,
        concurrent_requests=concurrent_requests,
        max_retries=max_retries,
        timeout=timeout,
        chunk_size=chunk_size,
        output_dir=output_dir,
        progress=progress,
        key_name=key_name,
        overwrite=overwrite,
        retry_failed=retry_failed,
        verify=verify,
        ca_bundle=ca_bundle,
        extra_manifest={"model": model, "dimensions": dimensions},
    )
    return await run_df(
        df,
        endpoint,
        settings,
        text_var=text_var,
        id_var=id_var,
        task="oai-embed",
        present=widen_vectors if wide else None,
    )


oai_complete_text = synced(aoai_complete_text)
oai_complete_batch = synced(aoai_complete_batch)
oai_complete_df = synced(aoai_complete_df)
oai_embed_text = synced(aoai_embed_text)
oai_embed_batch = synced(aoai_embed_batch)
oai_embed_df = synced(aoai_embed_df)
