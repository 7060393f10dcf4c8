"""Anthropic Messages: completions, with prompt caching of the system prompt.

``endpoint_url`` is the full URL of the route; ``base_url`` (as the Anthropic SDK takes
it, e.g. ``https://api.anthropic.com``; a trailing ``/v1`` is accepted too) may be given
instead. The key goes in ``x-api-key``; ``key_name=None`` sends none. Each public
function has an async twin named with a leading ``a`` (``aant_complete_df``). The run
options are those of :class:`~endpointr.RunOptions`; their defaults are the endpoint's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

from ..engine.calls import run_many, run_one, run_whole
from ..engine.sync import synced
from ..providers.anthropic import AnthropicMessages
from ._keywords import AntChatBatch, AntChatTable, AntChatText
from ._signature import takes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "aant_complete_batch",
    "aant_complete_df",
    "aant_complete_text",
    "ant_complete_batch",
    "ant_complete_df",
    "ant_complete_text",
]


@takes(AnthropicMessages, AntChatText)
async def aant_complete_text(text: str, **keywords: Unpack[AntChatText]) -> Any:
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
    return await run_one(AnthropicMessages, text, keywords)


@takes(AnthropicMessages, AntChatBatch)
async def aant_complete_batch(
    texts: Sequence[str], **keywords: Unpack[AntChatBatch]
) -> pd.DataFrame:
    """Complete a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, then those of :func:`ant_complete_df`. Nothing is written to disk.
    """
    return await run_many(AnthropicMessages, texts, keywords)


@takes(AnthropicMessages, AntChatTable)
async def aant_complete_df(
    df: Any, *, text_var: str, id_var: str, **keywords: Unpack[AntChatTable]
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
    return await run_whole(AnthropicMessages, df, text_var, id_var, keywords)


ant_complete_text = synced(aant_complete_text)
ant_complete_batch = synced(aant_complete_batch)
ant_complete_df = synced(aant_complete_df)
