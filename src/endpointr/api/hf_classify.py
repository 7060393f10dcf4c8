"""Hugging Face Inference Endpoints and TEI: text classification.

Each public function has an async twin named with a leading ``a`` (``ahf_classify_df``);
the plain one blocks and also works inside a running event loop (Jupyter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import check_int, check_mapping, check_url
from ..errors import ConfigError
from ..providers.hf_classify import RESERVED_COLUMNS, HFClassify
from ._common import run_batch, run_df, run_one
from ._job import JobSettings, synced
from .hf_utils import check_batch_size, fit_batch_size, probe_info

__all__ = [
    "ahf_classify_batch",
    "ahf_classify_df",
    "ahf_classify_text",
    "hf_classify_batch",
    "hf_classify_df",
    "hf_classify_text",
]


def classify_endpoint(
    endpoint_url: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    max_length: int = 512,
    label_map: Mapping[str, str] | None = None,
    reserved: Sequence[str] = (),
) -> HFClassify:
    """The checked :class:`HFClassify` for these arguments; raises :class:`ConfigError`."""
    labels = check_mapping(label_map, "label_map")
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in labels.items()):
        raise ConfigError("label_map must map label names to non-empty new names (strings)")
    if len(set(labels.values())) != len(labels):
        raise ConfigError("label_map gives two labels the same name")
    taken = sorted(
        v for v in labels.values() if v in RESERVED_COLUMNS or v in reserved or v.startswith(".")
    )
    if taken:
        raise ConfigError(f"label_map names {taken} are output column names; choose others")
    return HFClassify(
        check_url(endpoint_url),
        check_mapping(parameters, "parameters"),
        check_int(max_length, "max_length"),
        labels,
        reserved=tuple(reserved),
    )


async def fit_to_server(
    endpoint: HFClassify,
    batch_size: int | str,
    key_name: str | None,
    *,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> int:
    """Ask the server's ``/info`` once: cap ``batch_size`` at its limit, and switch
    ``endpoint`` to TEI's wire format when the URL is the root of a TEI classifier.
    """
    check_batch_size(batch_size)
    info = await probe_info(endpoint.url, key_name, verify=verify, ca_bundle=ca_bundle)
    model_type = info.get("model_type") if info else None
    at_root = not urlsplit(endpoint.url).path.strip("/")
    if at_root and isinstance(model_type, dict) and "classifier" in model_type:
        endpoint.tei = True
    return fit_batch_size(batch_size, info)


async def ahf_classify_text(
    text: str,
    *,
    endpoint_url: str,
    key_name: str | None = "HF_API_KEY",
    parameters: dict[str, Any] | None = None,
    max_length: int = 512,
    label_map: dict[str, str] | None = None,
    max_retries: int = 5,
    timeout: float = 20,
) -> dict[str, float]:
    """Classify one text; returns ``{label: score}``, highest score first.

    Raises a :class:`~endpointr.errors.RequestError` subclass when the request fails
    after ``max_retries`` attempts; :class:`~endpointr.errors.MissingAPIKeyError` when
    the key's environment variable is unset (``key_name=None`` sends no key).

    >>> hf_classify_text("I love it", endpoint_url=url, key_name=None)  # doctest: +SKIP
    {'POSITIVE': 0.97, 'NEUTRAL': 0.02, 'NEGATIVE': 0.01}
    """
    endpoint = classify_endpoint(
        endpoint_url, parameters=parameters, max_length=max_length, label_map=label_map
    )
    settings = JobSettings(
        batch_size=1,
        concurrent_requests=1,
        max_retries=max_retries,
        timeout=timeout,
        key_name=key_name,
    )
    row = await run_one(text, endpoint, settings)
    scores = {
        k: v
        for k, v in row.items()
        if k not in RESERVED_COLUMNS and not k.startswith(".") and v is not None
    }
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


async def ahf_classify_batch(
    texts: Sequence[str],
    *,
    endpoint_url: str,
    key_name: str | None = "HF_API_KEY",
    parameters: dict[str, Any] | None = None,
    max_length: int = 512,
    label_map: dict[str, str] | None = None,
    batch_size: int | str = 8,
    concurrent_requests: int | str = 5,
    max_retries: int = 5,
    timeout: float = 20,
    progress: bool = False,
) -> Any:
    """Classify a list of texts; returns a pandas DataFrame in input order.

    Columns: ``text``, one float column per label (see :func:`hf_classify_df`),
    ``label``, ``score``, ``.error``, ``.error_msg``, ``.status``, ``.attempts``. A text
    that fails is an error row, not an exception. Nothing is written to disk.
    """
    endpoint = classify_endpoint(
        endpoint_url, parameters=parameters, max_length=max_length, label_map=label_map
    )
    settings = JobSettings(
        batch_size=await fit_to_server(endpoint, batch_size, key_name),
        concurrent_requests=concurrent_requests,
        max_retries=max_retries,
        timeout=timeout,
        key_name=key_name,
        output_dir=None,
        progress=progress,
    )
    table = await run_batch(texts, endpoint, settings, task="classify")
    return table.to_pandas()


async def ahf_classify_df(
    df: Any,
    *,
    text_var: str,
    id_var: str,
    endpoint_url: str,
    key_name: str | None = "HF_API_KEY",
    parameters: dict[str, Any] | None = None,
    max_length: int = 512,
    label_map: dict[str, str] | None = None,
    batch_size: int | str = 8,
    concurrent_requests: int | str = 5,
    output_dir: str | Path | None = "auto",
    chunk_size: int = 5000,
    max_retries: int = 5,
    timeout: float = 60,
    progress: bool = True,
    overwrite: bool = False,
    retry_failed: bool = False,
    verify: bool = True,
    ca_bundle: str | None = None,
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
    endpoint = classify_endpoint(
        endpoint_url,
        parameters=parameters,
        max_length=max_length,
        label_map=label_map,
        reserved=(id_var,) if isinstance(id_var, str) else (),
    )
    size = await fit_to_server(endpoint, batch_size, key_name, verify=verify, ca_bundle=ca_bundle)
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
        extra_manifest=manifest_fields(endpoint),
    )
    return await run_df(df, endpoint, settings, text_var=text_var, id_var=id_var, task="classify")


def manifest_fields(endpoint: HFClassify) -> dict[str, Any]:
    """What ``metadata.json`` records of a classification run, besides the common fields."""
    return {
        "parameters": endpoint.parameters,
        "max_length": endpoint.max_length,
        "label_map": endpoint.label_map,
        "wire_format": "tei" if endpoint.tei else "inference-endpoints",
    }


hf_classify_text = synced(ahf_classify_text)
hf_classify_batch = synced(ahf_classify_batch)
hf_classify_df = synced(ahf_classify_df)
