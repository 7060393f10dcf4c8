"""Telling a refused setting from bad rows.

A server that answers the first requests of a run all with the same error (a 422 for a
``dimensions`` it does not take, a 500 for a ``response_format`` it does not know, a 404
for a wrong route) is refusing the settings, not the rows: splitting every request down
to single rows or spending every row's attempts on it only multiplies the requests.
:class:`Refusals` notices it so the run can stop with the server's message. Requests of
several rows that are being split count only once they are down to single rows, so bad
rows at the start of a table are isolated as usual: it takes several different rows
refused the same way, and no good answer at all, to stop a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ClientError, RequestError, ServerError, ShapeError
from .retry import is_overload

__all__ = ["Refusals", "is_refusal"]

# what a server says when it will not take a setting, as opposed to a fault of its own
_VALIDATION = re.compile(
    r"\b(invalid|validation|must|should|expected|unsupported|not supported|unknown|"
    r"unrecognized|not allowed|out of range|select between)\b",
    re.I,
)


def is_refusal(error: RequestError) -> bool:
    """Whether ``error`` may be the server refusing a setting: any final 4xx, or a 5xx
    whose message reads as a validation error (not a bare "Internal Server Error").

    >>> is_refusal(ServerError("Input should be 'text' or 'json_object'", status=500))
    True
    >>> is_refusal(ServerError("Internal Server Error", status=500))
    False
    """
    if is_overload(error):
        return False
    if isinstance(error, ClientError | ShapeError):
        return True
    return isinstance(error, ServerError) and _VALIDATION.search(error.message) is not None


@dataclass(slots=True)
class Refusals:
    """Counts the requests answered with the same error in a row before the run's first
    good answer. A request counts once, however many attempts it makes.

    >>> refusals = Refusals(threshold=2)
    >>> error = ClientError("dimensions must be <= 384", status=422)
    >>> refusals.refused(error, 1), refusals.refused(error, 1), refusals.refused(error, 2)
    (False, False, True)
    """

    threshold: int = 3
    succeeded: bool = False
    streak: int = 0  # numbers the streaks: it changes when another error starts one
    _last: tuple[int | None, str] | None = None
    _requests: set[int] = field(default_factory=set)

    def success(self) -> None:
        """A good answer: the settings work, errors are the rows' from now on."""
        self.succeeded = True

    def refused(self, error: RequestError, request: int) -> bool:
        """Record that request number ``request`` met ``error``; whether every request so
        far met it (``threshold`` requests in a row, no good answer yet). Overload and
        network errors never count, nor server faults that are not a refusal
        (:func:`is_refusal`)."""
        if self.succeeded or not is_refusal(error):
            return False
        key = (error.status, error.message)
        if key != self._last:
            self._last, self._requests = key, set()
            self.streak += 1
        self._requests.add(request)
        return len(self._requests) >= self.threshold
