"""Token counts before a request is sent, for tokens-per-minute budgets.

With ``tiktoken`` installed (``pip install "endpointr[tokens]"``) and its encoding at
hand, an OpenAI model's texts are counted with the model's own encoding. Otherwise a
text counts one token per four characters (OpenAI's rule of thumb for English), at
least one. Either way the estimate is corrected by the usage the server reports: the
ratio of reported to estimated input tokens, smoothed over the answers, scales later
estimates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from ..providers.base import estimate_tokens
from ..types import Row

__all__ = ["TokenCostFn", "TokenCounter", "estimate_tokens"]

# (rows, count of one text) -> the input tokens of a request
TokenCostFn = Callable[[Sequence[Row], Callable[[str], int]], int]
_SMOOTHING = 0.2
_RATIO_BOUNDS = (0.1, 10.0)


@functools.cache
def _encoder(model: str | None) -> Callable[[str], Any] | None:
    """The tiktoken encoder of ``model`` (``o200k_base`` for an unknown one), or ``None``
    when tiktoken or its encoding file is not available."""
    if model is None:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        try:
            encoding = tiktoken.encoding_for_model(model)
        except KeyError:
            encoding = tiktoken.get_encoding("o200k_base")
    except Exception:  # no encoding file and no network to fetch it: estimate instead
        return None
    return functools.partial(encoding.encode, disallowed_special=())


class TokenCounter:
    """Counts texts in tokens and learns how far the count is from the server's.

    >>> counter = TokenCounter()
    >>> counter.count("twelve chars"), counter.corrected(100)
    (3, 100)
    >>> counter.observe(estimated=100, reported=150)
    >>> counter.corrected(100)
    110
    """

    def __init__(self, model: str | None = None) -> None:
        self._encode = _encoder(model)
        self._ratio = 1.0
        self.exact = self._encode is not None

    def count(self, text: str) -> int:
        """The tokens of ``text``."""
        if self._encode is None:
            return estimate_tokens(text)
        return max(1, len(self._encode(text)))

    def corrected(self, estimated: int) -> int:
        """``estimated`` scaled by what the server's usage reports taught so far."""
        return max(1, round(estimated * self._ratio))

    def observe(self, *, estimated: int, reported: int) -> None:
        """Learn from an answer whose usage reports ``reported`` input tokens for a
        request estimated at ``estimated``."""
        if estimated <= 0 or reported <= 0:
            return
        low, high = _RATIO_BOUNDS
        ratio = min(high, max(low, reported / estimated))
        self._ratio += _SMOOTHING * (ratio - self._ratio)
