"""The layers of README's "How it works" hold: import-linter's contracts in pyproject.toml
(each layer imports only those below it; the report never imports the running machinery)."""

from __future__ import annotations

from importlinter.cli import lint_imports

from tests.conftest import REPO


def test_every_import_contract_is_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    assert code == 0, capsys.readouterr().out
