"""The ``endpointr`` command. Thin: every flag maps to a keyword of a public function."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .main import build_parser, run

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``endpointr`` command; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
