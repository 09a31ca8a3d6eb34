"""A transformer function whose first call kills its process: a worker that dies mid-shard."""

from __future__ import annotations

import os
from pathlib import Path

MARK = "PARITYSPEC_TEST_DIE_MARK"


def die_once(rows):
    """The first call anywhere (no mark file yet) leaves the mark and ends its process at
    once, as an out-of-memory kill would; later calls pass the rows through."""
    mark = Path(os.environ[MARK])
    if not mark.exists():
        mark.write_text("died once")
        os._exit(1)
    return rows
