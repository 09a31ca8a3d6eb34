"""Long messages stay readable: a converter's error can be 170 KB on one line.

A terminal line shows about 300 characters of it, the Markdown and HTML reports about 2,000
with a link to the whole text, written beside them under `artifacts/messages/`; report.json,
the machine record, keeps every character."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

TERMINAL_CHARS = 300
REPORT_CHARS = 2_000
MESSAGE_DIR = "artifacts/messages"


def clip(text: str, limit: int) -> str:
    """`text` when it fits in `limit` characters, else its start and how long it was."""
    if len(text) <= limit:
        return text
    tail = f"… ({len(text):,} characters in all)"
    return text[: max(limit - len(tail), 0)] + tail


def message_file(step_id: str) -> str:
    """`check:onnx-parity` -> `artifacts/messages/check-onnx-parity.txt`. Names hold no `:`
    (the action is one of a fixed few), so the mapping is one to one; `:` in a file name
    would trouble Windows and CI artifact uploads."""
    return f"{MESSAGE_DIR}/{re.sub(r'[^A-Za-z0-9_.-]', '-', step_id)}.txt"


def long_messages(report: dict[str, Any]) -> dict[str, str]:
    """The whole text of every reason too long to show whole, by its file under the report
    folder."""
    return {
        message_file(step_id): entry["reason"]
        for entry, step_id in _reasons(report)
        if _long(entry)
    }


def for_display(report: dict[str, Any]) -> dict[str, Any]:
    """A copy for the templates: each long reason cut to REPORT_CHARS, with `reason_file`
    naming the file that holds all of it."""
    shown = copy.deepcopy(report)
    for entry, step_id in _reasons(shown):
        if _long(entry):
            entry["reason_file"] = message_file(step_id)
            entry["reason"] = clip(entry["reason"], REPORT_CHARS)
    return shown


def _reasons(report: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every entry with a reason, and the step it belongs to: an errored check's reason is
    its step's, so both name the same file."""
    for step in report.get("steps", []):
        yield step, step["id"]
    for check in report.get("checks", []):
        yield check, f"check:{check['id']}"


def _long(entry: dict[str, Any]) -> bool:
    return len(entry.get("reason") or "") > REPORT_CHARS
