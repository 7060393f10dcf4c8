"""Deterministic JSON values that fit a JSON Schema, for structured-output answers.

:func:`fill_schema` covers the subset of JSON Schema that structured-output APIs accept:
``type`` (or a list of types), ``properties``/``required``, ``items``, ``enum``,
``const``, ``anyOf``/``oneOf``/``allOf``, ``$ref`` into ``$defs``/``definitions``,
``minimum``/``maximum`` (and exclusive forms), ``minItems``/``maxItems``,
``minLength``/``maxLength`` and a few string ``format`` values. Every property is
present, not only the required ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from .answers import text_seed

__all__ = ["break_schema", "fill_schema"]

_MAX_DEPTH = 12
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/item",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def fill_schema(schema: Mapping[str, Any], text: str) -> Any:
    """A value valid against ``schema``, a deterministic function of ``schema`` and ``text``.

    Strings are made of words of ``text``; numbers, booleans, enum choices and array
    lengths come from a random generator seeded by a hash of ``text``.
    """
    return _Filler(schema, text).value(schema, 0)


def break_schema(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` made invalid against ``schema`` while staying valid JSON.

    Drops the first required property of an object; failing that, gives the first
    property a value of the wrong type; a value with no properties becomes a list.
    """
    node = _resolve(schema, schema)
    if not isinstance(value, dict) or not value:
        return ["not", "an", "object"]
    broken = dict(value)
    required = [name for name in node.get("required", []) if name in broken]
    if required:
        del broken[required[0]]
        return broken
    first = next(iter(broken))
    broken[first] = 12345 if isinstance(broken[first], str) else "not-a-valid-value"
    return broken


def _resolve(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while "$ref" in node and seen < _MAX_DEPTH:
        target: Any = root
        for part in str(node["$ref"]).lstrip("#").strip("/").split("/"):
            if part:
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        node = target if isinstance(target, Mapping) else {}
        seen += 1
    return node


class _Filler:
    def __init__(self, root: Mapping[str, Any], text: str) -> None:
        self.root = root
        self.rng = random.Random(text_seed(text, "schema"))
        self.words = text.split() or ["text"]

    def value(self, node: Mapping[str, Any], depth: int) -> Any:
        node = _resolve(self.root, node)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return self.rng.choice(list(node["enum"]))
        options = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
        if options:
            return self.value(_pick_option(self.root, options), depth + 1)
        return self._typed(node, _pick_type(node), depth)

    def _typed(self, node: Mapping[str, Any], kind: str, depth: int) -> Any:
        if kind == "object":
            return self._object(node, depth)
        if kind == "array":
            return self._array(node, depth)
        if kind == "integer":
            return self._integer(node)
        if kind == "number":
            return self._number(node)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(node)

    def _object(self, node: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = node.get("properties") or {}
        if depth >= _MAX_DEPTH:
            return {}
        return {name: self.value(sub, depth + 1) for name, sub in properties.items()}

    def _array(self, node: Mapping[str, Any], depth: int) -> list[Any]:
        low = int(node.get("minItems", 0))
        high = int(node.get("maxItems", max(low, 2)))
        count = min(max(self.rng.randint(1, 2), low), high)
        if depth >= _MAX_DEPTH:
            count = low
        items = node.get("items")
        item_schema: Mapping[str, Any] = items if isinstance(items, Mapping) else {}
        return [self.value(item_schema, depth + 1) for _ in range(count)]

    def _integer(self, node: Mapping[str, Any]) -> int:
        low, high = _bounds(node, step=1)
        return self.rng.randint(math.ceil(low), max(math.ceil(low), math.floor(high)))

    def _number(self, node: Mapping[str, Any]) -> float:
        low, high = _bounds(node, step=1e-6)
        return min(max(round(self.rng.uniform(low, high), 4), low), high)

    def _string(self, node: Mapping[str, Any]) -> str:
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        start = self.rng.randrange(len(self.words))
        result = " ".join(self.words[start : start + 3])
        result = result.ljust(int(node.get("minLength", 0)), "x")
        if "maxLength" in node:
            result = result[: int(node["maxLength"])]
        return result


def _pick_type(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if k != "null"]
        return str(concrete[0]) if concrete else "null"
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in node else "string"


def _pick_option(root: Mapping[str, Any], options: list[Any]) -> Mapping[str, Any]:
    for option in options:
        if isinstance(option, Mapping) and _resolve(root, option).get("type") != "null":
            return option
    first = options[0]
    return first if isinstance(first, Mapping) else {}


def _bounds(node: Mapping[str, Any], step: float) -> tuple[float, float]:
    low = node.get("minimum")
    if low is None and node.get("exclusiveMinimum") is not None:
        low = node["exclusiveMinimum"] + step
    high = node.get("maximum")
    if high is None and node.get("exclusiveMaximum") is not None:
        high = node["exclusiveMaximum"] - step
    if low is None:
        low = 0 if high is None or high >= 0 else high - 100
    if high is None:
        high = low + 100
    return float(low), float(high)
