"""The ``endpointr`` command. Thin: every flag maps to a keyword of a public function."""

from __future__ import annotations

import sys

from .main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
