"""The report pipeline through Kedro's runner, on what the architecture pipelines returned for bicubic
and a tiny EDSR (:func:`pipeline_runs.zoo_run`), laid out as the catalog's partitions
``<arch>/seed<s>/<file>`` are."""

from __future__ import annotations

from functools import partial

import mlflow
import pytest
from matplotlib.figure import Figure
from pipeline_runs import ZOO, run, zoo_run

from superres.pipelines.report import create_pipeline


def partitions(out: dict, suffixes: dict[str, str]) -> dict:
    """``{"<arch>/seed0/<file>": load}`` of the outputs ``<arch>.seed0.<output>``, for ``file: output``."""
    return {f"{arch}/seed0/{file}": partial(lambda value: value, out[f"{arch}.seed0.{output}"])
            for arch in ZOO for file, output in suffixes.items()}


def test_the_zoo_is_compared_and_recorded(tmp_path_factory):
    zoo, entries = zoo_run(tmp_path_factory.getbasetemp() / "zoo")
    images = {f"{arch}/seed0/images/{name}": partial(lambda value: value, image)
              for arch in ZOO for name, image in zoo[f"{arch}.seed0.sr_images"].items()}
    configs = {f"{arch}/seed0/config": partial(lambda value: value, zoo[f"{arch}.seed0.model"].config) for arch in ZOO}
    inputs = {
        "all_per_image_metrics": partitions(zoo, {"per_image": "per_image_metrics", "benchmarks": "benchmark_metrics"}),
        "all_model_configs": configs,
        "all_timings": partitions(zoo, {"timing": "timing"}),
        "all_histories": partitions(zoo, {"history": "history"}),
        "all_sr_images": images,
    }
    keys = ("test_hr", "test_lr", "tracking_uri", "params:architectures", "params:seeds", "params:prepare",
            "params:report", "params:profile", "params:tracking", "params:pretrained")

    out = run(create_pipeline(), {**inputs, **{key: entries[key] for key in keys}})

    table = out["comparison_table"].set_index("architecture")
    assert sorted(table.index) == sorted(ZOO)
    for arch in ZOO:
        assert table.loc[arch, "test/psnr_y"] == pytest.approx(zoo[f"{arch}.seed0.metrics"]["test/psnr_y"])
        assert table.loc[arch, "seeds"] == 1 and table.loc[arch, "test/images"] == 3
    assert "mine" in set(out["benchmark_table"]["benchmark"])
    assert all(arch in out["comparison_markdown"] for arch in ZOO)
    assert out["report_html"].lstrip().lower().startswith("<!doctype html")
    assert out["comparison_plots"] and all(isinstance(f, Figure) for f in out["comparison_plots"].values())

    record = mlflow.MlflowClient(tracking_uri=entries["tracking_uri"]).get_run(out["report_mlflow_run"]["run_id"])
    assert record.info.run_name == "report" and record.info.status == "FINISHED"
    assert record.data.metrics["edsr.test/psnr_y"] == pytest.approx(table.loc["edsr", "test/psnr_y"])
