"""Hugging Face Inference Endpoints and TEI: embeddings and text classification.

Each public function has an async twin named with a leading ``a`` (``ahf_embed_df``);
the plain one blocks and also works inside a running event loop (Jupyter). The run
options (``batch_size``, ``concurrent_requests``, ``max_retries``, ``timeout``, ...)
are those of :class:`~endpointr.RunOptions`; their defaults are the endpoint's.
``endpoint_url="local"`` on the embedding functions runs the bundled local model instead
(see :mod:`endpointr.api.local`; its defaults apply, and it takes no ``parameters``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from ..engine.calls import run_many, run_one, run_whole
from ..engine.sync import synced
from ..providers.hf import HFEmbed
from ..providers.hf_classify import HFClassify
from ._keywords import ClassifyBatch, ClassifyTable, ClassifyText, EmbedBatch, EmbedTable, EmbedText
from ._signature import takes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ahf_classify_batch",
    "ahf_classify_df",
    "ahf_classify_text",
    "ahf_embed_batch",
    "ahf_embed_df",
    "ahf_embed_text",
    "hf_classify_batch",
    "hf_classify_df",
    "hf_classify_text",
    "hf_embed_batch",
    "hf_embed_df",
    "hf_embed_text",
]


@takes(HFEmbed, EmbedText)
async def ahf_embed_text(
    text: str, *, endpoint_url: str, **keywords: Unpack[EmbedText]
) -> np.ndarray:
    """Embed one text; returns its vector (float32 numpy array).

    Raises the :class:`~endpointr.errors.RequestError` subclass of the last attempt when
    the request fails after ``max_retries`` attempts (e.g.
    :class:`~endpointr.errors.ResponseFormatError` for answers that cannot be read,
    :class:`~endpointr.errors.CertificateError` for a certificate that cannot be
    verified); :class:`~endpointr.errors.MissingAPIKeyError` when the key's environment
    variable is unset (``key_name=None`` sends no key).

    >>> hf_embed_text("hello", endpoint_url=url, key_name=None)  # doctest: +SKIP
    array([ 0.031, -0.12 , ...], dtype=float32)
    """
    return await run_one(HFEmbed, text, {"endpoint_url": endpoint_url, **keywords})


@takes(HFEmbed, EmbedBatch)
async def ahf_embed_batch(
    texts: Sequence[str], *, endpoint_url: str, **keywords: Unpack[EmbedBatch]
) -> pd.DataFrame:
    """Embed a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, ``embedding`` (``V1..Vn`` with ``wide=True``), ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. A text that fails is an error row, not
    an exception. Nothing is written to disk. ``batch_size`` is fitted to the server as
    in :func:`hf_embed_df`.
    """
    return await run_many(HFEmbed, texts, {"endpoint_url": endpoint_url, **keywords})


@takes(HFEmbed, EmbedTable)
async def ahf_embed_df(
    df: Any, *, text_var: str, id_var: str, endpoint_url: str, **keywords: Unpack[EmbedTable]
) -> Any:
    """Embed every row of a table; returns a frame of the same type, in input order.

    ``df`` is a pandas or polars DataFrame, a pyarrow Table, or a path to a CSV, Parquet
    or JSONL file (read as a stream; a pandas DataFrame comes back). The result has
    ``id_var``, ``embedding`` (fixed-size float32 vectors; ``V1..Vn`` with ``wide=True``),
    ``.error``, ``.error_msg``, ``.status`` and ``.attempts``: one row per input row.

    Results are committed to ``output_dir`` every ``chunk_size`` rows (``"auto"``:
    ``endpointr-hf-embed-<key>`` in the working directory, one per settings and input, so
    the same call again resumes; ``None``: memory only). Re-running on the same directory sends
    only the rows not yet committed; ``retry_failed=True`` also re-sends error rows;
    ``overwrite=True`` starts over. ``max_retries`` counts attempts per request;
    ``timeout`` is seconds per attempt; ``backoff`` sets the waits between attempts;
    ``requests_per_minute`` and ``tokens_per_minute`` pace the sends;
    ``concurrent_requests="auto"`` finds the level the endpoint sustains. ``batch_size``
    is capped at the server's ``max_client_batch_size`` when its ``/info`` reports one
    (a notice on stderr); ``"auto"`` takes that limit, or 8 when the server reports none.

    Raises :class:`~endpointr.errors.InputError` or :class:`~endpointr.errors.ConfigError`
    before any request when the input or an argument is wrong.

    >>> hf_embed_df(df, text_var="text", id_var="id", endpoint_url=url)  # doctest: +SKIP
    """
    return await run_whole(
        HFEmbed, df, text_var, id_var, {"endpoint_url": endpoint_url, **keywords}
    )


@takes(HFClassify, ClassifyText)
async def ahf_classify_text(
    text: str, *, endpoint_url: str, **keywords: Unpack[ClassifyText]
) -> dict[str, float]:
    """Classify one text; returns ``{label: score}``, highest score first.

    Raises the :class:`~endpointr.errors.RequestError` subclass of the last attempt when
    the request fails after ``max_retries`` attempts;
    :class:`~endpointr.errors.MissingAPIKeyError` when the key's environment variable is
    unset (``key_name=None`` sends no key).

    >>> hf_classify_text("I love it", endpoint_url=url, key_name=None)  # doctest: +SKIP
    {'POSITIVE': 0.97, 'NEUTRAL': 0.02, 'NEGATIVE': 0.01}
    """
    return await run_one(HFClassify, text, {"endpoint_url": endpoint_url, **keywords})


@takes(HFClassify, ClassifyBatch)
async def ahf_classify_batch(
    texts: Sequence[str], *, endpoint_url: str, **keywords: Unpack[ClassifyBatch]
) -> pd.DataFrame:
    """Classify a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, one float column per label (see :func:`hf_classify_df`),
    ``label``, ``score``, ``.error``, ``.error_msg``, ``.status``, ``.attempts``. A text
    that fails is an error row, not an exception. Nothing is written to disk.
    """
    return await run_many(HFClassify, texts, {"endpoint_url": endpoint_url, **keywords})


@takes(HFClassify, ClassifyTable)
async def ahf_classify_df(
    df: Any, *, text_var: str, id_var: str, endpoint_url: str, **keywords: Unpack[ClassifyTable]
) -> Any:
    """Classify every row of a table; returns a frame of the same type, in input order.

    ``df`` is a pandas or polars DataFrame, a pyarrow Table, or a path to a CSV, Parquet
    or JSONL file (a pandas DataFrame comes back). The result has ``id_var``, one float
    column per label (null where the answer gave that row no score for it), ``label``
    (the top label), ``score`` (its score), ``.error``, ``.error_msg``, ``.status`` and
    ``.attempts``: one row per input row. Label columns come in ``label_map``'s order,
    then the others in natural order (``LABEL_2`` before ``LABEL_10``).

    ``label_map`` renames labels (``{"LABEL_0": "negative"}``; unknown labels keep their
    names); it is part of the run's settings, so a resume must use the same map.
    ``max_length`` truncates texts (in tokens) on Inference Endpoints; TEI truncates to
    its own limit. ``batch_size`` is capped at the server's ``max_client_batch_size``
    when ``/info`` reports one; ``"auto"`` takes that limit (8 when unknown).

    Output, resume, retries and the other keywords work as in
    :func:`~endpointr.hf_embed_df`. Raises :class:`~endpointr.errors.InputError` or
    :class:`~endpointr.errors.ConfigError` before any request when the input or an
    argument is wrong.

    >>> hf_classify_df(df, text_var="text", id_var="id", endpoint_url=url)  # doctest: +SKIP
    """
    return await run_whole(
        HFClassify, df, text_var, id_var, {"endpoint_url": endpoint_url, **keywords}
    )


hf_embed_text = synced(ahf_embed_text)
hf_embed_batch = synced(ahf_embed_batch)
hf_embed_df = synced(ahf_embed_df)
hf_classify_text = synced(ahf_classify_text)
hf_classify_batch = synced(ahf_classify_batch)
hf_classify_df = synced(ahf_classify_df)
