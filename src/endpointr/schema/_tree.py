"""Walking and rewriting schema trees: strict-mode checks, pydantic models, Anthropic's subset."""

from __future__ import annotations

import copy
import functools
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# fmt: off
_STRICT_UNSUPPORTED = frozenset((
    "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems",
))
_ANTHROPIC_UNSUPPORTED = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties",
)
_MAP_KEYS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_ONE_KEYS = (
    "items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties", "additionalItems",
)
# fmt: on


def _is_model_class(obj: object) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, type) and issubclass(obj, pydantic.BaseModel)


def _kind(obj: object) -> str:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        name = type(obj).__name__
        return f"an instance of {name} (pass the class {name}, not an instance)"
    return type(obj).__name__


class _CycleError(Exception):
    pass


def _model_schema(model: type[BaseModel], *, nested: bool = False) -> dict[str, Any]:
    """The strict JSON schema of a pydantic model; ``$ref``s are inlined unless recursive."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})
    out = copy.deepcopy(raw)
    try:
        _inline(out, defs, ())
    except _CycleError:
        if nested:
            raise ConfigError(
                f"{model.__name__} is recursive and cannot be nested in another schema; "
                "pass it to as_json_schema() directly"
            ) from None
        ref = raw.pop("$ref", None)
        out = {**copy.deepcopy(defs[ref.rsplit("/", 1)[-1]]), **raw} if ref else raw
        out["$defs"] = defs
    _strictify(out)
    return out


def _inline(node: dict[str, Any], defs: dict[str, Any], chain: tuple[str, ...]) -> None:
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in chain or name not in defs:
            raise _CycleError(name)
        del node["$ref"]
        merged = {**copy.deepcopy(defs[name]), **node}
        node.clear()
        node.update(merged)
        chain = (*chain, name)
    for child, _ in _children(node, "$"):
        _inline(child, defs, chain)


def _strictify(node: dict[str, Any]) -> None:
    node.pop("title", None)
    node.pop("default", None)
    if "oneOf" in node and "discriminator" in node:
        node["anyOf"] = node.pop("oneOf")
        del node["discriminator"]
    if _is_object(node):
        node.setdefault("additionalProperties", False)
        if "properties" in node:
            node["required"] = list(node["properties"])
    for child, _ in _children(node, "$"):
        _strictify(child)


def _relax_for_anthropic(node: dict[str, Any]) -> None:
    moved = [f"{k}: {node.pop(k)}" for k in _ANTHROPIC_UNSUPPORTED if k in node]
    min_items = node.get("minItems")
    if isinstance(min_items, int) and min_items > 1:
        moved.append(f"minItems: {node.pop('minItems')}")
    if moved:
        note = "{" + ", ".join(moved) + "}"
        node["description"] = f"{node['description']} {note}" if node.get("description") else note
    for child, _ in _children(node, "$"):
        _relax_for_anthropic(child)


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    if isinstance(kind, list):
        return "object" in kind
    return kind == "object" or (kind is None and "properties" in node)


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENT_RE.match(key) or key.startswith("$") else f"{path}[{key!r}]"


def _json_path(parts: Iterable[str | int]) -> str:
    return functools.reduce(_step, parts, "$")


def _children(node: Mapping[str, Any], path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every direct subschema of ``node`` with its JSON path."""
    for key in _MAP_KEYS:
        sub = node.get(key)
        if isinstance(sub, Mapping):
            yield from (
                (v, _step(_step(path, key), k)) for k, v in sub.items() if isinstance(v, dict)
            )
    for key in _LIST_KEYS:
        sub = node.get(key)
        if isinstance(sub, list):
            yield from ((v, f"{path}.{key}[{i}]") for i, v in enumerate(sub) if isinstance(v, dict))
    for key in _ONE_KEYS:
        if isinstance(node.get(key), dict):
            yield node[key], f"{path}.{key}"


def _collect_issues(node: Mapping[str, Any], path: str, issues: list[str]) -> None:
    issues.extend(
        f"{path}: keyword {kw!r} is not supported in strict mode"
        for kw in sorted(_STRICT_UNSUPPORTED.intersection(node))
    )
    if _is_object(node):
        _check_object(node, path, issues)
    for child, child_path in _children(node, path):
        _collect_issues(child, child_path, issues)


def _check_object(node: Mapping[str, Any], path: str, issues: list[str]) -> None:
    extra = node.get("additionalProperties")
    if extra is not False:
        hint = " (free-form maps such as dict[str, X] are not allowed)" if extra else ""
        issues.append(f"{path}: object must set 'additionalProperties': false in strict mode{hint}")
    props = node.get("properties") or {}
    required = node.get("required") or []
    for name, sub in props.items():
        if name not in required:
            issues.append(
                f"{_step(_step(path, 'properties'), name)}: property {name!r} is not in "
                "'required'; strict mode needs every property required — make it nullable "
                f"instead: {_nullable(sub)}"
            )
    issues.extend(
        f"{path}.required: {name!r} is required but is not a property"
        for name in required
        if name not in props
    )


def _nullable(sub: Any) -> dict[str, Any]:
    kind = sub.get("type") if isinstance(sub, Mapping) else None
    if isinstance(kind, str):
        return {"type": [kind, "null"]}
    if isinstance(kind, list):
        return {"type": [*kind, "null"] if "null" not in kind else kind}
    return {"anyOf": [{"...": "..."}, {"type": "null"}]}
