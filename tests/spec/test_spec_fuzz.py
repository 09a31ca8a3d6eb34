"""Fuzzing the spec loader: whatever the file holds, `load_spec` returns a spec or a SpecError.

Any other exception is a bug: the CLI would turn it into exit 3 ("a step errored")
instead of a located problem and exit 2. Specs that load must also survive
dump -> YAML -> load unchanged. `PARITYSPEC_FUZZ_EXAMPLES=5000` runs a longer hunt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parityspec.errors import SpecError
from parityspec.spec.load import LoadedSpec, load_spec

REPO = Path(__file__).resolve().parents[2]
VALID_FILES = sorted((REPO / "tests" / "data" / "valid").glob("*.yaml")) + sorted(
    (REPO / "specs").glob("*.yaml")
)
VALID_FILES += sorted((REPO / "tests" / "data" / "valid").glob("*.json"))
FUZZ = settings(
    max_examples=int(os.environ.get("PARITYSPEC_FUZZ_EXAMPLES", "150")),  # more for a long hunt
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Keys of the spec language, so that random documents reach past the top level.
SPEC_KEYS = [
    "parityspec",
    "name",
    "data",
    "model",
    "backends",
    "checks",
    "profiles",
    "report",
    "kind",
    "type",
    "from",
    "between",
    "id",
    "profile",
    "extends",
    "sklearn",
    "path",
    "train",
    "task",
    "metrics",
    "split",
    "synthetic",
    "inputs",
    "per_output",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=16)
    | st.sampled_from(["onnx", "sklearn", "binary", "tensor", "strict", "1", "", "~", "<<"])
)
keys = st.sampled_from(SPEC_KEYS) | st.text(max_size=10) | st.integers(-3, 3) | st.booleans()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)
yaml_alphabet = st.sampled_from([*"{}[]:-,&*!|>'\"#%@`?<=~ \t\n\r\\abcxyz019.", "\x07"])
# Pieces of YAML syntax, joined at random: tags, anchors, merges, dates, flow and block forms.
yaml_tokens = st.sampled_from(
    [
        *("a", "b", "parityspec", "checks", "1", "0.5", "-1", "x y", "'q'", '"\\x"', "~", "yes"),
        *(": ", ":", "- ", "? ", ", ", "{", "}", "[", "]", "\n", "\n  ", "\n    ", "\t", "# c"),
        *("&a ", "&b ", "*a", "*b", "<<: ", "<<: *a", "<<: [*a, *b]", "---\n", "...\n"),
        *("!!int ", "!!float ", "!!bool ", "!!str ", "!!null ", "!!map ", "!!seq ", "!!binary "),
        *("!!timestamp ", "!!set ", "!!python/name:os.system ", "!local ", "%YAML 1.1\n"),
        *(
            "2024-02-30",
            "2024-01-01",
            "12:30:00",
            ".inf",
            ".nan",
            "0x1F",
            "0o17",
            "1_000",
            "=",
            "|\n  ",
        ),
    ]
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def loads_or_explains(path: Path, *, check_files: bool = True) -> LoadedSpec | None:
    """The spec, or None after checking that every problem says where and what."""
    try:
        return load_spec(path, check_files=check_files)
    except SpecError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file == str(path)
            assert problem.message
            assert "\n" not in problem.format()
        return None


def assert_round_trips(loaded: LoadedSpec, workdir: Path) -> None:
    dumped = loaded.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    again = workdir / "round_trip.yaml"
    again.write_text(yaml.safe_dump(dumped, sort_keys=False), encoding="utf-8")
    assert load_spec(again, check_files=False).spec == loaded.spec


def original(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@FUZZ
@given(document=documents, unicode=st.booleans())
def test_random_yaml_documents(workdir, document, unicode):
    path = workdir / "random.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=unicode), encoding="utf-8")
    loaded = loads_or_explains(path)
    if loaded is not None:
        assert_round_trips(loaded, workdir)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_bytes(workdir, raw):
    path = workdir / "raw.yaml"
    path.write_bytes(raw)
    loads_or_explains(path)


@FUZZ
@given(text=st.text(yaml_alphabet, max_size=120) | st.lists(yaml_tokens, max_size=40).map("".join))
def test_random_yaml_like_text(workdir, text):
    path = workdir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_explains(path)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _at(document: Any, path: tuple) -> Any:
    for part in path:
        document = document[part]
    return document


def _typo(word: str) -> st.SearchStrategy[str]:
    word = str(word)
    return st.sampled_from(
        [word[1:], word[:-1], word + word[-1:], word[::-1], word.upper(), word + "s", "x" + word]
    )


def mutate(data: st.DataObject, document: dict) -> None:
    """One random change: delete, retype or rename a key, or add junk."""
    path = data.draw(st.sampled_from(_paths(document)[1:]), label="path")
    parent, last = _at(document, path[:-1]), path[-1]
    operation = data.draw(st.sampled_from(["delete", "retype", "rename", "junk"]), label="op")
    if operation == "delete":
        del parent[last]
    elif operation == "retype":
        parent[last] = data.draw(documents, label="value")
    elif operation == "rename" and isinstance(parent, dict):
        parent[data.draw(_typo(last) | keys, label="key")] = parent.pop(last)
    else:
        target = _at(document, path)
        junk = data.draw(documents, label="junk")
        if isinstance(target, dict):
            target[data.draw(keys, label="junk key")] = junk
        elif isinstance(target, list):
            target.insert(data.draw(st.integers(0, len(target)), label="at"), junk)
        else:
            parent[last] = [target, junk]


@FUZZ
@given(data=st.data())
def test_mutated_valid_specs(workdir, data):
    source = data.draw(st.sampled_from(VALID_FILES), label="spec")
    document = original(source)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutate(data, document)
    path = workdir / "mutated.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    loaded = loads_or_explains(path, check_files=data.draw(st.booleans(), label="files"))
    if loaded is not None:
        assert_round_trips(loaded, workdir)


@FUZZ
@given(data=st.data())
def test_mutated_valid_spec_text(workdir, data):
    """Edits of the text itself: junk inserted, a slice deleted, lines swapped."""
    source = data.draw(st.sampled_from(VALID_FILES), label="spec")
    text = source.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        at = data.draw(st.integers(0, len(text)), label="at")
        if data.draw(st.booleans(), label="insert"):
            text = (
                text[:at] + data.draw(st.text(yaml_alphabet, max_size=6), label="junk") + text[at:]
            )
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 8), label="cut") :]
    path = workdir / ("text_edit" + source.suffix)
    path.write_text(text, encoding="utf-8")
    loaded = loads_or_explains(path, check_files=False)
    if loaded is not None:
        assert_round_trips(loaded, workdir)


@pytest.mark.parametrize("spec", VALID_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_valid_specs_round_trip(workdir, spec):
    assert_round_trips(load_spec(spec), workdir)
