"""``python -m endpointr.testing``: run the fake server in the foreground."""

from __future__ import annotations

from .server import main

raise SystemExit(main())
