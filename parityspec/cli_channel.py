"""The child's side of `cli_supervisor`: it tells the watching parent which step is running
and which exit code the command chose, and keeps stdout from failing the run when its reader
goes away."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

STATUS_FD_ENV = "PARITYSPEC_STATUS_FD"


class _Channel:
    """Lines to the parent: `start STEP`, `done STEP`, `deadline SECONDS`, `exit CODE`."""

    fd: int | None = None


def send(kind: str, text: str = "") -> None:
    if _Channel.fd is None:
        return
    try:
        os.write(_Channel.fd, f"{kind} {' '.join(text.split())}\n".encode())
    except OSError:
        _Channel.fd = None  # the parent is gone; the run goes on


def run_child(command: Callable[[], object]) -> None:
    """Run the CLI, telling the parent (if any) the exit code it chose."""
    fd = os.environ.pop(STATUS_FD_ENV, None)  # popped: a `parityspec` that user code starts
    if fd is not None and fd.isdigit():  # is not this child
        _Channel.fd = int(fd)
        os.set_inheritable(_Channel.fd, False)
    sys.stdout = _BrokenPipeTolerant(sys.stdout)
    from parityspec.run.interrupts import stop_signals_raise

    code = 0
    try:
        with stop_signals_raise():  # a stop before a step runs is exit 130/143 too
            command()
    except SystemExit as finished:
        code = _code_of(finished)
        if isinstance(finished.code, str):
            print(finished.code, file=sys.stderr)
    send("exit", str(code))
    _exit_now(code)


def _exit_now(code: int) -> None:
    """Everything is written: skip the interpreter's teardown, which frees every module that
    scikit-learn, skops or torch imported one by one (0.3 s of a 1.6 s warm churn run here)."""
    import contextlib
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed: nothing more can reach it
            stream.flush()
    os._exit(code)


def _code_of(finished: SystemExit) -> int:
    if finished.code is None:
        return 0
    if isinstance(finished.code, int):
        return finished.code
    return 1  # sys.exit("message") prints the message and exits 1


class _BrokenPipeTolerant:
    """stdout that survives its reader going away (`parityspec run ... | head -1`): the run
    still completes, writes its reports and exits with its verdict's code."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        # Later writes, and the interpreter's final flush, go nowhere instead of failing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
