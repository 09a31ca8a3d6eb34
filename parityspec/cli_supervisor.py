"""The `parityspec` command runs in a child process that a small parent watches.

User code (a builder, a model factory, a converter) runs inside the run's process, and can
end it in ways no `except` sees: `os._exit(0)`, a signal, a crash in native code. An exit
status alone would then pass for a verdict: `os._exit(0)` would read as "every check
passed". So the parent starts the real command as a child and learns, over a pipe, which
step is running and which exit code the child chose; a child that ends any other way is an
error (exit 3) naming the step it was in. The parent also forwards SIGINT, SIGTERM and
SIGHUP to the child once each (a third stop signal kills it), and kills a child that is
still running `TIMEOUT_GRACE_S` after its `--timeout` expired (native code that never
returns to Python cannot be interrupted otherwise).

The parent imports only the standard library and `cli_channel`, the child's side of the
pipe: its cost is one interpreter start.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from types import FrameType

from parityspec.cli_channel import STATUS_FD_ENV, run_child

TIMEOUT_GRACE_S = 10.0
STEP_ERROR = 3
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILL_AFTER_SIGNALS = 3


def main() -> None:
    """The console script. Only the child imports the command line and what it needs."""
    if STATUS_FD_ENV not in os.environ:
        sys.exit(supervise(sys.argv[1:]))
    from parityspec.cli import main as command

    run_child(command)


def supervise(argv: list[str]) -> int:
    """Run `parityspec ARGV` in a watched child; returns the exit code to use."""
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, **{STATUS_FD_ENV: str(write_fd)})
    child = subprocess.Popen(
        [sys.executable, "-m", "parityspec", *argv],
        env=env,
        pass_fds=(write_fd,),
        process_group=0,  # a terminal's Ctrl-C reaches the parent only, which forwards it once
    )
    os.close(write_fd)
    watch = _Watch(child)
    previous = {s: signal.signal(s, watch.forward) for s in FORWARDED}
    try:
        watch.follow(read_fd)
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(read_fd)
    return watch.verdict(returncode)


class _Watch:
    def __init__(self, child: subprocess.Popen[bytes]):
        self.child = child
        self.step: str | None = None
        self.finished_step: str | None = None
        self.exit_code: int | None = None
        self.kill_at: float | None = None
        self.killed_for: str | None = None
        self.signals: list[int] = []
        self._buffer = b""

    def forward(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)
        if len(self.signals) >= KILL_AFTER_SIGNALS:
            self.killed_for = "it did not stop after repeated stop signals"
            self.child.kill()
        else:
            self.child.send_signal(signum)

    def follow(self, read_fd: int) -> None:
        while True:
            wait = None if self.kill_at is None else max(0.0, self.kill_at - time.monotonic())
            try:
                ready, _, _ = select.select([read_fd], [], [], wait)
            except InterruptedError:
                continue
            if not ready:
                self.killed_for = (
                    f"it was still running {TIMEOUT_GRACE_S:g}s after --timeout expired"
                )
                self.child.kill()
                return
            chunk = os.read(read_fd, 65536)
            if not chunk:
                return  # the child closed its end: it is ending
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                self._take(line.decode(errors="replace"))

    def _take(self, line: str) -> None:
        kind, _, text = line.partition(" ")
        if kind == "start":
            self.step = text
        elif kind == "done":
            self.step, self.finished_step = None, text
        elif kind == "deadline":
            self.kill_at = time.monotonic() + float(text) + TIMEOUT_GRACE_S
        elif kind == "exit":
            self.exit_code = int(text)

    def verdict(self, returncode: int) -> int:
        if self.exit_code is not None and self.killed_for is None:
            return self.exit_code
        where = self._where()
        if self.killed_for:
            _say(f"the run was killed {where}: {self.killed_for}; no report was written")
            return 128 + self.signals[-1] if self.signals else STEP_ERROR
        if returncode < 0:
            signum = -returncode
            if signum in self.signals:  # stopped before it could handle the signal itself
                _say(f"interrupted {where} ({_signal_name(signum)})")
                return 128 + signum
            _say(
                f"the run was killed by {_signal_name(signum)} {where}; no verdict, no report "
                "(a crash in native code, or the process was killed)"
            )
            return STEP_ERROR
        _say(
            f"the process ended with exit status {returncode} {where} without a verdict "
            "(user code called os._exit() or similar); counted as a step error"
        )
        return STEP_ERROR

    def _where(self) -> str:
        if self.step:
            return f"during step {self.step}"
        if self.finished_step:
            return f"after step {self.finished_step}"
        return "before any step ran"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _say(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
