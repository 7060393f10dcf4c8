"""Hugging Face Inference Endpoints and Text-Embeddings-Inference (TEI)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..config import check_mapping, check_url
from ..errors import ResponseFormatError, ShapeError
from ..types import HttpRequest, Result, Row
from .base import Defaults, Endpoint, Packing
from .matrix import float_matrix

__all__ = [
    "HFEmbed",
    "fixed_size_embeddings",
    "fixed_size_vectors",
    "info_url",
    "split_parameters",
    "vectors_to_arrow",
]

_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_ROUTES = ("/embed", "/predict", "/classify", "/rerank", "/info")
# TEI reads these at the top level of the body; anything else goes under "parameters".
_TEI_TOP_LEVEL = frozenset(
    {"truncate", "normalize", "truncation_direction", "prompt_name", "dimensions", "raw_scores"}
)


def split_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``parameters`` split into TEI's top-level fields and the rest."""
    top = {k: v for k, v in parameters.items() if k in _TEI_TOP_LEVEL}
    rest = {k: v for k, v in parameters.items() if k not in _TEI_TOP_LEVEL}
    return top, rest


def info_url(endpoint_url: str) -> str:
    """``GET /info`` of the server behind ``endpoint_url``: a trailing ``/embed``,
    ``/predict``, ``/classify`` or ``/rerank`` is dropped (same scheme, host and query).

    >>> info_url("https://host/x/predict?a=1")
    'https://host/x/info?a=1'
    """
    parts = urlsplit(endpoint_url)
    path = parts.path.rstrip("/")
    for route in _ROUTES:
        if path.endswith(route):
            path = path[: -len(route)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path + "/info", parts.query, ""))


@dataclass
class HFEmbed(Endpoint):
    """Embeddings from a Hugging Face Inference Endpoint or a TEI server.

    Sends ``{"inputs": [texts], "truncate": true}``; TEI's own fields in ``parameters``
    (``normalize``, ``dimensions``, ...) go at the top level, any others under
    ``"parameters"``. The answer is one vector per input.
    """

    name: ClassVar[str] = "hf.embed"
    command: ClassVar[str] = "embed"
    defaults: ClassVar[Defaults] = Defaults("HF_API_KEY", batch_size=8, timeout=15)
    option_help: ClassVar[Mapping[str, str]] = {
        "endpoint_url": "the endpoint's URL",
        "parameters": "extra request fields as JSON, e.g. '{\"normalize\": true}'",
    }
    reads_info: ClassVar[bool] = True
    url: str
    parameters: dict[str, Any] = field(default_factory=dict)
    limits: Packing | None = None  # what the server's /info says one request may carry

    @classmethod
    def create(cls, *, endpoint_url: str, parameters: Mapping[str, Any] | None = None) -> Self:
        return cls(check_url(endpoint_url), check_mapping(parameters, "parameters"))

    @functools.cached_property
    def _split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``parameters`` split once: TEI's own fields, and the others."""
        return split_parameters(self.parameters)

    def fitted(self, info: Mapping[str, Any] | None) -> Self:
        """TEI's ``max_client_batch_size``, ``max_batch_tokens`` and ``max_input_length``
        as the limits requests are packed to; with ``truncate`` (the default) or the
        server's ``auto_truncate`` no input is too long."""
        if not info:
            return self
        top, _ = split_parameters(self.parameters)
        truncates = bool(top.get("truncate", True)) or info.get("auto_truncate") is True
        limits = Packing(
            _positive(info.get("max_client_batch_size")),
            _positive(info.get("max_batch_tokens")),
            _positive(info.get("max_input_length")),
            truncates,
        )
        return replace(self, limits=limits)

    def packing(self) -> Packing | None:
        return self.limits

    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        top, rest = self._split
        body: dict[str, Any] = {"inputs": [row.text for row in rows], "truncate": True, **top}
        if rest:
            body["parameters"] = rest
        return HttpRequest("POST", self.url, orjson.dumps(body), _JSON)

    def decode(self, data: bytes) -> Any:
        """A plain matrix of numbers straight into float32 (:func:`float_matrix`), any
        other body as JSON."""
        matrix = float_matrix(data)
        return orjson.loads(data) if matrix is None else matrix

    def parse_values(self, rows: Sequence[Row], body: Any) -> list[Any]:
        matrix = _as_matrix(body, len(rows))
        return list(matrix)

    def columns(self, values: Sequence[Any]) -> dict[str, pa.Array]:
        return {"embedding": vectors_to_arrow(values)}

    def fingerprint(self) -> dict[str, Any]:
        return {"endpoint": self.name, "url": self.url, "parameters": self.parameters}

    def manifest_fields(self) -> dict[str, Any]:
        return {"parameters": self.parameters}

    def asked(self) -> dict[str, Any]:
        return {"dimensions": self.parameters.get("dimensions")}

    def answered_with(self, body: Any, values: Sequence[Any]) -> dict[str, Any]:
        return vector_size(values)

    def one_value(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=np.float32)

    def to_cache(self, value: Any) -> bytes:
        return np.asarray(value, dtype="<f4").tobytes()

    def from_cache(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype="<f4").astype(np.float32, copy=False)

    def finalize(self, table: pa.Table) -> pa.Table:
        return fixed_size_embeddings(table)


def vector_size(values: Sequence[Any]) -> dict[str, int]:
    """``{"dimensions": n}`` from the first vector of ``values`` (none: ``{}``)."""
    for value in values:
        if value is not None and not isinstance(value, Result):
            return {"dimensions": len(value)}
    return {}


def fixed_size_embeddings(table: pa.Table) -> pa.Table:
    """``table`` with its ``embedding`` column as fixed-size vectors where it can be."""
    index = table.schema.get_field_index("embedding")
    return table.set_column(index, "embedding", fixed_size_vectors(table.column(index)))


def _as_matrix(body: Any, n_rows: int) -> np.ndarray:
    if isinstance(body, np.ndarray):  # decoded as float32 already
        return body
    if not isinstance(body, list) or not body:
        raise ResponseFormatError(f"expected a JSON list of {n_rows} vectors, got {_shape(body)}")
    if n_rows == 1 and not isinstance(body[0], list):
        body = [body]
    try:
        matrix = np.asarray(body, dtype=np.float32)
    except (ValueError, TypeError):
        raise ResponseFormatError("vectors in the answer are ragged or not numbers") from None
    if np.isnan(matrix).any():  # JSON has no NaN: a null among the numbers
        raise ResponseFormatError("vectors in the answer hold null where numbers belong")
    if matrix.ndim == 3:
        raise ShapeError(
            "the endpoint returned token embeddings (3-D); use a pooled sentence-embedding endpoint"
        )
    if matrix.ndim != 2:
        raise ResponseFormatError(f"expected a list of vectors, got {matrix.ndim}-D data")
    return matrix


def _shape(body: Any) -> str:
    if isinstance(body, list):
        return "an empty list"
    return f"a JSON {type(body).__name__}"


def vectors_to_arrow(values: Sequence[Any]) -> pa.Array:
    """A ``list<float32>`` array from vectors, ``None`` where a row failed."""
    present = [v for v in values if v is not None]
    lengths = np.array([0 if v is None else len(v) for v in values], dtype=np.int32)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = (
        np.concatenate([np.asarray(v, dtype=np.float32) for v in present])
        if present
        else np.zeros(0, dtype=np.float32)
    )
    mask = pa.array([v is None for v in values], type=pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat), mask=mask)


def fixed_size_vectors(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``column`` as ``fixed_size_list<float32>`` when every present vector has one length."""
    if pa.types.is_fixed_size_list(column.type):
        return column  # already: a cast would copy every vector
    lengths = pc.list_value_length(column)
    bounds = pc.min_max(lengths).as_py()
    low, high = bounds["min"], bounds["max"]
    if low is None or low != high or low == 0:
        return column
    return column.cast(pa.list_(pa.float32(), low))


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
