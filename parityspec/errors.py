"""Every error the tool reports to a user, and the exit code each one maps to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0
    CHECK_FAILED = 1
    INVALID_INPUT = 2
    STEP_ERROR = 3


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem: `file:line:col: key: message (hint: ...)`."""

    file: str
    line: int | None = None
    col: int | None = None
    key: str | None = None
    message: str = ""
    hint: str | None = None

    def format(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: "
        if self.key:
            text += f"{self.key}: "
        text += self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return " ".join(text.split())  # one line, whatever the message held

    def as_dict(self) -> dict[str, str | int]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class ParitySpecError(Exception):
    """Base of every error meant for the user; never shown as a traceback."""

    exit_code = ExitCode.INVALID_INPUT

    def lines(self) -> list[str]:
        return [str(self)]


class SpecError(ParitySpecError):
    """A spec that cannot be loaded or is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=_problem_order)
        super().__init__("\n".join(p.format() for p in self.problems))

    def lines(self) -> list[str]:
        return [p.format() for p in self.problems]


class InputError(ParitySpecError):
    """Bad data, a bad model file or a bad option found while running: exit 2."""

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None):
        self.file, self.message, self.hint = file, message, hint
        prefix = f"{file}: " if file else ""
        suffix = f" (hint: {hint})" if hint else ""
        super().__init__(" ".join(f"{prefix}{message}{suffix}".split()))


class UntrustedModelError(InputError):
    """A model format that can run code on load, not marked trusted."""


class StepError(ParitySpecError):
    """A step that failed while running for a reason that is not the user's input: exit 3."""

    exit_code = ExitCode.STEP_ERROR


def first_line(error: BaseException) -> str:
    """An exception as one line: libraries' messages can span many."""
    return (str(error).strip() or type(error).__name__).splitlines()[0]


def _problem_order(p: Problem) -> tuple[str, int, int, str, str]:
    return (p.file, p.line or 0, p.col or 0, p.key or "", p.message)
