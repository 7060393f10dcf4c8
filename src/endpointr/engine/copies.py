"""Identical texts of an input held in memory: sent once, their answers copied by Arrow.

For a frame or a list, every text is at hand before the first request, so each distinct
text is found up front (``pandas.factorize``) and only its first row is sent. The other
rows with that text are not Python objects at all: when the first row's result is
committed, :meth:`Copies.expand` appends their rows to the same chunk with one ``take``
(the result's columns, each row under its own id), so a copy costs what copying its
vector costs. Its rows are committed with the first one's, in the same chunk file, so a
crash never leaves a copy without its original or the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from ..types import Result

__all__ = ["Copies"]


class Copies:
    """The rows of ``texts`` (with ``ids``, the rows still to send) that repeat an
    earlier row's text. :meth:`sent` are the rows to send; :meth:`expand` adds the copies
    to a table of their results."""

    def __init__(self, ids: pa.Array, texts: np.ndarray) -> None:
        import pandas as pd  # only in-memory inputs get here: they are frames already

        try:
            codes, uniques = pd.factorize(texts, use_na_sentinel=True)
        except TypeError:  # a list or dict among them: only the texts are matched, the
            strings = np.array([t if isinstance(t, str) else None for t in texts], object)
            codes, uniques = pd.factorize(strings, use_na_sentinel=True)  # rest go alone
        codes = codes.astype(np.int64, copy=False)
        self._ids, self._texts = ids, texts
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        order = np.argsort(codes, kind="stable")  # each text's rows together, first row first
        sorted_codes = codes[order]
        starts = np.searchsorted(sorted_codes, np.arange(len(uniques)))
        first = order[starts]  # the row that is sent, of each distinct text
        self._send = np.sort(np.concatenate([first, np.flatnonzero(codes < 0)]))
        self._order, self._starts, self._counts = order, starts, counts
        repeated = np.flatnonzero(counts > 1)
        keys = ids.take(pa.array(first[repeated])).to_pylist()
        self._code_of: dict[Any, int] = dict(zip(keys, repeated.tolist(), strict=True))
        self.rows = int(counts[repeated].sum() - len(repeated))  # rows answered by a copy
        self._first = first
        self._codes = codes

    def sent(self) -> Iterator[tuple[Any, Any]]:
        """``(id, text)`` of the first row of each distinct text (and of every row with
        no text), in input order."""
        positions = self._send
        for start in range(0, len(positions), 8192):
            piece = positions[start : start + 8192]
            ids = self._ids.take(pa.array(piece)).to_pylist()
            yield from zip(ids, self._texts[piece].tolist(), strict=True)

    def sent_with(self) -> pa.Array:
        """For each row, the id of the row its text was sent with (its own, if sent)."""
        rows = np.arange(len(self._codes))
        known = self._codes >= 0
        rows[known] = self._first[self._codes[known]]
        return self._ids.take(pa.array(rows))

    def extra(self, results: list[Result]) -> tuple[int, int]:
        """How many rows copy ``results``: all of them, and those of error results."""
        rows = failed = 0
        for result in results:
            code = self._code_of.get(result.id)
            if code is not None:
                n = int(self._counts[code]) - 1
                rows += n
                failed += n if result.error else 0
        return rows, failed

    def expand(self, table: pa.Table) -> pa.Table:
        """``table`` (results of sent rows, the id first) with a row for each copy."""
        rows: list[np.ndarray] = []
        where: list[np.ndarray] = []
        for index, row_id in enumerate(table.column(0).to_pylist()):
            code = self._code_of.get(row_id)
            if code is None:
                continue
            start, count = int(self._starts[code]), int(self._counts[code])
            rows.append(np.full(count - 1, index, dtype=np.int64))
            where.append(self._order[start + 1 : start + count])
        if not rows:
            return table
        copies = table.take(pa.array(np.concatenate(rows)))
        ids = self._ids.take(pa.array(np.concatenate(where)))
        copies = copies.set_column(0, table.schema.field(0), ids)
        return pa.concat_tables([table, copies])
