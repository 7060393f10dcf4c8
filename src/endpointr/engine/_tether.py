"""The child side of a server endpointr starts (see ``serving.py``): run a module as
``__main__`` in this process, and leave the moment the parent is gone.

Run as a script, not imported, so that it starts without loading endpointr::

    python _tether.py PARENT_PID MODULE [ARG ...]

Standard input is a pipe whose write end only the parent holds. A read on it returns
nothing once that end is closed, which the kernel does when the parent exits in any way,
``SIGKILL`` included; then this process exits at once. A second thread watches the parent's
pid as well, for a parent whose pipe end was inherited by a process it forked. Ctrl-C in
the terminal is the parent's to handle: this process ignores SIGINT and stops on SIGTERM.
"""

import os
import runpy
import signal
import sys
import threading

_POLL = 0.25


def _leave() -> None:
    os._exit(0)


def _on_pipe_closed() -> None:
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    _leave()


def _on_parent_gone(parent: int) -> None:
    stop = threading.Event()
    while not stop.wait(_POLL):
        if os.getppid() != parent:
            _leave()


def main() -> None:
    parent, module, *args = sys.argv[1:]
    for target, extra in ((_on_pipe_closed, ()), (_on_parent_gone, (int(parent),))):
        threading.Thread(target=target, args=extra, daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
