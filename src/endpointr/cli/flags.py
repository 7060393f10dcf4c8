"""Command-line flags derived from the registry: the run options and each endpoint's own.

Every flag maps to one keyword of the public functions. A flag left out is not passed at
all, so its default is the endpoint's (``--batch-size`` is 8 for hf, 100 for openai),
never a second table here.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from .. import datasets
from ..engine.calls import DECLARED, endpoint_keywords
from ..engine.options import RUN_OPTION_NAMES, Backoff, RunOptions
from ..errors import ConfigError
from ..providers.base import Endpoint

__all__ = [
    "add_endpoint_flags",
    "add_run_flags",
    "chosen_provider",
    "given_keywords",
    "json_object",
    "run_input",
]

# the run options whose flag is not the plain spelling of the keyword
_NEGATED: dict[str, tuple[str, str]] = {
    "progress": ("--no-progress", "no progress bar"),
    "verify": ("--insecure", "do not verify TLS certificates"),
    "dedupe": (
        "--no-dedupe",
        "send every row, also those whose text an earlier row of the run has",
    ),
}
_UNSET = argparse.SUPPRESS  # a flag left out passes no keyword: the endpoint's default holds
# other spellings of an endpoint keyword's flag
_ALIASES: dict[str, tuple[str, ...]] = {"endpoint_url": ("--endpoint",)}


def int_or_auto(value: str) -> int | str:
    """An integer, or the word ``auto``."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {value!r}") from None


def json_object(value: str) -> dict[str, Any]:
    """A JSON object given as text."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"normalize\": true}'")
    return parsed


def backoff(value: str) -> Backoff:
    """``BASE`` or ``BASE,CAP`` in seconds."""
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BASE[,CAP] in seconds, got {value!r}") from None
    if len(numbers) > 2:
        raise argparse.ArgumentTypeError(f"expected BASE[,CAP] in seconds, got {value!r}")
    return Backoff(*numbers)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int | str": int_or_auto,
    "int": int,
    "int | None": int,
    "float": float,
    "float | None": float,
    "Backoff | None": backoff,
    "Mapping[str, Any] | None": json_object,
    "dict[str, Any] | None": json_object,
    "Mapping[str, str] | None": json_object,
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _defaults_note(endpoints: Mapping[str, type[Endpoint]], name: str) -> str:
    values = {p: getattr(cls.defaults, name) for p, cls in endpoints.items()}
    if len(set(values.values())) == 1:
        return f" (default {next(iter(values.values()))})"
    return " (default " + ", ".join(f"{v} for {p}" for p, v in values.items()) + ")"


def add_run_flags(p: argparse.ArgumentParser, endpoints: Mapping[str, type[Endpoint]]) -> None:
    """The flags of :class:`RunOptions`, for a command running ``endpoints``."""
    p.add_argument("input", nargs="?", help="a .csv, .parquet or .jsonl file")
    p.add_argument(
        "--sample",
        action="store_true",
        help="the bundled sample of 300 short reviews (endpointr.datasets.reviews) instead "
        "of a file; its columns are text and id",
    )
    p.add_argument("--text-col", dest="text_var", help="column holding the text (with a file)")
    p.add_argument("--id-col", dest="id_var", help="column of unique row ids (with a file)")
    p.add_argument(
        "--no-key",
        action="store_const",
        const=None,
        dest="key_name",
        default=_UNSET,
        help="send no API key (self-hosted and local servers)",
    )
    for f in fields(RunOptions):
        text = f.metadata["help"]
        if f.name in DECLARED:
            text += _defaults_note(endpoints, f.name)
        elif f.default is not None and not isinstance(f.default, bool):
            text += f" (default {f.default})"
        if f.name in _NEGATED:
            flag, text = _NEGATED[f.name]
            p.add_argument(flag, action="store_false", dest=f.name, help=text, default=_UNSET)
        elif f.type == "bool":
            p.add_argument(_flag(f.name), action="store_true", help=text, default=_UNSET)
        else:
            kind = _PARSERS.get(str(f.type), str)
            p.add_argument(_flag(f.name), type=kind, help=text, default=_UNSET)


def add_endpoint_flags(p: argparse.ArgumentParser, endpoints: Mapping[str, type[Endpoint]]) -> None:
    """``--provider`` (when there is a choice) and every endpoint's own keywords."""
    if len(endpoints) > 1:
        names = ", ".join(endpoints)
        p.add_argument(
            "--provider",
            choices=list(endpoints),
            default=None,
            help=f"default: the first of {names} that takes the flags given",
        )
    else:
        p.set_defaults(provider=next(iter(endpoints)))
    seen: dict[str, list[str]] = {}
    for provider, cls in endpoints.items():
        for name in endpoint_keywords(cls):
            seen.setdefault(name, []).append(provider)
    for name, providers in seen.items():
        cls = endpoints[providers[0]]
        param = endpoint_keywords(cls)[name]
        text = cls.option_help.get(name, name.replace("_", " "))
        required = [p for p in providers if _required(endpoints[p], name)]
        if required:
            text += f" (required for {', '.join(required)})"
        elif param.default is not None:
            text += f" (default {param.default})"
        if len(providers) < len(endpoints):
            text += f"; {', '.join(providers)} only"
        kind = _PARSERS.get(str(param.annotation), str)
        flags = (_flag(name), *_ALIASES.get(name, ()))
        p.add_argument(*flags, type=kind, default=_UNSET, help=text)
    p.set_defaults(endpoint_flags=tuple(seen))


def chosen_provider(args: argparse.Namespace) -> str:
    """``--provider``, or else the first endpoint of the command that takes every endpoint
    flag given and needs none that is missing (``embed``: hf with ``--endpoint-url``, the
    local model without)."""
    if args.provider:
        return str(args.provider)
    given = {name for name in args.endpoint_flags if hasattr(args, name)}
    for provider, cls in args.endpoints.items():
        own = endpoint_keywords(cls)
        if given <= set(own) and all(n in given for n in own if _required(cls, n)):
            return str(provider)
    return str(next(iter(args.endpoints)))  # whose refusal names the flag at fault


def given_keywords(args: argparse.Namespace, cls: type[Endpoint]) -> dict[str, Any]:
    """The keywords the command line gave for ``cls``: run options and its own.

    Raises :class:`ConfigError` for a flag the chosen endpoint does not take, or a
    required one left out.
    """
    own = endpoint_keywords(cls)
    given = {k: v for k, v in vars(args).items() if k in RUN_OPTION_NAMES}
    for name in (k for k in args.endpoint_flags if hasattr(args, k)):
        if name not in own:
            raise ConfigError(f"{_flag(name)} is not an option of --provider {args.provider}")
        given[name] = getattr(args, name)
    for name in own:
        if _required(cls, name) and name not in given:
            raise ConfigError(f"--provider {args.provider} needs {_flag(name)}")
    return given


def _required(cls: type[Endpoint], name: str) -> bool:
    return endpoint_keywords(cls)[name].default is inspect.Parameter.empty


def run_input(args: argparse.Namespace) -> tuple[Path, str, str]:
    """The file to run and its text and id columns: the one named, or the sample."""
    if args.sample:
        if args.input is not None:
            raise ConfigError("give an input file or --sample, not both")
        return datasets.path("reviews"), args.text_var or "text", args.id_var or "id"
    if args.input is None:
        raise ConfigError("give an input file (with --text-col and --id-col) or --sample")
    if args.text_var is None or args.id_var is None:
        raise ConfigError("with an input file, give --text-col and --id-col")
    return Path(args.input), args.text_var, args.id_var
