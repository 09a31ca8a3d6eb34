"""A damaged step cache never changes a figure or a verdict.

Each kind of damage is found when the entry is restored (a model that does not load, when
a step that runs uses it): the entry is removed, its step recomputed and stored again, one
line says so (also in the report's `run.notes`), and the report equals a clean run's outside
`run`. A cache that cannot be written is given up with
one line; a folder that is not parityspec's cache is never written to nor cleared.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from parityspec.artifacts import dump_json
from parityspec.cli import cli
from parityspec.run import cache as cache_module
from parityspec.run.cache import ENTRY_FILE, FORMAT, StepCache, _sealed
from tests.bad_input.helpers import default_spec, expect, write_spec

PREDICTIONS = "probabilities.bin"


@dataclass
class Warm:
    spec: Path
    cache: Path
    exit_code: int
    report: dict
    """The clean run's report.json, less its `run` section."""
    entries: int


@pytest.fixture(scope="module")
def warm(assets, tmp_path_factory) -> Warm:
    """The default spec on 12 copies of the assets' rows (about 2,000 evaluation rows, a
    32 KiB prediction file), run once into a cache every case copies."""
    folder = tmp_path_factory.mktemp("warm")
    pd.concat([pd.read_csv(assets / "data.csv")] * 12).to_csv(folder / "data.csv", index=False)
    spec = default_spec(assets)
    spec["data"]["path"] = str(folder / "data.csv")
    path, cache = write_spec(folder, spec), folder / "cache"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(folder / "out"), "-q",
                                      "--cache-dir", str(cache)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (_entries(cache)["predict:onnx"] / PREDICTIONS).stat().st_size > 16 * 1024
    return Warm(path, cache, 0, _outside_run(folder / "out"), len(_entries(cache)))


def _outside_run(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    report.pop("run")
    return report


def _entries(cache: Path) -> dict[str, Path]:
    """Entry folders by step id."""
    return {
        json.loads((entry / ENTRY_FILE).read_text())["step"]: entry
        for entry in (cache / FORMAT).glob("??/*")
    }


def _warm_copy(warm: Warm, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(warm.cache, cache, symlinks=True)
    return cache


# --- the damage catalogue --------------------------------------------------------------------


def _truncate(entry: Path) -> None:
    file = entry / PREDICTIONS
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _flip_at(where: Callable[[int], int]) -> Callable[[Path], None]:
    def flip(entry: Path) -> None:
        data = bytearray((entry / PREDICTIONS).read_bytes())
        data[where(len(data))] ^= 0x10
        (entry / PREDICTIONS).write_bytes(bytes(data))

    return flip


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda entry: (entry / name).write_text(text)


def _wrong_sizes(entry: Path) -> None:
    body = json.loads((entry / ENTRY_FILE).read_text())
    body["content"][PREDICTIONS]["size"] //= 2
    (entry / ENTRY_FILE).write_text(json.dumps(body))


def _resealed(edit: Callable[[Path, dict], None]) -> Callable[[Path], None]:
    """Damage that passes every hash: the files edited, then entry.json written anew for
    them, as a buggy writer could."""

    def damage(entry: Path) -> None:
        body = json.loads((entry / ENTRY_FILE).read_text())
        body.pop("checksum")
        edit(entry, body)
        for name, facts in body["content"].items():
            data = (entry / name).read_bytes()
            facts.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        (entry / ENTRY_FILE).write_text(dump_json(_sealed(body)))

    return damage


def _more_rows(_entry: Path, body: dict) -> None:
    body["value"]["outputs"]["probabilities"]["shape"][0] += 1


def _unloadable_model(entry: Path, _body: dict) -> None:
    (entry / "model.onnx").write_bytes(b"\x08\x07 not a protobuf")


def _needed(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """The damage, with the model's predictions gone: a restored model is opened only when
    a step that runs uses it, and then one that does not load is found and recomputed."""

    def needed(entry: Path) -> None:
        damage(entry)
        shutil.rmtree(_entries(entry.parents[2])["predict:onnx"])

    return needed


def _as_folder(entry: Path) -> None:
    (entry / PREDICTIONS).unlink()
    (entry / PREDICTIONS).mkdir()


def _as_link_to_zero(entry: Path) -> None:
    (entry / PREDICTIONS).unlink()
    (entry / PREDICTIONS).symlink_to("/dev/zero")


def _as_fifo(entry: Path) -> None:
    (entry / PREDICTIONS).unlink()
    os.mkfifo(entry / PREDICTIONS)


def _entry_of_another_step(entry: Path) -> None:
    other = _entries(entry.parents[2])["predict:sk"]
    shutil.copyfile(other / ENTRY_FILE, entry / ENTRY_FILE)


def _entry_as_file(entry: Path) -> None:
    shutil.rmtree(entry)
    entry.write_text("junk")


def _flip_model(entry: Path) -> None:
    data = bytearray((entry / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (entry / "model.onnx").write_bytes(bytes(data))


DAMAGE = {
    "truncated": ("predict:onnx", _truncate, r"probabilities.bin: \d+ bytes, expected \d+"),
    "byte flipped in the middle": (
        "predict:onnx",
        _flip_at(lambda size: size // 2),
        "probabilities.bin: content differs from its recorded hash",
    ),
    "byte flipped in the last 4 KiB": (
        "predict:onnx",
        _flip_at(lambda size: size - 1000),
        "probabilities.bin: content differs from its recorded hash",
    ),
    "file deleted": (
        "predict:onnx",
        lambda entry: (entry / PREDICTIONS).unlink(),
        "probabilities.bin: missing",
    ),
    "entry.json deleted": (
        "predict:onnx",
        lambda entry: (entry / ENTRY_FILE).unlink(),
        "entry.json: missing",
    ),
    "entry.json empty": ("predict:onnx", _write(ENTRY_FILE, ""), "entry.json: not valid JSON"),
    "entry.json not JSON": (
        "predict:onnx",
        _write(ENTRY_FILE, '{"format": "v2", "key'),
        "entry.json: not valid JSON",
    ),
    "entry.json with other keys": (
        "predict:onnx",
        _write(ENTRY_FILE, '{"outputs": {}, "inert": null}'),
        "entry.json: not an entry of format v2",
    ),
    "entry.json with wrong sizes": (
        "predict:onnx",
        _wrong_sizes,
        "entry.json: content differs from its checksum",
    ),
    "entry.json of another step": (
        "predict:onnx",
        _entry_of_another_step,
        "entry.json: written for another step",
    ),
    "shape larger than the file, resealed": (
        "predict:onnx",
        _resealed(_more_rows),
        r"probabilities.bin: \d+ bytes, but <f8 of shape \(\d+, 2\) needs \d+",
    ),
    "file replaced by a folder": (
        "predict:onnx",
        _as_folder,
        "probabilities.bin: not a regular file",
    ),
    "file replaced by a link to /dev/zero": (
        "predict:onnx",
        _as_link_to_zero,
        "probabilities.bin: not a regular file",
    ),
    "file replaced by a FIFO": ("predict:onnx", _as_fifo, "probabilities.bin: not a regular file"),
    "extra file": ("predict:onnx", _write("junk.bin", "x"), "junk.bin: not part of the entry"),
    "entry replaced by a file": ("predict:onnx", _entry_as_file, "the entry is not a folder"),
    "cached ONNX model flipped": (
        "export:onnx",
        _flip_model,
        "model.onnx: content differs from its recorded hash",
    ),
    "cached ONNX model unloadable, resealed": (
        "export:onnx",
        _needed(_resealed(_unloadable_model)),
        "the cached model does not load: ",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damage_is_recomputed_and_noted(case, warm, invoke, tmp_path):
    step, damage, reason = DAMAGE[case]
    cache = _warm_copy(warm, tmp_path)
    damage(_entries(cache)[step])

    result = invoke("run", warm.spec, "--out", tmp_path / "out", "--cache-dir", cache)
    output = expect(result, warm.exit_code)
    assert _outside_run(tmp_path / "out") == warm.report
    notes = json.loads((tmp_path / "out" / "report.json").read_text())["run"]["notes"]
    assert len(notes) == 1, notes
    pattern = rf"cache entry of {step} was damaged \({reason}.*\); recomputed"
    assert re.fullmatch(pattern, notes[0]), notes[0]
    assert [line for line in output.splitlines() if notes[0] in line], output
    assert output.count(f"cache entry of {step}") == 1, output
    verified = StepCache(cache).verify()
    assert (verified.checked, verified.damaged) == (warm.entries, [])


# --- caches that cannot be used, folders that are not caches ---------------------------------


def _run_with_cache(invoke, warm: Warm, tmp_path: Path, cache: Path) -> tuple[str, list[str]]:
    result = invoke("run", warm.spec, "--out", tmp_path / "out", "--cache-dir", cache)
    output = expect(result, warm.exit_code)
    assert _outside_run(tmp_path / "out") == warm.report
    notes = json.loads((tmp_path / "out" / "report.json").read_text())["run"]["notes"]
    assert len(notes) == 1 and output.count(notes[0]) == 1, output
    return output, notes


def _failing(code: int):
    def fail(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def test_a_file_in_place_of_the_cache(warm, invoke, tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("mine")
    _, notes = _run_with_cache(invoke, warm, tmp_path, cache)
    assert notes == [
        f"step cache {cache} not used (it is not a folder); this run stores nothing in it"
    ]
    assert cache.read_text() == "mine"


def test_a_read_only_cache(warm, invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "write_text", _failing(errno.EROFS))  # its tag, first
    _, notes = _run_with_cache(invoke, warm, tmp_path, tmp_path / "cache")
    assert "(Read-only file system)" in notes[0]


def test_a_full_disk_under_the_cache(warm, invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "_copy_hashed", _failing(errno.ENOSPC))
    cache = tmp_path / "cache"
    _, notes = _run_with_cache(invoke, warm, tmp_path, cache)
    assert "(No space left on device)" in notes[0]
    assert not list(cache.rglob(".staging-*"))
    assert StepCache(cache).verify().damaged == []  # what was stored before is whole


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    (folder / "projects").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "projects" / "model.py").write_text("print('mine')")
    return folder


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_run_never_writes_into_a_folder_of_user_files(warm, invoke, tmp_path):
    folder = _user_folder(tmp_path)
    before = _listing(folder)
    _, notes = _run_with_cache(invoke, warm, tmp_path, folder)
    assert "holds files parityspec did not write" in notes[0]
    assert _listing(folder) == before and sorted(os.listdir(folder)) == ["notes.txt", "projects"]


@pytest.mark.parametrize("how", ["option", "environment"])
@pytest.mark.parametrize("command", ["clear", "verify --repair"])
def test_cache_commands_refuse_a_folder_of_user_files(how, command, invoke, tmp_path, monkeypatch):
    folder = _user_folder(tmp_path)
    (folder / "v1").mkdir()  # a folder named like a layout does not make it a cache
    before = _listing(folder)
    args = ["cache", *command.split()]
    if how == "option":
        args += ["--cache-dir", folder]
    else:
        monkeypatch.setenv("PARITYSPEC_CACHE_DIR", str(folder))
    output = expect(invoke(*args), 2, f"error: {folder}: not a parityspec cache")
    assert len(output.splitlines()) == 1 and "(hint: " in output
    assert _listing(folder) == before
    assert sorted(os.listdir(folder)) == ["notes.txt", "projects", "v1"]
