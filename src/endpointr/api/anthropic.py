"""Anthropic Messages: completions, with prompt caching of the system prompt.

``endpoint_url`` is the full URL of the route; ``base_url`` (as the Anthropic SDK takes
it, e.g. ``https://api.anthropic.com``; a trailing ``/v1`` is accepted too) may be given
instead. The key goes in ``x-api-key``; ``key_name=None`` sends none. Each public
function has an async twin named with a leading ``a`` (``aant_complete_df``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..providers.anthropic import MESSAGES_URL, AnthropicMessages
from ..providers.llm import resolve_url
from ..schema import as_json_schema
from ._chat import check_columns, complete_one
from ._common import run_batch, run_df
from ._job import JobSettings, synced

__all__ = [
    "aant_complete_batch",
    "aant_complete_df",
    "aant_complete_text",
    "ant_complete_batch",
    "ant_complete_df",
    "ant_complete_text",
]


def messages_endpoint(
    endpoint_url: str,
    base_url: str | None,
    *,
    model: str,
    system_prompt: str | None,
    schema: Any,
    temperature: float | None,
    max_tokens: int,
) -> AnthropicMessages:
    """The messages endpoint the arguments describe; :class:`ConfigError` before any request."""
    url = resolve_url(endpoint_url, base_url, default=MESSAGES_URL, path="/v1/messages")
    return AnthropicMessages(
        url,
        model,
        system_prompt,
        temperature,
        max_tokens,
        None if schema is None else as_json_schema(schema),
    )


async def aant_complete_text(
    text: str,
    *,
    model: str = "claude-haiku-4-5",
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = "ANTHROPIC_API_KEY",
    endpoint_url: str = MESSAGES_URL,
    base_url: str | None = None,
    max_retries: int = 5,
    timeout: float = 60,
) -> Any:
    """Complete one text; returns the content string (the text blocks joined).

    With ``schema`` (a dict, ``JsonSchema``, pydantic model class or ``.json`` path) the
    answer is validated and the parsed dict comes back, or an instance of the model
    class. Raises :class:`~endpointr.errors.ResponseFormatError` for a refusal, no
    content or an answer that breaks the schema, another
    :class:`~endpointr.errors.RequestError` when the request fails after ``max_retries``
    attempts (529 "overloaded" is retried), :class:`~endpointr.errors.ConfigError` for a
    bad argument or schema. ``temperature`` is from 0 to 1.

    >>> ant_complete_text("Say hi")  # doctest: +SKIP
    'Hi!'
    """
    endpoint = messages_endpoint(
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


async def aant_complete_batch(
    texts: Sequence[str],
    *,
    model: str = "claude-haiku-4-5",
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = "ANTHROPIC_API_KEY",
    endpoint_url: str = MESSAGES_URL,
    base_url: str | None = None,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 60,
    progress: bool = False,
) -> Any:
    """Complete a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, then those of :func:`ant_complete_df`. Nothing is written to disk.
    """
    endpoint = messages_endpoint(
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
    table = await run_batch(texts, endpoint, settings, task="ant-complete")
    return table.to_pandas()


async def aant_complete_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    model: str = "claude-haiku-4-5",
    system_prompt: str | None = None,
    schema: Any = None,
    temperature: float | None = 0,
    max_tokens: int = 500,
    key_name: str | None = "ANTHROPIC_API_KEY",
    endpoint_url: str = MESSAGES_URL,
    base_url: str | None = None,
    output_dir: str | Path | None = "auto",
    chunk_size: int = 1000,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 60,
    progress: bool = True,
    overwrite: bool = False,
    retry_failed: bool = False,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> Any:
    """Complete every row of a table, one request per row; the same frame type comes back.

    Columns: ``id_var``, ``content``, the schema's top-level fields (typed scalars;
    objects and arrays as JSON text), ``stop_reason``, ``input_tokens``,
    ``output_tokens``, ``cache_read_input_tokens``, ``cache_creation_input_tokens``,
    ``.error``, ``.error_msg``, ``.status``, ``.attempts``. The system prompt is sent
    as a cached block, so the rows after the first read it from the prompt cache (when
    it is long enough for the model to cache). ``stop_reason`` ``"refusal"``, no
    content or an answer that breaks the schema is an error row that keeps
    ``content`` and the usage. ``df``, ``output_dir``, ``chunk_size``, resuming and
    retries work as in :func:`~endpointr.hf_embed_df`.

    Raises :class:`~endpointr.errors.ConfigError` (an invalid schema included) or
    :class:`~endpointr.errors.InputError` before any request.

    >>> ant_complete_df(df, text_var="review", id_var="id", schema=Review)  # doctest: +SKIP
    """
    endpoint = messages_endpoint(
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
        df, endpoint, settings, text_var=text_var, id_var=id_var, task="ant-complete"
    )


ant_complete_text = synced(aant_complete_text)
ant_complete_batch = synced(aant_complete_batch)
ant_complete_df = synced(aant_complete_df)
