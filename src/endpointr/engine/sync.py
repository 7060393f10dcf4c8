"""The sync bridge: blocking twins of the async functions that also work inside a
running event loop (Jupyter), with Ctrl-C passed to the run rather than lost."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["INTERRUPT_HANDLERS", "run_sync", "synced"]

T = TypeVar("T")
P = ParamSpec("P")

# thread id -> the Ctrl-C handler of the run in that thread, for runs in a worker thread
INTERRUPT_HANDLERS: dict[int, Callable[[], Any]] = {}


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also inside a running loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    async def main() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        if task is not None:
            box["cancel"] = lambda: loop.call_soon_threadsafe(task.cancel)
        return await coro

    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, name="endpointr-run", daemon=True)
    thread.start()
    interrupted = _wait_passing_interrupts(thread, done, box)
    error = box.get("error")
    if interrupted and isinstance(error, asyncio.CancelledError):
        raise KeyboardInterrupt
    if error is not None:
        raise error
    return box["value"]


def _wait_passing_interrupts(
    thread: threading.Thread, done: threading.Event, box: dict[str, Any]
) -> bool:
    """Wait for the run in ``thread``; a Ctrl-C meanwhile (in a notebook it lands here) is
    passed to the run, which stops and commits, rather than leave it sending unseen.
    Returns whether there was one."""
    interrupted = False
    while not done.is_set():
        try:
            done.wait()  # not thread.join(): an interrupted join() marks the thread ended
        except KeyboardInterrupt:
            interrupted = True
            forward = INTERRUPT_HANDLERS.get(thread.ident or 0) or box.get("cancel")
            if forward is not None:
                forward()
    thread.join()
    return interrupted


def synced(afunc: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The blocking twin of the coroutine function ``afunc`` (same arguments and docs).

    It works from plain scripts and inside a running event loop (Jupyter) alike.
    """

    @functools.wraps(afunc)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(afunc(*args, **kwargs))

    wrapper.__name__ = wrapper.__qualname__ = afunc.__name__.removeprefix("a")
    return wrapper
