"""``endpointr nearest OUTPUT_DIR QUERY``: the rows of an embed run nearest a query.

The query is embedded with the endpoint and settings of the command recorded in the
run's manifest (the local model starts again for it), the vectors are read from the
run's chunks, and the rows come out by cosine similarity, with their text from the run's
input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.calls import run_one
from ..engine.sync import run_sync
from ..errors import CheckpointError
from ..io.chunks import chunk_paths, read_chunks
from ..io.manifest import MANIFEST, latest_per_id
from ..io.readers import open_source
from .flags import chosen_provider, given_keywords, run_input

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``endpointr nearest``."""
    p.add_argument("output_dir", help="an output directory made by endpointr embed")
    p.add_argument("query", help="the text to find the nearest rows to")
    p.add_argument("--k", type=int, default=5, help="how many rows to print (default 5)")


def run(args: argparse.Namespace) -> int:
    """Print the ``--k`` rows of ``OUTPUT_DIR`` nearest ``QUERY``, best first."""
    made = _embed_command(Path(args.output_dir), args.parser)
    made.provider = chosen_provider(made)
    cls = made.endpoints[made.provider]
    path, text_var, id_var = run_input(made)
    ids, vectors = _vectors(Path(args.output_dir), id_var)
    query = np.asarray(run_sync(run_one(cls, args.query, given_keywords(made, cls))))
    scores = vectors @ (query / np.linalg.norm(query))
    best = np.argsort(-scores)[: max(args.k, 1)]
    chosen = {ids[i]: float(scores[i]) for i in best}
    source = open_source(path, text_var=text_var, id_var=id_var)
    texts = {i: t for i, t in source.pairs() if i in chosen}
    print(f"nearest to {args.query!r} among {len(ids):,} rows ({cls.name}):")
    for row_id, score in chosen.items():
        print(f"  {score:.3f}  {id_var}={row_id}  {texts.get(row_id, '')}")
    return 0


def _embed_command(output_dir: Path, parser: argparse.ArgumentParser) -> argparse.Namespace:
    path = output_dir / MANIFEST
    try:
        command = orjson.loads(path.read_bytes()).get("command")
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not command or command[0] != "embed":
        raise CheckpointError(f"{output_dir} was not made by the endpointr embed command")
    return parser.parse_args(command)


def _vectors(output_dir: Path, id_var: str) -> tuple[list[Any], np.ndarray]:
    """The ids and unit-length vectors of the rows that succeeded."""
    tables = read_chunks(chunk_paths(output_dir), columns=[id_var, "embedding", ".error"])
    if not tables:
        raise CheckpointError(f"{output_dir} holds no chunk files yet")
    table = latest_per_id(pa.concat_tables(tables, promote_options="permissive"), id_var)
    table = table.filter(pc.invert(table.column(".error")))
    if not table.num_rows:
        raise CheckpointError(f"{output_dir} holds no vectors: every row failed")
    column = table.column("embedding").combine_chunks()
    matrix = np.asarray(column.flatten(), dtype=np.float32).reshape(table.num_rows, -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return table.column(id_var).to_pylist(), matrix / np.where(norms == 0, 1, norms)
