"""Hugging Face Inference Endpoints and TEI: embeddings.

Each public function has an async twin named with a leading ``a`` (``ahf_embed_df``);
the plain one blocks and also works inside a running event loop (Jupyter).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import check_mapping, check_url
from ..io.frames import widen_vectors
from ..providers.hf import HFEmbed
from ._common import run_batch, run_df, run_one
from ._job import JobSettings, synced
from .hf_utils import resolve_batch_size

__all__ = [
    "ahf_embed_batch",
    "ahf_embed_df",
    "ahf_embed_text",
    "hf_embed_batch",
    "hf_embed_df",
    "hf_embed_text",
]


def _endpoint(endpoint_url: str, parameters: dict[str, Any] | None) -> HFEmbed:
    return HFEmbed(check_url(endpoint_url), check_mapping(parameters, "parameters"))


async def ahf_embed_text(
    text: str,
    *,
    endpoint_url: str,
    key_name: str | None = "HF_API_KEY",
    parameters: dict[str, Any] | None = None,
    max_retries: int = 5,
    timeout: float = 15,
) -> np.ndarray:
    """Embed one text; returns its vector (float32 numpy array).

    Raises a :class:`~endpointr.errors.RequestError` subclass when the request fails
    after ``max_retries`` attempts; :class:`~endpointr.errors.MissingAPIKeyError` when
    the key's environment variable is unset (``key_name=None`` sends no key).

    >>> hf_embed_text("hello", endpoint_url=url, key_name=None)  # doctest: +SKIP
    array([ 0.031, -0.12 , ...], dtype=float32)
    """
    settings = JobSettings(
        batch_size=1,
        concurrent_requests=1,
        max_retries=max_retries,
        timeout=timeout,
        key_name=key_name,
    )
    row = await run_one(text, _endpoint(endpoint_url, parameters), settings)
    return np.asarray(row["embedding"], dtype=np.float32)


async def ahf_embed_batch(
    texts: Sequence[str],
    *,
    endpoint_url: str,
    key_name: str | None = "HF_API_KEY",
    parameters: dict[str, Any] | None = None,
    batch_size: int | str = 8,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 15,
    progress: bool = False,
    wide: bool = False,
) -> Any:
    """Embed a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, ``embedding`` (``V1..Vn`` with ``wide=True``), ``.error``,
    ``.error_msg``, ``.status``, ``.attempts``. A text that fails is an error row, not
    an exception. Nothing is written to disk. ``batch_size`` is fitted to the server as
    in :func:`hf_embed_df`.
    """
    endpoint = _endpoint(endpoint_url, parameters)
    settings = JobSettings(
        batch_size=await resolve_batch_size(endpoint.url, batch_size, key_name),
        concurrent_requests=concurrent_requests,
        max_retries=max_retries,
        timeout=timeout,
        key_name=key_name,
        output_dir=None,
        progress=progress,
    )
    table = await run_batch(texts, endpoint, settings, task="embed")
    return (widen_vectors(table) if wide else table).to_pandas()


async def ahf_embed_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    endpoint_url: str,
    key_name: str | None = "HF_API_KEY",
    parameters: dict[str, Any] | None = None,
    batch_size: int | str = 8,
    concurrent_requests: int | str = 5,
    output_dir: str | Path | None = "auto",
    chunk_size: int = 5000,
    max_retries: int = 5,
    timeout: float = 15,
    progress: bool = True,
    wide: bool = False,
    overwrite: bool = False,
    retry_failed: bool = False,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> Any:
    """Embed every row of a table; returns a frame of the same type, in input order.

    ``df`` is a pandas or polars DataFrame, a pyarrow Table, or a path to a CSV, Parquet
    or JSONL file (read as a stream; a pandas DataFrame comes back). The result has
    ``id_var``, ``embedding`` (fixed-size float32 vectors; ``V1..Vn`` with ``wide=True``),
    ``.error``, ``.error_msg``, ``.status`` and ``.attempts``: one row per input row.

    Results are committed to ``output_dir`` every ``chunk_size`` rows (``"auto"``: a new
    timestamped directory; ``None``: memory only). Re-running on the same directory sends
    only the rows not yet committed; ``retry_failed=True`` also re-sends error rows;
    ``overwrite=True`` starts over. ``max_retries`` counts attempts per request;
    ``timeout`` is seconds per attempt; ``concurrent_requests="auto"`` finds the level
    the endpoint sustains. ``batch_size`` is capped at the server's
    ``max_client_batch_size`` when its ``/info`` reports one (a notice on stderr);
    ``"auto"`` takes that limit, or 8 when the server reports none.

    Raises :class:`~endpointr.errors.InputError` or :class:`~endpointr.errors.ConfigError`
    before any request when the input or an argument is wrong.

    >>> hf_embed_df(df, text_var="text", id_var="id", endpoint_url=url)  # doctest: +SKIP
    """
    endpoint = _endpoint(endpoint_url, parameters)
    size = await resolve_batch_size(
        endpoint.url, batch_size, key_name, verify=verify, ca_bundle=ca_bundle
    )
    settings = JobSettings(
        batch_size=size,
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
        extra_manifest={"parameters": endpoint.parameters},
    )
    return await run_df(
        df,
        endpoint,
        settings,
        text_var=text_var,
        id_var=id_var,
        task="embed",
        present=widen_vectors if wide else None,
    )


hf_embed_text = synced(ahf_embed_text)
hf_embed_batch = synced(ahf_embed_batch)
hf_embed_df = synced(ahf_embed_df)
