"""The step cache's own guarantees, without running a spec: entries are checked before use,
`verify` finds damage, `clear` deletes only what parityspec wrote, and a cache that cannot be
written is given up once with a reason."""

from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest

from parityspec.backends.base import Predictions
from parityspec.data.stored import OutputWriter
from parityspec.plan.graph import Step
from parityspec.run import cache as cache_module
from parityspec.run.cache import (
    FORMAT,
    TAG_FILE,
    TAG_SIGNATURE,
    DamagedCacheEntry,
    StepCache,
)

ROWS = 2000


def _step(name: str = "onnx") -> Step:
    key = hashlib.sha256(name.encode()).hexdigest()
    return Step(f"predict:{name}", "predict", (), name, {}, key)


def _predictions(tmp_path, name: str = "onnx") -> Predictions:
    writer = OutputWriter(tmp_path / f"out-{name}")
    values = np.random.default_rng(0).random((ROWS, 2))
    writer.append({"probabilities": values, "label": values.argmax(axis=1)})
    return Predictions(name, writer.close())


def _stored(tmp_path, root, *names: str) -> StepCache:
    cache = StepCache(root)
    for name in names:
        cache.store(_step(name), _predictions(tmp_path, name))
    assert cache.disabled_reason is None
    return cache


def _entry(root, name: str = "onnx"):
    key = _step(name).key
    return root / FORMAT / key[:2] / key


def test_a_stored_prediction_reads_back_equal(tmp_path):
    cache = _stored(tmp_path, tmp_path / "cache", "onnx")
    original = _predictions(tmp_path, "again")
    restored = cache.load(_step(), None)
    for name in ("probabilities", "label"):
        assert np.array_equal(
            np.asarray(restored.outputs[name]), np.asarray(original.outputs[name])
        )
    assert (tmp_path / "cache" / TAG_FILE).read_text().startswith(TAG_SIGNATURE + "\n")


def test_has_reads_no_content(tmp_path, monkeypatch):
    cache = _stored(tmp_path, tmp_path / "cache", "onnx")
    monkeypatch.setattr(cache_module, "_sha256", _fail)
    assert cache.has(_step()) and not cache.has(_step("other"))


def _fail(*_args):
    raise AssertionError("hashed")


def test_a_damaged_entry_is_removed_before_the_error(tmp_path):
    root = tmp_path / "cache"
    cache = _stored(tmp_path, root, "onnx")
    probabilities = _entry(root) / "probabilities.bin"
    probabilities.write_bytes(probabilities.read_bytes()[:-8])
    with pytest.raises(DamagedCacheEntry) as raised:
        cache.load(_step(), None)
    expected = ROWS * 2 * 8
    assert str(raised.value) == (
        f"cache entry of predict:onnx was damaged (probabilities.bin: {expected - 8} bytes, "
        f"expected {expected}); recomputed"
    )
    assert not cache.has(_step())
    cache.store(_step(), _predictions(tmp_path))
    assert cache.load(_step(), None).outputs["probabilities"].shape == (ROWS, 2)


def test_an_entry_that_cannot_be_removed_says_so(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    cache = _stored(tmp_path, root, "onnx")
    (_entry(root) / "junk").write_text("x")
    monkeypatch.setattr(cache_module.os, "rename", _raise(errno.EROFS))
    with pytest.raises(DamagedCacheEntry, match=r"\(junk: not part of the entry\) and could not"):
        cache.load(_step(), None)


def _raise(code: int):
    def fail(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def test_verify_reports_and_repair_removes(tmp_path, invoke):
    root = tmp_path / "cache"
    _stored(tmp_path, root, "onnx", "int8", "sk")
    label = _entry(root, "int8") / "label.bin"
    flipped = bytearray(label.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    label.write_bytes(bytes(flipped))
    (_entry(root, "sk") / "entry.json").write_text("{")

    found = invoke("cache", "verify", "--cache-dir", root)
    assert found.exit_code == 1, found.output
    lines = found.output.splitlines()
    assert sorted(lines[:2]) == sorted(
        [
            f"damaged {_entry(root, 'int8').relative_to(root)}: label.bin: content differs "
            "from its recorded hash",
            f"damaged {_entry(root, 'sk').relative_to(root)}: entry.json: not valid JSON",
        ]
    )
    assert lines[2] == f"checked 3 cached step(s) in {root}: 2 damaged (--repair removes)"

    repaired = invoke("cache", "verify", "--cache-dir", root, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert repaired.output.count("removed ") == 2
    assert not _entry(root, "int8").exists() and not _entry(root, "sk").exists()
    clean = invoke("cache", "verify", "--cache-dir", root)
    assert clean.exit_code == 0
    assert clean.output == f"checked 1 cached step(s) in {root}: 0 damaged\n"


def test_clear_leaves_other_files_of_a_tagged_root(tmp_path, invoke):
    root = tmp_path / "cache"
    _stored(tmp_path, root, "onnx", "sk")
    (root / "notes.txt").write_text("mine")
    cleared = invoke("cache", "clear", "--cache-dir", root)
    assert cleared.exit_code == 0 and "removed 2 cached step(s)" in cleared.output
    assert sorted(p.name for p in root.iterdir()) == [TAG_FILE, "notes.txt"]
    assert (root / "notes.txt").read_text() == "mine"


def test_clear_removes_a_root_that_held_only_the_cache(tmp_path, invoke):
    root = tmp_path / "cache"
    _stored(tmp_path, root, "onnx")
    assert invoke("cache", "clear", "--cache-dir", root).exit_code == 0
    assert not root.exists()


def test_a_cache_written_before_the_tag_is_cleared_and_tagged_on_store(tmp_path, invoke):
    old = tmp_path / "old"
    _stored(tmp_path, old, "onnx")
    (old / TAG_FILE).unlink()
    (old / FORMAT).rename(old / "v1")
    refreshed = StepCache(old)
    refreshed.store(_step("sk"), _predictions(tmp_path, "sk"))
    assert refreshed.disabled_reason is None and (old / TAG_FILE).is_file()

    untagged = tmp_path / "untagged"
    _stored(tmp_path, untagged, "onnx")
    (untagged / TAG_FILE).unlink()
    cleared = invoke("cache", "clear", "--cache-dir", untagged)
    assert cleared.exit_code == 0 and "removed 1 cached step(s)" in cleared.output
    assert list(untagged.iterdir()) == []


def test_a_tag_write_cut_short_does_not_disown_the_cache(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    (root / f".{TAG_FILE}.4194305.abc.tmp").write_text("Signature")  # a killed writer's
    assert _stored(tmp_path, root, "onnx").has(_step())


def test_a_tag_of_another_tool_is_not_parityspecs(tmp_path, invoke):
    root = tmp_path / "target"
    root.mkdir()
    (root / TAG_FILE).write_text(TAG_SIGNATURE + "\n# created by cargo\n")
    (root / "build.log").write_text("x")
    assert invoke("cache", "clear", "--cache-dir", root).exit_code == 2
    cache = StepCache(root)
    cache.store(_step(), _predictions(tmp_path))
    assert "holds files parityspec did not write" in cache.disabled_reason
    assert sorted(p.name for p in root.iterdir()) == [TAG_FILE, "build.log"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_cache_that_cannot_be_written_is_given_up_once(tmp_path, monkeypatch, code):
    root = tmp_path / "cache"
    cache = _stored(tmp_path, root, "sk")
    calls = []

    def failing(source, destination):
        calls.append(destination)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cache_module, "_copy_hashed", failing)
    cache.store(_step("onnx"), _predictions(tmp_path))
    cache.store(_step("int8"), _predictions(tmp_path, "int8"))
    assert len(calls) == 1
    assert cache.disabled_reason == (
        f"step cache {root} not used ({os.strerror(code)}); this run stores nothing in it"
    )
    assert not cache.has(_step("onnx"))
    assert not list(_entry(root, "onnx").parent.glob(".staging-*"))
    assert cache.has(_step("sk"))  # what it holds still restores


def test_a_file_in_place_of_the_cache_is_left_alone(tmp_path):
    root = tmp_path / "cache"
    root.write_text("not a folder")
    cache = StepCache(root)
    cache.store(_step(), _predictions(tmp_path))
    assert cache.disabled_reason == (
        f"step cache {root} not used (it is not a folder); this run stores nothing in it"
    )
    assert root.read_text() == "not a folder"


def test_a_cached_check_result_reads_back_with_its_gates_judged_alike(tmp_path):
    """A cacheable check's result goes through JSON, where Inf and NaN are text: restored,
    its gates compare numbers again and give the same verdicts."""
    from parityspec.checks.base import CheckResult, Gate

    key = hashlib.sha256(b"bench").hexdigest()
    step = Step("check:b", "check", (), "b", {"check": {"type": "benchmark"}}, key)
    gates = [
        Gate("size_ratio", float("inf"), "<=", "max_size_ratio", 0.5),
        Gate("speedup", float("nan"), ">=", "min_speedup", 1.0),
        Gate("size_ratio", 0.25, "<=", "max_size_ratio", 0.5),
    ]
    stored = CheckResult("failed", "why", {"size_ratio": 0.25}, {}, {}, gates, {"t": 1.5})
    cache = StepCache(tmp_path / "cache")
    cache.store(step, stored)
    restored = cache.load(step, None)
    assert isinstance(restored, CheckResult)
    assert [g.ok for g in restored.gates] == [False, False, True]
    assert (restored.status, restored.reason, restored.timings) == ("failed", "why", {"t": 1.5})
