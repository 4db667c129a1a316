"""Ctrl-C and SIGTERM as one interrupt, raised only where it is safe.

A training stops on Ctrl-C (``KeyboardInterrupt``) and on SIGTERM (a timeout, CI, a container
stopping), which :func:`terminate_as_interrupt` makes into the same exception. Python raises it
wherever the main thread happens to be; inside a database write (an MLflow call on SQLite) that
leaves the connection's transaction half done, and the next call on it (ending the run KILLED)
fails with "This transaction is closed". :func:`deferred` marks such a call: a signal that arrives
during it acts once the call has returned.

Signals reach only the main thread; elsewhere both blocks do nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

DEFERRED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM received: raised in the main thread, so a run ends as it does on Ctrl-C."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main
    thread. The previous handler is back afterwards, and at once on the first SIGTERM, so that a
    second one acts as it would have."""
    if not _main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    previous = signal.SIG_DFL if previous is None else previous  # None: a handler not installed from Python

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise Terminated(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Run the block to its end: SIGINT or SIGTERM received during it is handled after it, by the
    handler in place before it (which raises, or ends the process). Nested blocks defer to the
    outermost."""
    handlers = {sig: signal.getsignal(sig) for sig in DEFERRED} if _main_thread() else {}
    if not handlers or any(h is None or h is _record for h in handlers.values()):
        yield  # another thread, an enclosing block, or a handler Python cannot put back
        return
    _pending.clear()
    for sig in DEFERRED:
        signal.signal(sig, _record)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for sig in list(_pending):
            _pending.remove(sig)
            os.kill(os.getpid(), sig)  # delivered again, now to the handler from before the block


_pending: list[int] = []  # the signals received within the outermost deferred() block, in order


def _record(signum: int, frame: FrameType | None) -> None:
    if signum not in _pending:
        _pending.append(signum)
