"""Request latencies in constant memory: a histogram of logarithmic bins.

A run of any length keeps 400 counters; a percentile read from them is within 2.5 % of
the exact one (bins grow by 5 % from 0.1 ms to past an hour).
"""

from __future__ import annotations

import math

__all__ = ["Latencies"]

_LOW = 1e-4  # seconds: the lower edge of the first bin
_GROWTH = 1.05
_BINS = 400
_LOG_GROWTH = math.log(_GROWTH)


class Latencies:
    """Seconds from a request's send to its answer, counted into bins."""

    __slots__ = ("_bins", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self._bins = [0] * _BINS

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        index = int(math.log(seconds / _LOW) / _LOG_GROWTH) if seconds > _LOW else 0
        self._bins[min(index, _BINS - 1)] += 1

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in seconds: the middle of its bin; ``None``
        before the first answer."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * q / 100))
        seen = 0
        for index, n in enumerate(self._bins):
            seen += n
            if seen >= rank:
                return float(_LOW * _GROWTH ** (index + 0.5))
        return None  # not reached: the bins hold every count
