"""Test helpers: a deterministic fake of HF/TEI, OpenAI and Anthropic endpoints, their
batch APIs included.

>>> from endpointr.testing import FakeServer, Fault
>>> with FakeServer(latency=0.01) as server:
...     server.script(Fault.status(503), Fault.ok())
...     url = server.url
"""

from __future__ import annotations

from .answers import count_tokens, fake_embedding, fake_scores, ranked_labels
from .faults import FAULT_KINDS, SHORTCUT_KINDS, Fault
from .schema import fill_schema
from .server import FakeServer, main, serve_forever
from .state import BatchStats, RecordedRequest, ServerStats, Settings

__all__ = [
    "FAULT_KINDS",
    "SHORTCUT_KINDS",
    "BatchStats",
    "FakeServer",
    "Fault",
    "RecordedRequest",
    "ServerStats",
    "Settings",
    "count_tokens",
    "fake_embedding",
    "fake_scores",
    "fill_schema",
    "main",
    "ranked_labels",
    "serve_forever",
]
