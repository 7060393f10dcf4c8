"""The two pictures of a bench grid, with matplotlib (``pip install "endpointr[plot]"``).

``throughput.png``: rows/s by ``batch_size``, one line per ``concurrent_requests``.
``heatmap.png``: one tile per cell, its rows/s printed in it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: a notebook's own backend is left alone

__all__ = ["write_plots"]


def write_plots(table: pd.DataFrame, out: Path) -> list[Path]:
    """``throughput.png`` and ``heatmap.png`` of ``table`` (from :func:`endpointr.bench`)."""
    grid = table.pivot(index="batch_size", columns="concurrent_requests", values="rows_per_s")
    grid = grid[list(dict.fromkeys(table["concurrent_requests"]))].sort_index()
    title = f"endpointr bench: {table.attrs.get('endpoint', '')}".rstrip(": ")
    return [_lines(grid, out / "throughput.png", title), _tiles(grid, out / "heatmap.png", title)]


def _lines(grid: pd.DataFrame, path: Path, title: str) -> Path:
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
    for conc in grid.columns:
        ax.plot(grid.index, grid[conc], marker="o", label=f"{conc}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(grid.index), [str(b) for b in grid.index])
    ax.set_xlabel("batch_size (rows per request)")
    ax.set_ylabel("throughput (rows per second)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(title="concurrent_requests", fontsize=8, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _tiles(grid: pd.DataFrame, path: Path, title: str) -> Path:
    values = grid.to_numpy(dtype=float)
    fig = Figure(figsize=(1.2 * len(grid.columns) + 2.5, 0.6 * len(grid) + 2), dpi=120)
    ax = fig.subplots()
    image = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [str(b) for b in grid.index])
    ax.set_xlabel("concurrent_requests")
    ax.set_ylabel("batch_size")
    ax.set_title(title, fontsize=10)
    middle = np.nanmin(values) + (np.nanmax(values) - np.nanmin(values)) / 2
    for (row, col), value in np.ndenumerate(values):
        colour = "black" if value > middle else "white"
        ax.text(col, row, f"{value:,.0f}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, label="rows per second")
    fig.tight_layout()
    fig.savefig(path)
    return path
