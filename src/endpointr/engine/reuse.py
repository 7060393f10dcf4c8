"""Work not done twice, row by row: for a file as it streams, and the response cache.

:class:`Reuse` stands between the rows and the requests. With ``dedupe``, a row whose text
is already on its way waits for that answer, and one whose text was answered earlier in
the run gets a copy of it: the same value, error or not, under the row's own id. An
answer is kept for later rows of its text while it is among the :data:`KEEP` most recent
distinct texts; rows waiting on a text in flight hold only their ids. (An input in memory
is deduplicated up front instead, by :mod:`.copies`.)

With a :class:`~endpointr.io.cache.ResponseCache`, a text answered well by an earlier run
of the same settings is answered from the cache, and good answers are kept there.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..io.cache import ResponseCache
from ..providers.base import Endpoint
from ..types import Result
from .stats import RunStats

__all__ = ["KEEP", "WAIT", "Reuse"]

KEEP = 4096
WAIT = object()  # the row waits for a copy of an answer on its way


class Reuse:
    """Which rows need a request, and the answers of those that do not.
    ``dedupe=False`` with a cache still answers from the cache."""

    def __init__(
        self,
        endpoint: Endpoint,
        stats: RunStats,
        *,
        dedupe: bool = True,
        cache: ResponseCache | None = None,
        keep: int = KEEP,
    ) -> None:
        self._endpoint, self._dedupe, self._cache, self._keep = endpoint, dedupe, cache, keep
        self._sent: dict[Any, str] = {}  # id of a row on its way -> its text
        self._waiting: dict[str, list[Any]] = {}  # text on its way -> ids waiting for it
        self._answered: OrderedDict[str, Result] = OrderedDict()
        self.stats = stats  # the run's: copies, cache hits and misses counted as they come
        if cache is not None:
            stats.cache_hits, stats.cache_misses = stats.cache_hits or 0, stats.cache_misses or 0

    def take(self, row_id: Any, text: str) -> Result | object | None:
        """``None``: send the row. :data:`WAIT`: its text is on its way, it gets a copy of
        that answer from :meth:`settle`. A :class:`Result`: its answer, now."""
        if self._dedupe:
            known = self._answered.get(text)
            if known is not None:
                self._answered.move_to_end(text)
                self.stats.copies += 1
                return _copy(known, row_id)
            waiting = self._waiting.get(text)
            if waiting is not None:
                waiting.append(row_id)
                return WAIT
            self._waiting[text] = []
        cached = self._from_cache(row_id, text)
        if cached is not None:
            self._keep_answer(text, cached)
            return cached
        if self._cache is not None or self._dedupe:
            self._sent[row_id] = text
        return None

    def settle(self, results: list[Result]) -> list[Result]:
        """``results`` of sent rows, with the copies for the rows that waited on them."""
        if not self._sent:
            return results
        copies: list[Result] = []
        stored: list[tuple[bytes, bytes, int | None]] = []
        for result in results:
            text = self._sent.pop(result.id, None)
            if text is None:
                continue
            if self._cache is not None and not result.error:
                value = self._endpoint.to_cache(result.value)
                stored.append((self._cache.key(text), value, result.status))
            if self._dedupe:
                waiting = self._waiting.get(text, ())
                copies.extend(_copy(result, row_id) for row_id in waiting)
                self._keep_answer(text, result)
        if stored and self._cache is not None:
            self._cache.put_many(stored)
            self._cache.flush()
        self.stats.copies += len(copies)
        return results + copies if copies else results

    def _keep_answer(self, text: str, result: Result) -> None:
        """Keep ``result`` for later rows of ``text``, among the most recent answers."""
        if not self._dedupe:
            return
        self._waiting.pop(text, None)
        self._answered[text] = result
        if len(self._answered) > self._keep:
            self._answered.popitem(last=False)

    def _from_cache(self, row_id: Any, text: str) -> Result | None:
        if self._cache is None:
            return None
        found = self._cache.get(self._cache.key(text))
        if found is None:
            self.stats.cache_misses = (self.stats.cache_misses or 0) + 1
            return None
        self.stats.cache_hits = (self.stats.cache_hits or 0) + 1
        data, status = found
        return Result(id=row_id, value=self._endpoint.from_cache(data), status=status)


def _copy(result: Result, row_id: Any) -> Result:
    """``result`` for the row ``row_id`` (a constructor call: a third of ``replace``'s cost)."""
    return Result(
        row_id,
        result.value,
        result.error,
        result.error_msg,
        result.status,
        result.attempts,
        result.cause,
    )
