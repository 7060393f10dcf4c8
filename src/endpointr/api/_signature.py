"""How a public function shows and checks its keywords: :func:`takes`."""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable, Coroutine
from dataclasses import fields
from typing import Any, TypeVar

from ..engine.calls import MANY, SHOWN, declared_defaults, endpoint_keywords
from ..engine.options import RunOptions
from ..errors import ConfigError
from ..providers.base import Endpoint

__all__ = ["shown_keywords", "takes", "unknown_keyword"]

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])
# the endpoint keywords whose None stands for the model or URL the endpoint declares
_FILLED = {"model": "model", "endpoint_url": "url"}


def takes(cls: type[Endpoint], keywords: type) -> Callable[[F], F]:
    """Give the decorated public function the keywords of the TypedDict ``keywords``.

    Its signature (``help()``, ``inspect.signature``) lists each of them with the
    default ``cls`` gives it; a keyword it does not take is a :class:`ConfigError` that
    names the closest one it does.
    """

    def decorate(afunc: F) -> F:
        explicit = [
            p for p in inspect.signature(afunc).parameters.values() if p.kind != p.VAR_KEYWORD
        ]
        shown = shown_keywords(cls, keywords)
        allowed = {p.name for p in explicit} | {p.name for p in shown}

        @functools.wraps(afunc)
        async def checked(*args: Any, **kw: Any) -> Any:
            for name in kw:
                if name not in allowed:
                    raise unknown_keyword(afunc.__name__.removeprefix("a"), name, allowed)
            return await afunc(*args, **kw)

        whole = inspect.signature(afunc).replace(parameters=[*explicit, *shown])
        setattr(checked, "__signature__", whole)  # noqa: B010 (mypy knows no __signature__)
        return checked  # type: ignore[return-value]

    return decorate


def shown_keywords(cls: type[Endpoint], keywords: type) -> list[inspect.Parameter]:
    """The keyword-only parameters of the TypedDict ``keywords``, in the order and with
    the defaults ``cls`` gives them: what a public function's signature lists."""
    hints = typing.get_type_hints(keywords)
    order = [*endpoint_keywords(cls), *(f.name for f in fields(RunOptions)), *SHOWN]
    table = "output_dir" in hints
    return [
        inspect.Parameter(
            n,
            inspect.Parameter.KEYWORD_ONLY,
            default=_shown_default(cls, n, table),
            annotation=hints[n],
        )
        for n in sorted(hints, key=order.index)
    ]


def _shown_default(cls: type[Endpoint], name: str, table: bool) -> Any:
    own = endpoint_keywords(cls)
    if name in own:
        declared = getattr(cls.defaults, _FILLED.get(name, ""), None)
        if own[name].default is None and declared is not None:
            return declared
        return own[name].default
    if name in SHOWN:
        return False
    run = {f.name: f.default for f in fields(RunOptions)}
    return {**run, **declared_defaults(cls), **({} if table else MANY)}[name]


def unknown_keyword(function: str, name: str, allowed: set[str]) -> ConfigError:
    """The error for a keyword ``function`` does not take, naming the closest it does."""
    close = difflib.get_close_matches(name, sorted(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{function}() takes no keyword {name!r}{hint}")
