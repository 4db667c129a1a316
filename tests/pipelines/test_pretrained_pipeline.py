"""The pretrained pipeline through Kedro's runner: a published checkpoint (here one the test makes, laid
out as the SRCNN port's) imported and measured beside the zoo of :func:`pipeline_runs.zoo_run`, with
its own MLflow run; then the report with its row ``pretrained:<name>``; and the checks of the entries."""

from __future__ import annotations

from functools import partial

import mlflow
import numpy as np
import pytest
from conftest import write_port_checkpoint
from pipeline_runs import ZOO, pictures, run, zoo_run

from superres.errors import ConfigError
from superres.evaluation import evaluate_model
from superres.models.official import import_official
from superres.pipeline_registry import project_pretrained
from superres.pipelines.pretrained import create_pipeline
from superres.pipelines.pretrained.nodes import entry
from superres.pipelines.report import create_pipeline as report_pipeline


def lazy(value):
    return partial(lambda v: v, value)


def test_a_published_checkpoint_is_measured_and_compared_like_a_trained_model(tmp_path_factory, tmp_path):
    zoo, entries = zoo_run(tmp_path_factory.getbasetemp() / "zoo")
    write_port_checkpoint(tmp_path / "srcnn_x2.pth")
    pretrained = {"port_x2": {"source": str(tmp_path / "srcnn_x2.pth"), "arch": "srcnn", "scale": 2,
                              "origin": "a test's port"},
                  "port_x3": {"source": str(tmp_path / "srcnn_x2.pth"), "arch": "srcnn", "scale": 3}}
    hr = pictures(["c1"], seed=40)[1]["c1"]()[:39, :48]  # an x3 pair: LR by subsampling will do here
    benchmarks = {**entries["benchmark_pairs"], "mine_x3": {"c1": (lambda: hr[::3, ::3], lambda: hr)}}
    inputs = {key: entries[key] for key in ("test_lr", "test_hr", "tracking_uri", "params:data", "params:prepare",
                                           "params:evaluate", "params:tracking")}
    inputs.update({"benchmark_pairs": benchmarks, "params:pretrained.port_x2": pretrained["port_x2"],
                   "params:pretrained.port_x3": pretrained["port_x3"]})

    out = run(create_pipeline(["port_x2", "port_x3"]), inputs)

    weights = out["pretrained.port_x2.model"]
    assert weights.config["architecture"] == "srcnn" and weights.config["model"]["color"] == "y"
    assert weights.config["pretrained"]["origin"] == "a test's port"
    assert weights.config["parameters"] == (81 * 8 + 8) + (8 * 4 + 4) + (4 * 25 + 1)  # 9-1-5 with 8 and 4 filters
    test = {n: (entries["test_lr"][n], entries["test_hr"][n]) for n in entries["test_hr"]}
    direct = evaluate_model(import_official(tmp_path / "srcnn_x2.pth", "srcnn", 2), test, benchmarks,
                            latency=False)  # as the pipeline's evaluate.precision: auto
    metrics = out["pretrained.port_x2.metrics"]
    assert metrics["test/psnr_y"] == pytest.approx(direct.means["test/psnr_y"])
    bicubic = zoo["bicubic.seed0.metrics"]["test/psnr_y"]  # the imported network computes bicubic on Y
    assert metrics["test/psnr_y"] == pytest.approx(bicubic, abs=0.05)
    assert metrics["mine_x2/psnr_y"] == pytest.approx(direct.means["mine_x2/psnr_y"])
    assert "mine_x3/psnr_y" not in metrics and len(out["pretrained.port_x2.per_image_metrics"]) == 3
    at_x3 = out["pretrained.port_x3.metrics"]  # not at prepare.scale: the benchmarks at x3 only
    assert set(at_x3) == {f"mine_x3/{m}" for m in ("psnr_y", "ssim_y", "psnr_rgb", "mae", "mse")}
    assert out["pretrained.port_x3.per_image_metrics"].empty

    client = mlflow.MlflowClient(tracking_uri=entries["tracking_uri"])
    record = client.get_run(out["pretrained.port_x2.mlflow_run"]["run_id"])
    assert record.info.run_name == "pretrained:port_x2" and record.info.status == "FINISHED"
    assert record.data.tags["superres.kind"] == "pretrained"
    assert record.data.metrics["test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
    assert record.data.params["sha256"] == weights.config["pretrained"]["sha256"]

    def parts(name: str, files: dict[str, str]) -> dict:
        return {f"pretrained/{name}/{file}": lazy(out[f"pretrained.{name}.{output}"]) for file, output in files.items()}

    def zoo_parts(files: dict[str, str]) -> dict:
        return {f"{arch}/seed0/{file}": lazy(zoo[f"{arch}.seed0.{output}"]) for arch in ZOO
                for file, output in files.items()}

    measured = {"per_image": "per_image_metrics", "benchmarks": "benchmark_metrics"}
    report_inputs = {
        "all_per_image_metrics": zoo_parts(measured) | parts("port_x2", measured) | parts("port_x3", measured),
        "all_model_configs": {f"{a}/seed0/config": lazy(zoo[f"{a}.seed0.model"].config) for a in ZOO}
        | {f"pretrained/{n}/config": lazy(out[f"pretrained.{n}.model"].config) for n in pretrained},
        "all_timings": zoo_parts({"timing": "timing"}) | parts("port_x2", {"timing": "timing"})
        | parts("port_x3", {"timing": "timing"}),
        "all_histories": zoo_parts({"history": "history"}),
        "all_sr_images": {},
        **{key: entries[key] for key in ("test_hr", "test_lr", "tracking_uri", "params:architectures",
                                         "params:seeds", "params:prepare", "params:report", "params:profile",
                                         "params:tracking")},
        "params:pretrained": pretrained,
    }
    report = run(report_pipeline(), report_inputs)
    table = report["comparison_table"].set_index("architecture")
    assert set(table.index) == {*ZOO, "pretrained:port_x2"}
    assert table.loc["pretrained:port_x2", "test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
    assert "pretrained: a test's port weights, measured here" in table.loc["pretrained:port_x2", "notes"]
    bench = report["benchmark_table"]
    assert "pretrained:port_x3" in set(bench.loc[bench["benchmark"] == "mine", "architecture"])
    assert "pretrained:port_x2" in report["comparison_markdown"]
    machines = report["comparison"].machines
    assert not machines.empty and "pretrained:port_x2 seed 0 (evaluate)" in " ".join(machines["runs"])
    logged = client.get_run(report["report_mlflow_run"]["run_id"]).data.metrics
    assert logged["pretrained:port_x2.test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])

    del report_inputs["all_timings"]["pretrained/port_x3/timing"]
    with pytest.raises(Exception, match=r"port_x3 have no timing.json; make them with `dvc repro pretrained@port_x3`"):
        run(report_pipeline(), report_inputs)
    assert np.isfinite(metrics["test/psnr_y"])


def test_entries_are_checked_by_name(tmp_path):
    good = {"source": "weights.pth", "arch": "imdn", "scale": 2}
    assert entry("imdn_x2", good).arch == "imdn"
    with pytest.raises(ConfigError, match=r"pretrained\.imdn_x2\.scale must be one of 2, 3, 4, 8, got 5"):
        entry("imdn_x2", {**good, "scale": 5})
    with pytest.raises(ConfigError, match=r"pretrained\.imdn_x2\.url: unknown key; known keys are source, arch"):
        entry("imdn_x2", {**good, "url": "x"})
    with pytest.raises(ConfigError, match=r"pretrained\.imdn_x2\.sha256 must be 64 hexadecimal characters"):
        entry("imdn_x2", {**good, "sha256": "abc"})
    with pytest.raises(ConfigError, match=r"pretrained\.imdn_x2: must be a mapping of keys"):
        entry("imdn_x2", "weights.pth")
    with pytest.raises(ConfigError, match=r"the name 'IMDN-x2' must be lowercase letters"):
        entry("IMDN-x2", good)
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "superres"\nproject_name = "x"\n'
                                              'kedro_init_version = "1.0.0"\n')
    (tmp_path / "params.yaml").write_text("pretrained:\n  imdn_x2: {source: a.pth, arch: imdn, scale: 2}\n")
    assert project_pretrained(tmp_path) == ["imdn_x2"]
    (tmp_path / "params.yaml").write_text("pretrained: [imdn_x2]\n")
    with pytest.raises(ConfigError, match="pretrained must be a mapping of names to checkpoints"):
        project_pretrained(tmp_path)
