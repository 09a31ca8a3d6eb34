"""Signals and deadlines, turned into exceptions that user code cannot mistake for its own.

SIGINT and SIGTERM raise `Interrupted`, and an expired `--timeout` raises `TimedOut`, in the
main thread wherever it is. Both derive from BaseException (as KeyboardInterrupt does) so
that an ordinary `except Exception` in a builder does not swallow them, and the executor
tells them apart from a `KeyboardInterrupt` or `SystemExit` that user code raises itself:
those end only the step that raised them.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
DEADLINE_REPEAT_S = 1.0
"""After the deadline the timer fires again every second: user code that swallows one
`TimedOut` with `except BaseException` gets the next."""


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so callers of the library API that handle
    Ctrl-C keep working."""

    def __init__(self, signum: int, step: str | None = None):
        super().__init__(signum)
        self.signum = signum
        self.step = step

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    def describe(self) -> str:
        where = f" during {self.step}" if self.step else ""
        return f"interrupted{where} ({signal.Signals(self.signum).name})"


class TimedOut(BaseException):
    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds

    def __str__(self) -> str:
        return f"timed out: the run exceeded --timeout {self.seconds:g}s while this step ran"


class _Stopping:
    """Once a stop is being handled, further signals are ignored: a second Ctrl-C must not
    break the cleanup of the first."""

    handled = False


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if not _Stopping.handled:
        raise Interrupted(signum)


def stop_handled() -> None:
    _Stopping.handled = True


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` while the block runs (main thread only; elsewhere
    signals cannot be handled and the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_signal) for s in STOP_SIGNALS}
    _Stopping.handled = False
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Deadline:
    """An armed `--timeout`: `expire()` ends the repeats once the executor has stopped."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.fired = False
        """Set once the time is up, even if user code swallowed the exception."""
        self.expired = False

    def _fire(self, _signum: int, _frame: FrameType | None) -> None:
        self.fired = True
        if not self.expired:
            raise TimedOut(self.seconds or 0.0)

    def expire(self) -> None:
        self.expired = True
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[Deadline]:
    """Raise `TimedOut` in the main thread once `seconds` have passed, and every second after
    until the block ends or `expire()` is called."""
    armed = Deadline(seconds)
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield armed
        return
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a deadline must be a positive number of seconds, not {seconds}")
    previous = signal.signal(signal.SIGALRM, armed._fire)
    signal.setitimer(signal.ITIMER_REAL, seconds, DEADLINE_REPEAT_S)
    try:
        yield armed
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
