"""Vectors held in memory as one float32 block in the rows' final order.

A run without an output directory keeps every result until the end, then gives them back
in input order. Kept as chunk tables and reordered at the end, the vectors would exist
twice at the peak. :class:`VectorBlock` instead places each committed chunk's vectors
straight at their rows' input positions, so the chunk tables keep only the small
columns and the final table takes its vector column from the block without a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["VectorBlock"]

COLUMN = "embedding"


class VectorBlock:
    """The ``embedding`` vectors of a run, at the positions of ``ids`` (the input order).

    :meth:`take` moves a chunk's vectors into the block and appends the chunk without
    them to ``tables``; :meth:`attach` puts the column back on the whole reordered
    table. When a chunk's vectors cannot go into the block (another width than the
    block's: a server that changed its answers; or not fixed-size float32), the block
    gives every vector back to the chunks in ``tables`` and steps aside
    (:attr:`active` turns false): from then on the chunks are kept whole.
    """

    def __init__(self, ids: pa.Array) -> None:
        import pandas as pd

        self._index = pd.Index(ids.to_numpy(zero_copy_only=False))
        self._rows = len(ids)
        self._block: np.ndarray | None = None
        self._valid = np.zeros(self._rows, dtype=bool)
        self._positions_of: list[np.ndarray] = []
        self._at: int | None = None  # where the column stood in the chunks
        self._type: pa.DataType | None = None
        self.active = True

    def take(self, table: pa.Table, id_var: str, tables: list[pa.Table]) -> None:
        """Append ``table`` to ``tables``, without its vectors if they went into the
        block."""
        if not self.active or COLUMN not in table.column_names:
            tables.append(table)
            return
        at = table.schema.get_field_index(COLUMN)
        column = table.column(at)
        empty = column.null_count == len(column)  # error rows only: nothing to place
        fits = pa.types.is_fixed_size_list(column.type) and pa.types.is_float32(
            column.type.value_type
        )
        if fits and self._block is not None:
            fits = self._block.shape[1] == column.type.list_size
        if not (fits or empty):
            self._give_back(tables)
            tables.append(table)
            return
        positions = self._positions(table.column(id_var))
        if not empty:
            self._place(column, positions)
        elif self._type is None:
            self._type = column.type
        self._at = at
        self._positions_of.append(positions)
        tables.append(table.remove_column(at))

    @property
    def holds(self) -> bool:
        """Whether the chunks' vectors are in the block (the caller must :meth:`attach`)."""
        return self.active and self._at is not None

    def _positions(self, ids: Any) -> np.ndarray:
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        values = ids.to_numpy(zero_copy_only=False)
        positions: np.ndarray = self._index.get_indexer(values)
        if (positions < 0).any():
            raise KeyError("a result's id is not among the run's ids")
        return positions

    def _place(self, column: pa.ChunkedArray, positions: np.ndarray) -> None:
        size = column.type.list_size
        if self._block is None:
            # np.empty: pages are only touched as rows arrive
            self._block = np.empty((self._rows, size), dtype=np.float32)
            self._type = column.type
        start = 0
        for chunk in column.chunks:
            values = chunk.values.slice(chunk.offset * size, len(chunk) * size)
            block = values.to_numpy(zero_copy_only=False).reshape(len(chunk), size)
            valid = chunk.is_valid().to_numpy(zero_copy_only=False)
            where = positions[start : start + len(chunk)]
            if chunk.null_count:
                self._block[where[valid]] = block[valid]
            else:
                self._block[where] = block
            self._valid[where] = valid
            start += len(chunk)

    def _column(self, positions: np.ndarray, *, identity: bool = False) -> pa.Array:
        if self._block is None:
            return pa.nulls(len(positions), self._type or pa.list_(pa.float32()))
        size = self._block.shape[1]
        block = self._block if identity else self._block[positions]
        valid = self._valid if identity else self._valid[positions]
        mask = None if valid.all() else pa.array(~valid)
        return pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), size, mask=mask)

    def _give_back(self, tables: list[pa.Table]) -> None:
        """Put the vectors placed so far back into their chunks, and step aside."""
        first = len(tables) - len(self._positions_of)
        for i, positions in enumerate(self._positions_of):
            table = tables[first + i]
            tables[first + i] = table.add_column(self._at or 1, COLUMN, self._column(positions))
        self._positions_of.clear()
        self._block = None
        self.active = False

    def attach(self, table: pa.Table, order: pa.Array) -> pa.Table:
        """``table`` (one row per id of ``order``, in that order) with the vector column
        back where it stood: the block itself when ``order`` is the run's ids."""
        positions = self._positions(order)
        identity = bool(np.array_equal(positions, np.arange(self._rows)))
        column = self._column(positions, identity=identity)
        return table.add_column(self._at if self._at is not None else 1, COLUMN, column)
