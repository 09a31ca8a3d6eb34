"""The committed JSON Schema: current, and in agreement with the loader on valid and invalid specs.

Editors (yaml-language-server) and CI (check-jsonschema) validate specs against
`schemas/parityspec.schema.json` alone, so it must accept every valid spec and reject
every structurally broken one, exactly as a Draft 2020-12 validator reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from parityspec.cli import cli
from parityspec.errors import SpecError
from parityspec.spec.load import load_spec
from parityspec.spec.schema import SCHEMA_FILE, schema_text

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SCHEMA_PATH = REPO / SCHEMA_FILE
VALID = sorted(p for p in (DATA / "valid").iterdir() if p.suffix in (".yaml", ".json"))
SPECS = sorted(p for p in (REPO / "specs").iterdir() if p.suffix in (".yaml", ".json"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/parityspec.schema.json"
# Invalid specs whose problem is structure alone: a JSON Schema validator must reject them too.
# The rest need YAML-level checks (duplicate keys, tags, bombs) or semantic rules.
STRUCTURAL = [
    "between_one_backend.yaml",
    "check_not_a_mapping.yaml",
    "json_spec_with_error.json",
    "list_at_top.yaml",
    "list_for_mapping.yaml",
    "missing_backend_kind.yaml",
    "negative_tolerance.yaml",
    "scalar_at_top.yaml",
    "string_for_int.yaml",
    "threshold_out_of_range.yaml",
    "train_without_function.yaml",
    "unknown_backend_key.yaml",
    "unknown_backend_kind.yaml",
    "unknown_check_key.yaml",
    "unknown_check_type.yaml",
    "unknown_data_key.yaml",
    "unknown_key_without_close_match.yaml",
    "unknown_profile_key.yaml",
    "unknown_task.yaml",
    "unknown_top_level_key.yaml",
    "wrong_spec_version.yaml",
]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def document(path: Path):
    """The spec as check-jsonschema reads it: JSON by its suffix, else YAML."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def schema_errors(validator: Draft202012Validator, path: Path) -> list[str]:
    return [
        f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document(path))
    ]


def test_committed_schema_is_current():
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_text(), (
        f"{SCHEMA_FILE} is stale: run `parityspec schema --write` and commit it"
    )


def test_schema_check_command_passes_at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["schema", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_schema_check_command_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    result = CliRunner().invoke(cli, ["schema", "--check", "--path", str(stale)])
    assert result.exit_code == 1
    assert "parityspec schema --write" in result.output


def test_there_are_valid_specs_of_each_form():
    names = {p.name for p in VALID}
    assert {"minimal_tabular.yaml", "json_form.json", "profiles_and_overrides.yaml"} <= names
    assert "tensor_synthetic.yaml" in names
    assert SPECS, "specs/ holds no spec"


@pytest.mark.parametrize("spec", VALID + SPECS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_valid_spec_passes_the_cli(spec: Path):
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert "1 of 1 spec(s) valid" in result.stdout


@pytest.mark.parametrize("spec", VALID + SPECS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_valid_spec_passes_the_json_schema(validator, spec: Path):
    assert schema_errors(validator, spec) == []


@pytest.mark.parametrize("spec", [p for p in SPECS if p.suffix == ".yaml"], ids=lambda p: p.name)
def test_spec_names_its_schema_for_editors(spec: Path):
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first == SCHEMA_LINE


@pytest.mark.parametrize("spec", [p for p in VALID if p.suffix == ".yaml"], ids=lambda p: p.name)
def test_test_spec_schema_line_points_at_the_schema(spec: Path):
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    relative = first.removeprefix("# yaml-language-server: $schema=")
    assert (spec.parent / relative).resolve() == SCHEMA_PATH


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structurally_invalid_spec_fails_the_json_schema(validator, name: str):
    spec = DATA / "invalid" / name
    with pytest.raises(SpecError):
        load_spec(spec)
    assert schema_errors(validator, spec), f"the JSON Schema accepts {name}"


def test_json_schema_rejects_invalid_backend_names(validator):
    spec = yaml.safe_load((DATA / "valid" / "minimal_tabular.yaml").read_text())
    spec["backends"]["2onnx"] = spec["backends"].pop("onnx")
    spec["checks"][0]["between"] = ["sklearn", "sklearn"]
    assert list(validator.iter_errors(spec))


def test_loader_rejects_what_the_json_schema_rejects(validator, tmp_path):
    spec = yaml.safe_load((DATA / "valid" / "minimal_tabular.yaml").read_text())
    spec["backends"]["onnx"]["opset"] = "15"
    path = tmp_path / "lax.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert list(validator.iter_errors(spec))
    with pytest.raises(SpecError):
        load_spec(path, check_files=False)
