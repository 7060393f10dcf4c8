"""Text classification on Hugging Face Inference Endpoints and TEI.

Two wire formats. Inference Endpoints (the pipeline toolkit, any URL path) read
``{"inputs": [texts], "parameters": {"top_k": null, "truncation": true, "max_length": n}}``.
TEI's ``/predict`` (and the root of a TEI server that serves a classifier) reads
``{"inputs": [[text], ...], "truncate": true, "raw_scores": false}``: TEI takes a flat
list of two strings as one sentence *pair*, so each text of a batch travels in its own
one-element list.

The output is EndpointR's wide form: one float column per label (null where a row's
answer did not score that label), then ``label`` (the top label) and ``score`` (its score).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import orjson
import pyarrow as pa

from ..config import check_int, check_mapping, check_url
from ..errors import ConfigError, ResponseFormatError
from ..types import HttpRequest, Result, Row
from .base import Defaults, Endpoint

__all__ = ["RESERVED_COLUMNS", "HFClassify", "is_tei_predict", "label_order"]

_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
RESERVED_COLUMNS = frozenset({"label", "score", "text"})
_DIGITS = re.compile(r"(\d+)")

Scores = dict[str, float]


def is_tei_predict(url: str) -> bool:
    """Whether ``url`` names TEI's ``/predict`` route."""
    return urlsplit(url).path.rstrip("/").endswith("/predict")


def label_order(labels: Iterable[str], label_map: Mapping[str, str] | None = None) -> list[str]:
    """``labels`` in output order: ``label_map``'s values in the map's order, then the
    rest in natural order (``LABEL_2`` before ``LABEL_10``, case-insensitive).

    The order depends only on the set of labels, so every chunk and every resumed run
    gets the same columns in the same order.
    """
    present = set(labels)
    mapped = [name for name in dict.fromkeys((label_map or {}).values()) if name in present]
    rest = sorted(present.difference(mapped), key=_natural_key)
    return mapped + rest


def _natural_key(label: str) -> tuple[tuple[int, int | str], ...]:
    parts = _DIGITS.split(label.casefold())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


@dataclass
class HFClassify(Endpoint):
    """Label scores for each text from a Hugging Face Inference Endpoint or TEI.

    ``tei`` picks TEI's wire format; ``None`` means: when the URL path ends in
    ``/predict``. ``parameters`` are merged into ``"parameters"`` (Inference Endpoints)
    or into the top level (TEI). ``label_map`` renames labels as they are read (unknown
    labels keep their names). ``reserved`` are further column names a label must not
    take (the id column); a row whose answer has such a label becomes an error row.

    Every answer shape these servers give is read: ``[[{label, score}, ...], ...]``
    (all labels per text), ``[{label, score}, ...]`` (one text, all labels; or, for
    n > 1 texts, exactly n dicts: the top label per text) and ``{label, score}`` (one
    text). Anything else raises :class:`ResponseFormatError`.
    """

    name: ClassVar[str] = "hf.classify"
    command: ClassVar[str] = "classify"
    defaults: ClassVar[Defaults] = Defaults("HF_API_KEY", batch_size=8, timeout=60)
    option_help: ClassVar[Mapping[str, str]] = {
        "endpoint_url": "the endpoint's URL",
        "parameters": 'extra request parameters as JSON, e.g. \'{"function_to_apply": "sigmoid"}\'',
        "max_length": "truncate texts to N tokens",
        "label_map": 'rename labels as JSON, e.g. \'{"LABEL_0": "negative"}\'',
    }
    reads_info: ClassVar[bool] = True
    url: str
    parameters: dict[str, Any] = field(default_factory=dict)
    max_length: int = 512
    label_map: dict[str, str] = field(default_factory=dict)
    tei: bool | None = None
    reserved: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tei is None:
            self.tei = is_tei_predict(self.url)

    @classmethod
    def create(
        cls,
        *,
        endpoint_url: str,
        parameters: Mapping[str, Any] | None = None,
        max_length: int = 512,
        label_map: Mapping[str, str] | None = None,
    ) -> Self:
        labels = check_mapping(label_map, "label_map")
        if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in labels.items()):
            raise ConfigError("label_map must map label names to non-empty new names (strings)")
        if len(set(labels.values())) != len(labels):
            raise ConfigError("label_map gives two labels the same name")
        endpoint = cls(
            check_url(endpoint_url),
            check_mapping(parameters, "parameters"),
            check_int(max_length, "max_length"),
            labels,
        )
        return endpoint.for_columns(())

    def for_columns(self, taken: Sequence[str]) -> Self:
        clash = sorted(
            v
            for v in self.label_map.values()
            if v in RESERVED_COLUMNS or v in taken or v.startswith(".")
        )
        if clash:
            raise ConfigError(f"label_map names {clash} are output column names; choose others")
        return replace(self, reserved=tuple(taken))

    def fitted(self, info: Mapping[str, Any] | None) -> Self:
        """TEI's wire format when the URL is the root of a TEI server serving a classifier."""
        model_type = info.get("model_type") if info else None
        at_root = not urlsplit(self.url).path.strip("/")
        if at_root and isinstance(model_type, dict) and "classifier" in model_type:
            return replace(self, tei=True)
        return self

    def one_value(self, value: Any) -> dict[str, float]:
        """``{label: score}``, highest score first."""
        return dict(sorted(value.items(), key=lambda kv: -kv[1]))

    def manifest_fields(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "max_length": self.max_length,
            "label_map": self.label_map,
            "wire_format": "tei" if self.tei else "inference-endpoints",
        }

    def build_request(self, rows: Sequence[Row]) -> HttpRequest:
        body: dict[str, Any]
        if self.tei:
            body = {"inputs": [[row.text] for row in rows], "truncate": True, "raw_scores": False}
            body.update(self.parameters)
        else:
            options = {"top_k": None, "truncation": True, "max_length": self.max_length}
            body = {"inputs": [row.text for row in rows], "parameters": options}
            options.update(self.parameters)
        return HttpRequest("POST", self.url, orjson.dumps(body), _JSON)

    def parse_values(self, rows: Sequence[Row], body: Any) -> list[Any]:
        per_text = _per_text(body, len(rows))
        return [self._scores(items) for items in per_text]

    def columns(self, values: Sequence[Any]) -> dict[str, pa.Array]:
        labels = label_order((name for v in values if v for name in v), self.label_map)
        out = {
            name: pa.array([v.get(name) if v else None for v in values], pa.float64())
            for name in labels
        }
        tops = [max(v.items(), key=lambda kv: kv[1]) if v else (None, None) for v in values]
        out["label"] = pa.array([t[0] for t in tops], pa.string())
        out["score"] = pa.array([t[1] for t in tops], pa.float64())
        return out

    def fingerprint(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "url": self.url,
            "parameters": self.parameters,
            "max_length": self.max_length,
            "label_map": self.label_map,
        }

    def finalize(self, table: pa.Table) -> pa.Table:
        """Label columns in :func:`label_order`, whatever order the chunks had them in."""
        names = table.column_names
        fixed = ("label", "score")
        labels = [n for n in names[1:] if n not in fixed and not n.startswith(".")]
        rest = [n for n in names[1:] if n not in labels and n not in fixed]
        return table.select([names[0], *label_order(labels, self.label_map), *fixed, *rest])

    def _scores(self, items: list[Any]) -> Scores | Result:
        scores: Scores = {}
        for item in items:
            label, score = _prediction(item)
            name = self.label_map.get(label, label)
            if name in RESERVED_COLUMNS or name in self.reserved or name.startswith("."):
                return Result.failed(
                    None, f"label {name!r} clashes with an output column; rename it in label_map"
                )
            scores[name] = score
        return scores


def _per_text(body: Any, n_rows: int) -> list[list[Any]]:
    if isinstance(body, dict) and n_rows == 1:
        return [[body]]
    if not isinstance(body, list) or not body:
        raise ResponseFormatError(f"expected a JSON list of label scores, got {_shape(body)}")
    if all(isinstance(item, list) for item in body):
        per_text = body
    elif all(isinstance(item, dict) for item in body):
        per_text = [body] if n_rows == 1 else [[item] for item in body]
    else:
        raise ResponseFormatError("the answer mixes lists and objects")
    if len(per_text) != n_rows:
        raise ResponseFormatError(f"expected {n_rows} results, the server returned {len(per_text)}")
    if not all(per_text):
        raise ResponseFormatError("the answer has a text without any label")
    return per_text


def _prediction(item: Any) -> tuple[str, float]:
    if not isinstance(item, dict):
        raise ResponseFormatError(f"expected a {{label, score}} object, got {_shape(item)}")
    label, score = item.get("label"), item.get("score")
    if not isinstance(label, str) or isinstance(score, bool) or not isinstance(score, int | float):
        raise ResponseFormatError(
            f"expected a {{label, score}} object, got keys {sorted(item)[:5]}"
        )
    return label, float(score)


def _shape(body: Any) -> str:
    if isinstance(body, list):
        return "an empty list"
    return f"a JSON {type(body).__name__}"
