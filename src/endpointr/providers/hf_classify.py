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
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
import pyarrow as pa

from ..errors import ResponseFormatError
from ..types import HttpRequest, Result, Row
from .base import Endpoint

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
    url: str
    parameters: dict[str, Any] = field(default_factory=dict)
    max_length: int = 512
    label_map: dict[str, str] = field(default_factory=dict)
    tei: bool | None = None
    reserved: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tei is None:
            self.tei = is_tei_predict(self.url)

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
