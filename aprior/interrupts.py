"""Termination signals as exceptions, deferred over the few lines that must not be cut.

The CLI turns SIGTERM (what ``timeout`` and batch schedulers send), SIGHUP (a closed
terminal) and SIGINT (Ctrl-C) into exceptions (:class:`Terminated`, a ``KeyboardInterrupt``),
so every ``finally`` and atomic write cleans up. Two things would still leave debris:

- a signal that lands inside a clean-up, or between creating a temporary and recording
  that it exists: :func:`deferred` holds the signal over such lines and raises it as soon
  as they are done;
- a signal whose exception Python cannot raise where it lands (in a weakref callback or a
  ``__del__``, where exceptions are printed and dropped): the hook installed by
  :func:`install` sends the signal again, so it is raised at the next ordinary line.

Library code only uses :func:`deferred`; without :func:`install` it costs nothing and
changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

_depth = 0
_pending: int | None = None


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP, or SIGINT), raised like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum: int, frame: Any) -> None:
    global _pending
    if _depth > 0:
        _pending = signum
        return
    raise Terminated(signum)


def _unraisable(hook):
    def unraisable(args: Any) -> None:
        if isinstance(args.exc_value, Terminated):  # dropped where it landed: deliver it again
            os.kill(os.getpid(), args.exc_value.signum)
            return
        hook(args)

    return unraisable


def install() -> None:
    """Raise :class:`Terminated` on SIGTERM, SIGHUP and SIGINT (main thread only)."""
    for sig in SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(sig, _handler)
    if not getattr(sys.unraisablehook, "_aprior", False):
        hook = _unraisable(sys.unraisablehook)
        hook._aprior = True  # type: ignore[attr-defined]
        sys.unraisablehook = hook


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold termination signals over the block; one that came meanwhile is raised at its end."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise Terminated(signum)
