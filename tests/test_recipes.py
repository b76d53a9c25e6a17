"""Every recipe under recipes/ loads, validates and resolves with --dry-run."""

import pytest
import yaml

from xling.runs import cli
from xling.common.config import available_recipes


@pytest.mark.parametrize("name", sorted(available_recipes()))
def test_recipe_dry_run(name, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    rc = cli.main([name, "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    resolved = yaml.safe_load(out)
    assert resolved["task"] and resolved["description"], "every recipe says what it is for"
    assert resolved["out"] == f"runs/{name}"
    assert not list(tmp_path.iterdir())
