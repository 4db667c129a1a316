"""The team's MLflow server, for real: ``scripts/mlflow-server`` starts PostgreSQL and ``mlflow server``
(artifacts stored by the server, --serve-artifacts), and a ``dvc repro`` of a tiny project pointed at it
with ``MLFLOW_TRACKING_URI=http://...`` leaves its runs in PostgreSQL and its files in the server's
folder, nothing in the project."""

from __future__ import annotations

import contextlib
import filecmp
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import (
    BENCHMARK_FOLDER,
    ROOT,
    copy_project,
    free_port,
    run,
    stop_group,
    tiny_params,
    write_benchmark_photos,
)
from mlflow.tracking import MlflowClient

SCRIPT = ROOT / "scripts" / "mlflow-server"
ARCHS = ["bicubic", "srcnn"]  # enough for the record of trained architectures and the report, and quick

pytestmark = pytest.mark.e2e


def postgres_installed() -> bool:
    """PostgreSQL's server programs, found as the script finds them."""
    return bool(os.environ.get("SUPERRES_PG_BIN") or shutil.which("initdb")
                or glob.glob("/usr/lib/postgresql/*/bin/initdb"))


needs_postgres = pytest.mark.skipif(not postgres_installed(),
                                    reason="PostgreSQL's server is not installed (Debian: apt-get install postgresql)")


def clean_env(home: Path) -> dict[str, str]:
    """The environment of the project's commands: none of the machine's MLflow, DVC or server settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "SUPERRES_MLFLOW"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", KEDRO_DISABLE_TELEMETRY="true",
               DO_NOT_TRACK="1", HOME=str(home), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return env


def live_processes_of_group(pgid: int) -> list[int]:
    """The processes of a process group that still run (zombies left for init to reap do not count)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def wait_until_gone(pgid: int, seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := live_processes_of_group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@dataclass
class TeamServer:
    url: str
    folder: Path  # the script's --dir: database, socket, logs, artifacts
    process: subprocess.Popen
    log: Path

    def psql(self, query: str, env: dict[str, str]) -> str:
        return run([str(SCRIPT), "psql", "--dir", str(self.folder), "--", "-tAc", query], self.folder.parent,
                   env).stdout.strip()

    def postmaster_pid(self) -> int:
        return int((self.folder / "pgdata" / "postmaster.pid").read_text().split()[0])


def wait_for_health(server: TeamServer, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"scripts/mlflow-server exited ({server.process.returncode}):\n"
                                 f"{server.log.read_text()[-6000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise AssertionError(f"no /health from {server.url} in {seconds} s:\n{server.log.read_text()[-6000:]}")


@contextlib.contextmanager
def team_server(env: dict[str, str], log: Path) -> Iterator[TeamServer]:
    """The script on free ports, in a folder of the system's temporary folder (run as root, the `postgres`
    user must reach it, and pytest's folders are private to root); stopped and removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="superres-mlflow-"))
    port = free_port()
    command = [str(SCRIPT), "--dir", str(folder), "--port", str(port), "--pg-port", str(free_port()),
               "--", "--workers", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = TeamServer(f"http://127.0.0.1:{port}", folder, process, log)
    try:
        wait_for_health(server)
        yield server
    finally:
        stop_group(process, seconds=90)  # on SIGTERM the script stops MLflow, then PostgreSQL
        # the database, had the script not stopped it (a no-op when it did)
        subprocess.run([str(SCRIPT), "stop", "--dir", str(folder)], env=env, capture_output=True, timeout=120)
        for pid in live_processes_of_group(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def tiny_project(copy: Path, env: dict[str, str]) -> None:
    """The tiny profile with two architectures, no published checkpoint and one benchmark folder."""
    copy_project(copy)
    params = tiny_params(yaml.safe_load((copy / "params.yaml").read_text()))
    params["architectures"] = ARCHS
    params["pretrained"] = {}
    params["benchmarks"]["folders"] = {"mine": BENCHMARK_FOLDER}
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_benchmark_photos(copy / BENCHMARK_FOLDER)
    run(["git", "init", "-q", "-b", "main"], copy, env)
    run(["git", "add", "-A"], copy, env)
    run(["git", "commit", "-q", "-m", "tiny project"], copy, env)


@needs_postgres
def test_a_dvc_repro_records_into_the_team_server_on_postgresql(tmp_path):
    pytest.importorskip("psycopg2", reason="the `team` extra (psycopg2-binary) is not installed")
    copy = tmp_path / "project"
    env = clean_env(tmp_path / "home")
    tiny_project(copy, env)
    with team_server(env, tmp_path / "server.log") as server:
        postmaster = server.postmaster_pid()
        run(["dvc", "repro"], copy, {**env, "MLFLOW_TRACKING_URI": server.url})

        client = MlflowClient(tracking_uri=server.url)
        experiment = client.get_experiment_by_name("superres")
        assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server stores the files
        every_run = client.search_runs([e.experiment_id for e in client.search_experiments()])
        runs = [r for r in every_run if r.data.tags.get("superres.kind") in ("architecture", "report")]
        assert sorted(r.info.run_name for r in runs) == sorted([*ARCHS, "report"])
        assert {r.info.status for r in runs} == {"FINISHED"}
        storage = server.folder / "artifacts"
        for record in runs:
            # where the server keeps a run's files: mlflow-artifacts:/<experiment>/<run>/artifacts
            stored = storage / urllib.parse.urlparse(record.info.artifact_uri).path.lstrip("/")
            if record.info.run_name == "report":
                assert {"comparison.csv", "report.html"} <= {a.path for a in client.list_artifacts(record.info.run_id)}
                assert (stored / "report.html").is_file()
                continue
            arch = record.info.run_name
            metrics = json.loads((copy / f"data/08_reporting/{arch}/seed0/metrics.json").read_text())
            assert record.data.metrics["test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
            listed = {a.path for a in client.list_artifacts(record.info.run_id, "model")}
            assert {"model/weights.safetensors", "model/config.json"} <= listed
            weights = copy / f"data/06_models/{arch}/seed0/weights.safetensors"
            assert filecmp.cmp(stored / "model" / "weights.safetensors", weights, shallow=False)
            fetched = client.download_artifacts(record.info.run_id, "model/weights.safetensors", str(tmp_path))
            assert filecmp.cmp(fetched, weights, shallow=False)  # and served back through the server
        # each training run's network is an MLflow Model there, and the best one is registered
        trained = [r for r in runs if r.info.run_name != "report"]
        assert all(client.get_run(r.info.run_id).outputs.model_outputs for r in trained)
        champion = client.get_model_version_by_alias("superres-x2", "champion")
        assert champion.run_id in {r.info.run_id for r in trained}

        # the records are rows of PostgreSQL, the files are in the server's folder, nothing in the project
        assert server.psql("select count(*) from runs", env) == str(len(every_run))
        assert server.psql("select count(*) from latest_metrics where key = 'test/psnr_y'", env) == str(len(ARCHS))
        assert server.psql("select count(*) from logged_models", env) == str(len(ARCHS))
        assert not (copy / "mlflow.db").exists() and not (copy / "mlartifacts").exists()
        assert not (copy / "mlruns").exists()

    assert server.process.returncode == 0, server.log.read_text()[-4000:]  # stopped by SIGTERM, cleanly
    assert "PostgreSQL stopped" in server.log.read_text()
    assert wait_until_gone(server.process.pid) == []  # MLflow and its web server
    assert wait_until_gone(postmaster) == []  # PostgreSQL (a process group of its own)
