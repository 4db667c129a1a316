"""`superres bench`: the command runs (--quick) and writes valid JSON; the reference bicubic it
times against agrees with the project's; a bad option is refused. Figures live in BENCHMARKS.md."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT

from superres.bench import training
from superres.bench.engines import ENGINES
from superres.bench.peak import bf16_peak_tflops
from superres.bench.reference_bicubic import reference_imresize
from superres.bench.report import append_section
from superres.bench.timing import FULL, QUICK
from superres.bench.training import training_cases
from superres.commands import main
from superres.data.resize import imresize
from superres.models import REGISTRY, create_model
from superres.precision import inference_precision, training_precision
from superres.profiles import PROFILES_DIR, apply_profile, load_profile


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_bench_writes_valid_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no project here: the pipeline part is skipped with a reason
    result = CliRunner().invoke(main, ["bench", "--quick", "--no-append", "--device", "cpu", "-o", "out.json"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "BENCHMARKS.md").exists()
    data = json.loads((tmp_path / "out.json").read_text())

    meta = data["meta"]
    assert meta["device"] == "cpu" and meta["torch"] == torch.__version__
    assert meta["command"] == "superres bench --quick --device cpu"
    assert meta["machine"]["cores"] >= 1 and meta["machine"]["cpu"]

    rows = data["training"]
    assert {r["arch"] for r in rows} == {"srcnn", "edsr"}
    for row in rows:
        assert "error" not in row, row
        for key in ("trainer_patches_per_s", "plain_patches_per_s", "ratio"):
            assert _positive(row[key]), (key, row)
        low, high = row["ratio_quartiles"]  # on the CPU the two loops run one step of each in turn
        assert low <= row["ratio"] <= high and row["steps"] == QUICK.min_steps

    peak = data["peak"]
    assert all(_positive(peak[f"{op}_{p}_tflops"]) for op in ("matmul", "conv") for p in ("fp32", "bf16"))
    auto = training_precision("auto", "auto", torch.device("cpu"))
    precision = data["precision"]  # fp32 NCHW against auto, the same plain step
    assert [r["arch"] for r in precision] == ["srcnn", "edsr"]
    for row in precision:
        assert "error" not in row, row
        assert row["auto"] == auto.describe() and _positive(row["speedup"]) and row["steps"] >= QUICK.min_steps
        assert row["fp32_tflops"] / row["auto_tflops"] == pytest.approx(row["auto_ms"] / row["fp32_ms"])
        assert row["fp32_mfu"] == pytest.approx(row["fp32_tflops"] / peak["peak_fp32_tflops"])
    engines = data["engines"]  # every architecture, case and engine, the same tiles
    assert {(r["arch"], r["scale"], r["engine"]) for r in engines} == {
        (arch, scale, engine) for arch in ("srcnn", "edsr") for scale in (2, 4) for engine in ENGINES}
    for row in engines:
        if row["arch"] == "srcnn" and row["engine"] == "onnxruntime":  # its bicubic has no dynamic-shape export
            assert "cannot be exported to ONNX" in row["error"]
            continue
        assert "error" not in row, row
        assert _positive(row["output_mp_per_s"]) and _positive(row["tflops"]) and _positive(row["mfu"])
    upscale_auto = next(r for r in engines if r["arch"] == "edsr" and r["engine"] == "torch auto")
    assert upscale_auto["precision"] == inference_precision("edsr", torch.device("cpu")).describe()
    assert "Attainable peak" in result.output and "Upscaling, tile by tile" in result.output

    assert data["mfu"] == {"skipped": "no CUDA"}
    loading = data["data_loading"]
    assert loading and all(_positive(r["loader_patches_per_s"]) and _positive(r["ratio"]) for r in loading)

    deg = data["degradation"]
    assert all(_positive(deg[k]) for k in ("project_mp_per_s", "reference_mp_per_s", "speedup"))
    assert deg["max_abs_diff"] < 1e-5

    untiled = next(r for r in data["inference"] if r["case"] == "untiled")
    assert _positive(untiled["output_mp_per_s"]) and untiled["peak_rss_mib"] > 50  # torch alone takes more

    assert "skipped" in data["pipeline"]
    for target in data["targets"]:
        assert target["passed"] in (True, False, None)
        assert target["passed"] is None or math.isfinite(target["value"])  # an overhead may be negative
    assert "| target | wanted | measured | result |" in result.output


@pytest.mark.parametrize("scale", [0.25, 0.5, 3.0])
def test_reference_bicubic_agrees_with_the_project(scale):
    img = np.random.default_rng(0).random((23, 17, 3))
    ours = imresize(torch.from_numpy(img).permute(2, 0, 1), scale=scale).permute(1, 2, 0).numpy()
    assert np.abs(reference_imresize(img, scale) - ours).max() < 1e-12


def test_bf16_peak_by_device_name():
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bf16_peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert bf16_peak_tflops("Some Other GPU") is None


def test_unknown_architecture_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["bench", "--quick", "--no-append", "--arch", "nosuch"])
    assert result.exit_code != 0 and "--arch nosuch" in result.output
    assert not (tmp_path / "bench.json").exists()


def test_a_new_section_goes_above_the_older_ones(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nMachine notes.\n\n## 2026-01-01: older\n\nold figures\n")
    append_section(path, "## 2026-11-23: newer\n\nnew figures\n")
    text = path.read_text()
    assert text.index("Machine notes.") < text.index("newer") < text.index("older") and "old figures" in text
    append_section(tmp_path / "missing.md", "## first\n")
    assert (tmp_path / "missing.md").read_text().startswith("# Benchmarks\n\n## first")


@pytest.mark.parametrize("active", ["default", "paper"])
def test_training_cases_are_the_train_stage_sizes_of_each_profile(tmp_path, monkeypatch, active):
    """Each case has the scale, crop and batch that the train stage uses under that profile (an
    architecture's own ``train`` keys over the shared ones), whichever profile params.yaml holds."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / PROFILES_DIR, tmp_path / PROFILES_DIR)
    monkeypatch.chdir(tmp_path)
    apply_profile(active)
    params = load_profile("params", ".")
    cuda = training_cases(params, FULL, torch.device("cuda"), profiles_dir=PROFILES_DIR)
    cpu = training_cases(params, FULL, torch.device("cpu"), profiles_dir=PROFILES_DIR)
    trained = [a for a in REGISTRY if a != "bicubic"]
    assert [(c["arch"], c["size"]) for c in cuda] == [(a, s) for a in trained for s in ("default", "paper")]
    for size in ("default", "paper"):
        profile = load_profile(size)
        scale, prepared = profile["prepare"]["scale"], profile["prepare"]["patch_size"]
        of_size = ([c for c in cases if c["size"] == size] for cases in (cuda, cpu))
        for case, on_cpu in zip(*of_size, strict=True):
            train = {**profile["train"], **profile[case["arch"]]["train"]}
            crop = train.get("patch_size") or prepared
            assert case["scale"] == scale and case["model"] == dict(profile[case["arch"]]["model"])
            assert (case["lr_patch"] * scale, case["prepared_lr_patch"] * scale) == (crop, prepared), case
            assert case["batch"] == train["batch_size"], case
            if size == "default":
                assert on_cpu["batch"] == case["batch"]
            else:  # the CPU cuts a paper batch to its pixel budget, never below one patch
                assert on_cpu["batch"] == max(1, min(case["batch"], FULL.cpu_paper_pixels // crop**2)), on_cpu
    by_key = {(c["arch"], c["size"]): c for c in cuda}
    assert by_key["srresnet", "paper"]["lr_patch"] == 24 and by_key["srcnn", "paper"]["batch"] == 128
    assert by_key["srresnet", "default"]["lr_patch"] == 16


def test_training_cases_outside_a_project_use_the_constructor_defaults(tmp_path):
    cases = training_cases(None, FULL, torch.device("cpu"), ("edsr",), profiles_dir=tmp_path)
    assert [(c["size"], c["source"], c["model"]) for c in cases] == [("default", "constructor defaults", {}),
                                                                      ("paper", "constructor defaults", {})]


def test_on_a_gpu_a_machine_that_slows_down_during_a_case_does_not_tilt_the_ratio(monkeypatch):
    """Windows in the order plain, trainer, trainer, plain: a drift shared by both loops cancels, as
    it would not if one loop's first window were set against the other's later one."""
    order = []

    def drifting(name):  # equal speed for both loops, 10 patches/s slower with every window
        def rate(*args, **kwargs):
            order.append(name)
            value = 100.0 - 10 * (len(order) - 1)
            return (value, 5, 1) if name == "plain" else value
        return rate

    monkeypatch.setattr(training, "plain_loop_rate", drifting("plain"))
    monkeypatch.setattr(training, "trainer_rate", drifting("trainer"))
    row = training._windows(torch.nn.Identity(), None, 4, torch.device("cuda"), QUICK, 8, {})
    assert order == ["plain", "trainer", "trainer", "plain"]
    assert row["ratio"] == pytest.approx(1.0)  # the best of each (100 against 90) would read 0.9
    assert row["noise"] == pytest.approx(30 / 85)


def test_on_the_cpu_each_loop_is_timed_without_the_other(monkeypatch):
    """One plain step runs inside each trainer log; neither loop's time may include the other's."""
    now = [0.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: now[0])

    def plain(step):  # a plain step takes 1 s, a trainer step 3 s (below)
        now[0] += 1.0

    probe = training._Interleaved(plain)
    for step in range(1, 5):
        now[0] += 3.0
        probe.on_log(step, {})
    assert probe.plain_s == {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}
    assert probe.trainer_s == {2: 3.0, 3: 3.0, 4: 3.0}  # the first step also holds the set-up: not timed


def test_interleaved_rates_time_as_many_steps_of_each_loop_as_asked():
    """A real run: as many timed steps of each loop as asked, the figures consistent with each other."""
    torch.manual_seed(0)
    patches = training.random_patches(8, 8, 2)
    figures = training.interleaved_rates(create_model("srcnn", scale=2), patches, batch=2, steps=5, warmup=1, lr_crop=8)
    assert figures["steps"] == 5
    low, high = figures["ratio_quartiles"]
    assert 0 < low <= figures["ratio"] <= high
    assert figures["trainer_patches_per_s"] > 0 and figures["plain_patches_per_s"] > 0
