"""Small tables shipped with endpointr, for a first run, examples and tests.

- :func:`reviews`: 300 short reviews written for endpointr, 50 in each of six categories:
  ``id`` (1 to 300), ``category`` (``electronics``, ``kitchen``, ``clothing``, ``books``,
  ``groceries``, ``travel``), ``sentiment`` (``positive``, ``negative``, ``neutral``) and
  ``text`` (one sentence, 5 to 13 words), in shuffled order.
- :func:`batch_concurrent_benchmark`: EndpointR's own measurement of ``batch_size`` x
  ``concurrent_requests`` against a Hugging Face Inference Endpoint (about 2,000 rows per
  cell), the 20 rows as its "Improving performance" vignette prints them (two decimals):
  ``batch_size``, ``concurrent_requests``, ``chunk_index``, ``elapsed_time`` (seconds),
  ``success``, ``rows_processed``, ``throughput`` (rows per second).

Each function returns a pandas DataFrame; :func:`path` gives the CSV file it reads.

>>> reviews().groupby("category").size().tolist()  # doctest: +SKIP
[50, 50, 50, 50, 50, 50]
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NAMES", "batch_concurrent_benchmark", "path", "reviews"]

NAMES = ("reviews", "batch_concurrent_benchmark")


def path(name: str) -> Path:
    """The CSV file of the dataset ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ConfigError(f"no dataset {name!r}; the datasets are {', '.join(NAMES)}")
    return Path(str(resources.files(__name__).joinpath(f"{name}.csv")))


def reviews() -> pd.DataFrame:
    """300 short reviews: ``id``, ``category``, ``sentiment``, ``text``."""
    import pandas as pd

    return pd.read_csv(path("reviews"), dtype={"id": "int64"})


def batch_concurrent_benchmark() -> pd.DataFrame:
    """EndpointR's ``batch_size`` x ``concurrent_requests`` benchmark, 20 rows."""
    import pandas as pd

    return pd.read_csv(path("batch_concurrent_benchmark"), dtype={"success": "bool"})
