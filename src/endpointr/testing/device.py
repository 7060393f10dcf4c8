"""The device behind the fake server: a FIFO queue in front of ``device_slots`` servers.

With ``device_slots`` set, at most that many admitted requests are served (wait out
their latency) at once; the others wait their turn in arrival order, so latency grows
with load and nothing is refused. Used from the server's event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

__all__ = ["Device"]


class Device:
    """Slots handed out first come, first served; the number of slots is read per call,
    so a change of ``device_slots`` applies from the next request on."""

    def __init__(self) -> None:
        self._busy = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def slot(self, slots: int | None) -> AsyncIterator[None]:
        """Hold one of ``slots`` slots for the block, waiting in line for it; ``None``
        holds nothing."""
        if slots is None:
            yield
            return
        await self._acquire(slots)
        try:
            yield
        finally:
            self._release(slots)

    async def _acquire(self, slots: int) -> None:
        if self._busy < slots and not self._waiting:
            self._busy += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release(slots)
            with contextlib.suppress(ValueError):
                self._waiting.remove(turn)
            raise

    def _release(self, slots: int) -> None:
        self._busy -= 1
        while self._waiting and self._busy < slots:
            turn = self._waiting.popleft()
            if not turn.done():
                self._busy += 1
                turn.set_result(None)
