"""The parser and the dispatch of the ``endpointr`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import EndpointrError
from . import commands

__all__ = ["build_parser", "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, generated from the registry of endpoints."""
    parser = argparse.ArgumentParser(
        prog="endpointr",
        description="Push the rows of a table through ML inference endpoints, "
        "as fast as they allow, without losing a row.",
    )
    parser.add_argument("--version", action="version", version=f"endpointr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``endpointr`` command; returns the exit status.

    Bad input is one line on stderr and exit status 2; Ctrl-C is 130.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    args.argv, args.rerun, args.parser = argv, main, parser
    try:
        return int(args.handler(args))
    except EndpointrError as exc:
        print(f"endpointr: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
