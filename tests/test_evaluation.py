"""The evaluation library and `superres evaluate`: the same numbers as the metrics applied by hand, any
folder of HR images made into the pairs the benchmarks stage makes, a trained model measured at its
own scale and bicubic at every scale, and the command on real PNG files with real models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from superres.commands import main
from superres.data.benchmarks import benchmark_plan, load_pairs, write_benchmarks
from superres.data.degrade import degrade
from superres.data.imageio import write_png
from superres.errors import ConfigError
from superres.evaluation import BENCHMARK_COLUMNS, evaluate, evaluate_benchmarks, evaluate_model, folder_pairs
from superres.inference import for_inference, super_resolve
from superres.metrics import image_metrics
from superres.models import create_model
from superres.models.weights import Weights, save_weights
from superres.precision import inference_precision


def smooth(h, w, seed):
    """A smooth uint8 RGB picture with a little noise: finite PSNR, not trivially reproduced."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([128 + 90 * np.sin(x / 5 + c) * np.cos(y / 7 - c) for c in range(3)], axis=-1)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def photos(tmp_path):
    """A folder of HR photographs as a user has them: PNG files of different sizes, one in a subfolder."""
    folder = tmp_path / "My Photos"
    write_png(folder / "wide.png", smooth(30, 44, 0))
    write_png(folder / "more" / "tall.png", smooth(40, 32, 1))
    return folder


def edsr_weights(scale=2, seed=0):
    torch.manual_seed(seed)
    model = create_model("edsr", scale=scale, n_resblocks=1, n_feats=8)
    config = {"architecture": "edsr", "scale": scale, "model": {"n_resblocks": 1, "n_feats": 8}}
    return Weights(model.state_dict(), config)


def test_evaluate_gives_the_metrics_of_each_image_and_their_means():
    hr = {f"im{i}": smooth(24, 24, i) for i in range(3)}
    pairs = {name: (degrade(im, 2), im) for name, im in hr.items()}
    lazy = {name: (lambda lr=lr: lr, lambda im=im: im) for name, (lr, im) in pairs.items()}
    weights = edsr_weights()
    result = evaluate(weights, pairs, keep_outputs=True)
    model = for_inference(weights.build("cpu"), "edsr", torch.device("cpu"))  # the policy of superres upscale
    expected = [image_metrics(super_resolve(model, pairs[n][0]), hr[n], 2) for n in sorted(hr)]
    assert list(result.per_image.columns) == ["image", "psnr_y", "ssim_y", "psnr_rgb", "mae", "mse"]
    assert list(result.per_image["image"]) == sorted(hr)
    assert result.per_image["psnr_y"].tolist() == [m["psnr_y"] for m in expected]
    assert result.means["ssim_y"] == pytest.approx(np.mean([m["ssim_y"] for m in expected]))
    assert sorted(result.outputs) == sorted(hr) and result.outputs["im0"].shape == (24, 24, 3)
    again = evaluate(model, lazy, 2)  # a bare module with its scale, images loaded when needed
    assert again.per_image.equals(result.per_image) and again.outputs == {}
    with pytest.raises(ConfigError, match="no per-image metrics"):
        evaluate(weights, {})


def test_an_hr_folder_becomes_the_pairs_the_benchmarks_stage_writes(photos, tmp_path):
    sets = folder_pairs([photos], [2, 3], tmp_path / "work", max_pixels=10**7)
    plan = benchmark_plan({"folders": {"my_photos": photos}, "scales": [2, 3]}, 2)
    write_benchmarks(tmp_path / "stage", *plan, max_pixels=10**7)
    stage = load_pairs(tmp_path / "stage")
    assert list(sets) == list(stage) == ["my_photos_x2", "my_photos_x3"]
    for key in stage:
        assert sorted(sets[key]) == sorted(stage[key]) == ["tall", "wide"]
        for name, (lr, hr) in stage[key].items():
            assert np.array_equal(sets[key][name][0](), lr()) and np.array_equal(sets[key][name][1](), hr())
    # a folder the stage wrote, and one set of it, are read as they are
    assert list(folder_pairs([tmp_path / "stage"], [2], tmp_path / "w2", max_pixels=10**7)) == list(stage)
    assert list(folder_pairs([tmp_path / "stage" / "my_photos_x3"], [2], tmp_path / "w3", max_pixels=10**7)) == \
        ["my_photos_x3"]
    with pytest.raises(ConfigError, match="given twice"):
        folder_pairs([tmp_path / "stage", tmp_path / "stage"], [2], tmp_path / "w4", max_pixels=10**7)
    with pytest.raises(ConfigError, match="is not a folder"):
        folder_pairs([tmp_path / "nowhere"], [2], tmp_path / "w5", max_pixels=10**7)


def test_a_trained_model_is_measured_at_its_scale_and_bicubic_at_every_scale(photos, tmp_path):
    sets = folder_pairs([photos], [2, 3], tmp_path / "work", max_pixels=10**7)
    per_benchmark, means = evaluate_benchmarks(edsr_weights(), sets)
    assert list(per_benchmark.columns) == BENCHMARK_COLUMNS and set(per_benchmark["dataset"]) == {"my_photos_x2"}
    assert means["my_photos_x2/psnr_y"] == pytest.approx(per_benchmark["psnr_y"].mean())
    bicubic = create_model("bicubic", scale=2)
    per_benchmark, means = evaluate_benchmarks(bicubic, sets, config={"architecture": "bicubic", "scale": 2})
    assert sorted(set(per_benchmark["scale"])) == [2, 3]
    lr, hr = sets["my_photos_x3"]["wide"]
    x3 = per_benchmark.query("dataset == 'my_photos_x3' and image == 'wide'").iloc[0]
    assert x3["psnr_y"] == image_metrics(super_resolve(create_model("bicubic", scale=3), lr()), hr(), 3)["psnr_y"]


def test_evaluate_model_gives_the_keys_of_metrics_json_and_the_timing(photos, tmp_path):
    test = {"a": (degrade(smooth(24, 24, 5), 2), smooth(24, 24, 5))}
    sets = folder_pairs([photos], [2], tmp_path / "work", max_pixels=10**7)
    evaluation = evaluate_model(edsr_weights(), test, sets, device="cpu")
    keys = {"psnr_y", "ssim_y", "psnr_rgb", "mae", "mse"}
    assert set(evaluation.metrics) == {f"test/{k}" for k in keys} | {f"my_photos_x2/{k}" for k in keys}
    assert list(evaluation.metrics) == sorted(evaluation.metrics) and json.loads(json.dumps(evaluation.metrics))
    assert list(evaluation.timing) == ["latency_ms", "latency_input", "device", "precision", "machine"]
    assert evaluation.timing["precision"] == evaluation.precision.record()
    assert evaluation.precision == inference_precision("edsr", torch.device("cpu"))  # as superres upscale
    assert evaluation.timing["latency_input"] == "256x256" and evaluation.latency_s > 0
    assert list(evaluation.sr_images) == ["a"] and list(evaluation.per_image["image"]) == ["a"]


# --- superres evaluate ---------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)], catch_exceptions=False)


def test_the_command_measures_bicubic_on_a_folder_of_photographs(photos, tmp_path):
    result = invoke("bicubic", "--benchmarks", photos, "--scale", 3, "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("my_photos_x3"))
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["model"] == "bicubic" and record["scale"] == 3
    assert line.split()[1:4] == ["x3", "2", f"{record['metrics']['my_photos_x3/psnr_y']:.2f}"]
    sets = folder_pairs([photos], [3], tmp_path / "work", max_pixels=10**7)
    expected = evaluate_model(create_model("bicubic", scale=3), benchmarks=sets, latency=False,
                              config={"architecture": "bicubic", "scale": 3})
    assert record["metrics"] == expected.metrics


def test_the_command_measures_saved_weights_at_their_scale_only(photos, tmp_path):
    save_weights(tmp_path / "edsr_x2", edsr_weights())
    stage = tmp_path / "stage"
    write_benchmarks(stage, *benchmark_plan({"folders": {"mine": photos}, "scales": [2, 3]}, 2), max_pixels=10**7)
    result = invoke(tmp_path / "edsr_x2", "--benchmarks", stage, "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out.json").read_text())["metrics"]
    assert {key.split("/")[0] for key in metrics} == {"mine_x2"}
    expected = evaluate_model(edsr_weights(), benchmarks=load_pairs(stage), device="cpu", latency=False).metrics
    assert metrics == expected
    wrong = invoke(tmp_path / "edsr_x2", "--benchmarks", stage / "mine_x3")
    assert wrong.exit_code == 1 and "no set at x2" in wrong.output and "mine_x3" in wrong.output
    missing = invoke("bicubic", "--benchmarks", tmp_path / "nowhere")
    assert missing.exit_code == 1 and "--benchmarks" in missing.output and "is not a folder" in missing.output
