"""What every step of a run can see: the spec, where files go, the run's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parityspec.artifacts import folder_name
from parityspec.spec.models import SpecBase


@dataclass
class RunContext:
    spec: SpecBase
    spec_dir: Path
    out_dir: Path
    work_dir: Path
    """Scratch space for this run (predictions, streamed ground truth), removed after it."""
    trust_models: bool = False
    cache_dir: Path | None = None
    """The step cache's folder (`--cache-dir`), where other runtimes' environments live too;
    None: the default one."""

    def resolve(self, path: str) -> Path:
        return (self.spec_dir / path).resolve()

    def artifact_dir(self, backend: str) -> Path:
        directory = self.out_dir / "artifacts" / folder_name(backend)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
