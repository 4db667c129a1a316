"""Profiles switch params.yaml in place and back, exactly; a bad profile changes nothing."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from superres.commands import main
from superres.errors import ConfigError
from superres.profiles import _leaves, apply_profile, available, load_profile


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "conf" / "profiles", tmp_path / "conf" / "profiles")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_profile_sets_the_same_keys_and_default_is_what_params_yaml_holds():
    names = available(ROOT / "conf" / "profiles")
    assert {"default", "paper"} <= set(names)
    keys = {name: set(_leaves(load_profile(name, ROOT / "conf" / "profiles"))) for name in names}
    assert all(k == keys["default"] for k in keys.values()), (
        "profiles must set the same keys, or switching back leaves some behind")
    params = _leaves(yaml.safe_load((ROOT / "params.yaml").read_text()))
    default = _leaves(yaml.safe_load((ROOT / "conf" / "profiles" / "default.yaml").read_text()))
    assert {k: params.get(k) for k in default} == default, "params.yaml as committed is the default profile"


def comments(text: str) -> list[str]:
    return re.findall(r"#.*", text)


def test_paper_then_default_restores_params_yaml_with_its_comments(project):
    original = (project / "params.yaml").read_text()
    changed = apply_profile("paper")
    paper = yaml.safe_load((project / "params.yaml").read_text())
    assert "profile" in changed and paper["profile"] == "paper"
    assert paper["prepare"]["scale"] == 4
    assert paper["edsr"]["model"] == {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0}
    assert "# superres parameters" in (project / "params.yaml").read_text()  # comments kept
    apply_profile("default")
    restored = (project / "params.yaml").read_text()
    assert yaml.safe_load(restored) == yaml.safe_load(original)
    assert comments(restored) == comments(original)  # every comment kept, in order (only its column may move)


def test_the_command_switches_and_reports(project):
    result = CliRunner().invoke(main, ["profile", "paper"])
    assert result.exit_code == 0, result.output
    assert "paper" in result.output and "dvc repro" in result.output
    assert yaml.safe_load((project / "params.yaml").read_text())["profile"] == "paper"


def test_unknown_profile_and_unknown_section_change_nothing(project):
    original = (project / "params.yaml").read_text()
    result = CliRunner().invoke(main, ["profile", "huge"])
    assert result.exit_code != 0 and "known profiles" in result.output
    (project / "conf" / "profiles" / "broken.yaml").write_text("nosuchsection:\n  x: 1\nprofile: broken\n")
    with pytest.raises(ConfigError, match="nosuchsection"):
        apply_profile("broken")
    assert (project / "params.yaml").read_text() == original
