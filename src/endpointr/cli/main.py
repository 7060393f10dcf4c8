"""The parser and the dispatch of the ``endpointr`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import EndpointrError, RunStoppedError
from . import commands

__all__ = ["build_parser", "main"]

# exit statuses: 0 every row has a value
EXIT_BAD_INPUT = 2  # a bad argument, file or setting: nothing was sent
EXIT_ROW_ERRORS = 3  # the run finished, and some rows ended as error rows
EXIT_STOPPED = 4  # the run could not go on (server down, settings refused): resume later
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

    0: every row has a value; 2: bad input (one line on stderr, nothing sent); 3: the
    run finished with some error rows; 4: the run stopped before the end (the server is
    down or refuses the settings; what finished is committed); 130: Ctrl-C.
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
    except RunStoppedError as exc:
        print(f"endpointr: stopped: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except EndpointrError as exc:
        print(f"endpointr: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
