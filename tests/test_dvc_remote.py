"""A DVC remote shared by a team: what one person reproduced and pushed, another pulls into a fresh clone
and finds up to date (nothing trains again); what the second then reproduces, pushes too."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run

pytestmark = pytest.mark.e2e


def files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def stage_out_md5(root: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"][stage]
    return next(out["md5"] for out in lock["outs"] if out["path"] == path)


def test_a_clone_pulls_the_results_from_the_remote_and_trains_nothing(project, tmp_path):
    root, env = project
    remote = tmp_path / "remote"
    # The remote in a DVC config of this test's own (--global with DVC_GLOBAL_CONFIG_DIR): the shared
    # project stays as it is.
    pusher = {**env, "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-config")}
    run(["dvc", "remote", "add", "--global", "team", str(remote)], root, pusher)
    run(["dvc", "push", "-r", "team"], root, pusher)
    assert json.loads(run(["dvc", "status", "--cloud", "-r", "team", "--json"], root, pusher).stdout) == {}
    pushed = files(remote)
    assert pushed

    # The second person: a clone of the repository as it would be after the first one's `git commit` of
    # dvc.lock and of the small results git keeps (metrics, tables, plots; copied here from the first
    # one's working tree); the models and everything else DVC caches come from the remote only.
    clone = tmp_path / "clone"
    other = {**env, "HOME": str(tmp_path / "home")}
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, other)
    # (staged by DVC's autostage, or not yet: dvc.lock, the .gitignore files of the outputs, metrics and plots)
    committed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "dvc.lock", "data"],
                    root, env).stdout.split()
    assert "dvc.lock" in committed
    for name in committed:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, clone / name)
    run(["dvc", "remote", "add", "-d", "team", str(remote)], clone, other)
    run(["git", "add", "-A"], clone, other)
    run(["git", "commit", "-q", "-m", "results, and the team's remote"], clone, other)
    assert not (clone / "data/06_models/srcnn/seed0/weights.safetensors").exists()
    run(["dvc", "pull"], clone, other)

    for folder in ("data/06_models", "data/08_reporting"):  # the trained models and the report
        theirs, mine = files(root / folder), files(clone / folder)
        assert sorted(mine) == sorted(theirs)
        assert [name for name in theirs if not filecmp.cmp(theirs[name], mine[name], shallow=False)] == []
    assert (clone / "data/06_models/srcnn/seed0/weights.safetensors").is_file()
    assert (clone / "data/08_reporting/report.html").is_file()
    # As up to date as the project it came from (fully, unless an earlier test changed an output there).
    clone_status = json.loads(run(["dvc", "status", "--json"], clone, other).stdout)
    project_status = json.loads(run(["dvc", "status", "--json"], root, env).stdout)
    assert set(clone_status) <= set(project_status)
    assert not [stage for stage in clone_status if stage.startswith("train@")]
    dry = run(["dvc", "repro", "--dry"], clone, other)
    assert "Running stage 'train@" not in dry.stdout + dry.stderr

    # The second person changes SRCNN, reproduces its training and pushes: the remote has the new weights.
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["srcnn"]["model"]["f2"] = params["srcnn"]["model"]["f2"] // 2
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro", "--single-item", "train@srcnn-0"], clone, other)
    assert "Running stage 'train@srcnn-0'" in out.stdout + out.stderr
    weights = stage_out_md5(clone, "train@srcnn-0", "data/06_models/srcnn/seed0/weights.safetensors")
    assert weights != stage_out_md5(root, "train@srcnn-0", "data/06_models/srcnn/seed0/weights.safetensors")
    new_object = f"files/md5/{weights[:2]}/{weights[2:]}"
    assert new_object not in pushed
    run(["dvc", "push"], clone, other)
    after = files(remote)
    assert new_object in after and set(pushed) < set(after)
