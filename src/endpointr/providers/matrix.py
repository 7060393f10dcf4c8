"""A JSON list of equal-length number lists read straight into one float32 matrix.

An embedding server answers a batch as ``[[0.01, -0.2, ...], ...]``: 12,288 numbers for
32 rows of 384. Read with ``orjson.loads`` that is 12,288 Python floats, then
``numpy.asarray`` walks them again into float32. With `pysimdjson
<https://pysimdjson.tkte.ch>`_ installed (the ``fast`` extra), the numbers go from the
bytes into one flat buffer and no Python float is made: the answer is read in half the
time, and a run at batch 32 costs about a third less client CPU per request
(``benchmarks/client_overhead.py``). Without it, or for any body that is not exactly such a
matrix, :func:`float_matrix` returns ``None`` and the caller reads the body as before, so
errors and odd shapes are reported the same way either way.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

try:
    import simdjson
except ImportError:  # pragma: no cover - exercised by the tests with FAST_JSON off
    simdjson = None  # type: ignore[assignment]

__all__ = ["FAST_JSON", "float_matrix"]

FAST_JSON = simdjson is not None
_local = threading.local()


def float_matrix(data: bytes) -> np.ndarray | None:
    """``data`` as an ``(n, dim)`` float32 matrix when it is a JSON list of ``n`` lists of
    ``dim`` numbers each (``n, dim >= 1``), else ``None``.

    Strict: a nested list, a ragged row, a string, ``null`` or ``true`` among the numbers,
    an empty list or trailing bytes give ``None``, never a matrix.
    """
    if not FAST_JSON or not data:
        return None
    parser = _parser()
    doc: Any = None
    try:
        doc = parser.parse(data)
        if not isinstance(doc, simdjson.Array) or len(doc) == 0:
            return None
        n = len(doc)
        # every row a list, none nested: exactly n + 1 '[' in a body with no strings
        if data.count(b"[") != n + 1:
            return None
        width = -1
        for row in doc:
            if not isinstance(row, simdjson.Array):
                return None
            size = len(row)
            if width < 0:
                width = size
            elif size != width:
                return None
        if width == 0:
            return None
        flat = np.frombuffer(doc.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError):  # not numbers, bad JSON, too big a number
        return None
    finally:
        doc = row = None  # the parser refuses a new document while proxies of this one live
    if flat.size != n * width:
        return None
    return flat.astype(np.float32).reshape(n, width)


def _parser() -> Any:
    """This thread's parser (a parser holds one document at a time)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser
