"""Third-party backend kinds and check types, found through entry points.

A package registers a module under the entry-point group `parityspec.backends` or
`parityspec.checks`; the module satisfies the same protocol as a built-in one
(`BackendModule`, `CheckModule`). This module imports nothing from parityspec: the registries
call it while they are being built, before the spec models read them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import metadata
from types import ModuleType

log = logging.getLogger(__name__)

DISTRIBUTIONS: dict[str, set[str]] = {}
"""Per group, the distributions whose plugins were loaded: a plugin's code makes cached
outputs (its models, its checks' results), so its version enters the cache keys."""

# Per group: the attribute naming a module's kind or type, then what the protocol requires.
# Optional hooks are left out: `BackendCapabilities` and `CheckCapabilities` give defaults.
GROUPS = {
    "parityspec.backends": (
        "KIND",
        ("Spec", "verb", "source", "referenced_files", "needs_data", "make", "predict"),
    ),
    "parityspec.checks": ("TYPE", ("Spec", "TASKS", "run")),
    "parityspec.formats": ("FORMAT", ("FILE", "render")),
}


def load_plugins(group: str, builtin: Mapping[str, object]) -> dict[str, ModuleType]:
    """Plugin modules of `group` by kind or type. A broken plugin is skipped with a warning
    rather than breaking every command; a built-in name is never replaced."""
    key, required = GROUPS[group]
    found: dict[str, ModuleType] = {}
    for entry in metadata.entry_points(group=group):
        module = _load(entry, required)
        if module is None:
            continue
        name = getattr(module, key, None)
        if not isinstance(name, str) or name in builtin or name in found:
            log.warning("plugin %s: %s %r is missing or taken; skipped", entry.value, key, name)
            continue
        log.info("plugin %s: %s %r from %s", group, key.lower(), name, entry.value)
        found[name] = module
        if entry.dist is not None:
            DISTRIBUTIONS.setdefault(group, set()).add(entry.dist.name)
    return found


def _load(entry: metadata.EntryPoint, required: tuple[str, ...]) -> ModuleType | None:
    try:
        module = entry.load()
    except Exception as error:  # a plugin's own fault must not stop parityspec
        log.warning("plugin %s cannot be imported: %s", entry.value, error)
        return None
    missing = [name for name in required if not hasattr(module, name)]
    if missing:
        log.warning("plugin %s lacks %s; skipped", entry.value, ", ".join(missing))
        return None
    return module
