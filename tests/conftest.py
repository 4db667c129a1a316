"""Shared fixtures: ``project`` is a temporary copy of the project on a tiny profile, with a git
repository of its own, after one real ``dvc repro`` (Kedro, DVC, MLflow on SQLite)."""

from __future__ import annotations

import collections
import contextlib
import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = [".dvc/config", ".dvc/.gitignore", ".dvcignore", ".telemetry", "dvc.yaml", "params.yaml",
                 "pyproject.toml",
                 "requirements.lock", "conf", "src"]


ARCHITECTURES = yaml.safe_load((ROOT / "params.yaml").read_text())["architectures"]
SMALL_MODELS = {  # every architecture at a small size: fast on a CPU, the same structure as the paper's
    "bicubic": {},
    "srcnn": {"f1": 16, "f2": 8},
    "vdsr": {"depth": 4, "n_feats": 16},
    "edsr": {"n_resblocks": 2, "n_feats": 16},
    "unet": {"n_feats": 8, "depth": 2},
    "lapsrn": {"n_feats_in": 32, "n_feats": 16, "n_blocks": 3},
    "lapsrn_lai": {"n_feats": 32, "depth": 2},
    "autoencoder": {"n_feats": 8, "depth": 2},
    "srresnet": {"n_blocks": 2, "n_feats": 16},
    "srgan": {"n_blocks": 2, "n_feats": 16},
    "esrgan": {"n_blocks": 1, "n_feats": 16, "growth": 8},
    "fsrcnn": {"d": 16, "s": 8, "m": 2},
    "imdn": {"n_feats": 16, "n_blocks": 2},
    "rlfn": {"n_feats": 16, "n_blocks": 2, "esa_feats": 8},
    "span": {"n_feats": 16, "n_blocks": 2},
}


SET5 = Path(os.environ.get("SUPERRES_BENCHMARKS", ROOT.parent / "shared" / "datasets")) / "Set5"
BENCHMARK_FOLDER = "benchmark_photos"  # in the project copy: three photographs that are not trained on


def write_benchmark_photos(folder: Path) -> None:
    """Crops of three scikit-image photographs the tiny profile does not train on, one of them gray."""
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(skimage.data.retina()[150:300, 200:330]).save(folder / "retina.png")
    Image.fromarray(skimage.data.clock()[20:140, 40:140]).save(folder / "clock.png")
    Image.fromarray(skimage.data.hubble_deep_field()[:100, :126]).save(folder / "hubble.png")


PORT_CHECKPOINT = "pretrained_port/srcnn_x2.pth"  # in the project copy: a checkpoint laid out as a published port's


def write_port_checkpoint(path: Path) -> None:
    """An SRCNN 9-1-5 on Y with the key names of a published port (features.0, map.0, reconstruction)
    whose weights pass the bicubic-upsampled Y through unchanged (a centred delta at each layer): as
    a model, it is bicubic."""
    import torch

    first, mapping, last = torch.zeros(8, 1, 9, 9), torch.zeros(4, 8, 1, 1), torch.zeros(1, 4, 5, 5)
    first[0, 0, 4, 4] = mapping[0, 0] = last[0, 0, 2, 2] = 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"features.0.weight": first, "features.0.bias": torch.zeros(8), "map.0.weight": mapping,
                "map.0.bias": torch.zeros(4), "reconstruction.weight": last, "reconstruction.bias": torch.zeros(1)},
               path)


def tiny_params(params: dict) -> dict:
    """A profile small enough for a test: eight embedded photographs, a few iterations, every
    architecture. The GANs find no VGG19 weights (a path that does not exist), so they train
    without the perceptual term, as the default profile does offline. Benchmarks: a folder of
    three photographs at x2 and x3, and Set5 when it is found beside the project. One published
    checkpoint (:func:`write_port_checkpoint`) is imported and measured beside them."""
    params["profile"] = "tiny"
    params["seeds"] = [0]
    params["benchmarks"].update(folders={"mine": BENCHMARK_FOLDER, **({"set5": str(SET5)} if SET5.is_dir() else {})},
                                scales=[2, 3])
    params["pretrained"] = {"port_x2": {"source": PORT_CHECKPOINT, "arch": "srcnn", "scale": 2, "origin": "a port"}}
    params["data"]["names"] = ["astronaut", "camera", "chelsea", "coffee", "coins", "rocket", "moon", "text"]
    params["prepare"].update(patch_size=32, stride=64)
    params["train"].update(iterations=40, batch_size=8, val_every=20, log_every=5, checkpoint_every=20)
    for arch, model in SMALL_MODELS.items():
        params[arch]["model"].update(model)
        train = params[arch]["train"]
        for key in ("iterations", "lr_step", "val_every"):
            train.pop(key, None)
        if "gan_start" in train:
            train.update(gan_start=20, perceptual_weights="no-vgg19-weights-here.pth")
            train["discriminator"]["n_feats"] = 8
    return params


def copy_project(copy: Path) -> None:
    """The project's files (code, configuration, parameters, the environment lock) into ``copy``."""
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        output = f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{output}")
    return result


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the project with the tiny profile, a git repository of its own, run once."""
    copy = tmp_path_factory.mktemp("project")
    copy_project(copy)
    params = tiny_params(yaml.safe_load((copy / "params.yaml").read_text()))
    write_benchmark_photos(copy / BENCHMARK_FOLDER)
    write_port_checkpoint(copy / PORT_CHECKPOINT)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", KEDRO_DISABLE_TELEMETRY="true",
               DO_NOT_TRACK="1", HOME=str(copy / "home"), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    run(["git", "init", "-q", "-b", "main"], copy, env)
    run(["git", "add", "-A"], copy, env)
    run(["git", "commit", "-q", "-m", "tiny project"], copy, env)
    run(["dvc", "repro"], copy, env)
    return copy, env


# --- a local HTTP server on 127.0.0.1, for the download code ------------------------------------


class Server:
    def __init__(self, root: Path, httpd: http.server.ThreadingHTTPServer, requests: collections.Counter[str]):
        self.root = root
        self.httpd = httpd
        self.requests = requests

    def url(self, name: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: collections.Counter[str]

    def do_GET(self) -> None:
        self.requests[self.path] += 1
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    requests: collections.Counter[str] = collections.Counter()
    handler = type("Handler", (_CountingHandler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(root, httpd, requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# --- servers the tests start on 127.0.0.1, and the browser that looks at them ---------------------

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))  # Debian's; `make test` installs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, seconds: float = 20) -> None:
    """SIGTERM to the process group of ``process`` (a server and its children), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=seconds)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def serving(command: list[str], url: str, cwd: Path | None, env: dict, log: Path,
            seconds: float = 180) -> Iterator[str]:
    """``command`` (a server) started in a session of its own, until ``url`` answers 200; stopped with its
    children at the end (:func:`stop_group`). Its output goes to ``log``."""
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + seconds
        while True:
            assert process.poll() is None, f"{command[:4]} exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{url} did not answer in {seconds} s:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        yield url
    finally:
        stop_group(process)
