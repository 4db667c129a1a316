"""Nodes of the report pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from superres.errors import SuperresError
from superres.reporting import (
    MEASURED,
    benchmark_markdown,
    benchmark_table,
    comparison_table,
    crop_rows,
    html_report,
    published_table,
    report_figures,
    to_markdown,
)
from superres.training.tracking import KIND_TAG, Tracker, default_tracking_uri

log = logging.getLogger(__name__)

Lazy = Mapping[str, Callable[[], Any]]


def _by_architecture(partitions: Lazy, suffix: str, architectures: list[str]) -> dict[str, Any]:
    """Load the partitions ``<arch>/<suffix>`` of the architectures asked for."""
    missing = [a for a in architectures if f"{a}/{suffix}" not in partitions]
    if missing:
        raise SuperresError(
            f"no {suffix} for {', '.join(missing)}; run their pipelines first (`kedro run --pipelines={missing[0]}`)"
        )
    return {a: partitions[f"{a}/{suffix}"]() for a in architectures}


def compare(
    per_image: Lazy, configs: Lazy, timings: Lazy, architectures: list[str], prepare: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The comparison of ``architectures`` on the test split and on the benchmark sets (with the
    published reference rows), as tables and as Markdown."""
    config_of = _by_architecture(configs, "config", architectures)
    timing_of = _by_architecture(timings, "timing", architectures)
    table = comparison_table(_by_architecture(per_image, "per_image", architectures), config_of, timing_of)
    benchmarks = benchmark_table(_by_architecture(per_image, "benchmarks", architectures), config_of, timing_of)
    log.info("comparison on the test split:\n%s", table.to_string(index=False))
    if len(benchmarks):
        log.info("comparison on the benchmarks:\n%s", benchmarks.to_string(index=False))
    scale = int(prepare["scale"])
    markdown = to_markdown(table, published_table(scale), "superres: comparison on the test split", scale)
    return table, benchmarks, markdown + benchmark_markdown(benchmarks)


def plot(table: pd.DataFrame, benchmarks: pd.DataFrame, per_image: Lazy, histories: Lazy, architectures: list[str]) -> dict[str, Figure]:
    """Every plot of the report, by file name."""
    return report_figures(table, _by_architecture(per_image, "per_image", architectures),
                          _by_architecture(histories, "history", architectures), benchmarks)


def save_plots(figures: dict[str, Figure]) -> dict[str, Figure]:
    """The same figures, for the catalog to write as PNG files (the page and MLflow reuse them
    in memory)."""
    return figures


def render_html(
    table: pd.DataFrame,
    benchmarks: pd.DataFrame,
    figures: Mapping[str, Figure],
    sr_images: Lazy,
    test_hr: Lazy,
    test_lr: Lazy,
    architectures: list[str],
    prepare: Mapping[str, Any],
    report: Mapping[str, Any],
    profile: str,
) -> str:
    """A self-contained page: the table, the published reference rows, the plots and crops of
    a few test images."""
    scale, crop_size = int(prepare["scale"]), int(report["crop_size"])
    names = sorted(test_hr)[: int(report["crops"])]
    outputs = {a: {n: sr_images[f"{a}/images/{n}"]() for n in names if f"{a}/images/{n}" in sr_images} for a in architectures}
    crops = crop_rows({n: test_hr[n]() for n in names}, {n: test_lr[n]() for n in names}, outputs, scale, crop_size)
    return html_report(table, published_table(scale), figures, crops, profile=profile, scale=scale,
                       n_test=len(test_hr), crop_size=crop_size, benchmarks=benchmarks)


def log_report(
    table: pd.DataFrame,
    benchmarks: pd.DataFrame,
    markdown: str,
    html: str,
    figures: Mapping[str, Figure],
    architectures: list[str],
    tracking: Mapping[str, Any],
    profile: str,
) -> None:
    """Record the comparison as an MLflow run of its own (run name ``report``): the tables, the
    page and the plots as artifacts; each architecture's PSNR-Y and SSIM-Y on the test split and
    on every benchmark as metrics (``<arch>.test/psnr_y``, ``<arch>.set5_x4/psnr_y``)."""
    tracker = Tracker(default_tracking_uri(Path.cwd()), tracking["experiment"])
    run_id = tracker.start_run("report", {"profile": profile, "architectures": ",".join(architectures)},
                               tags={KIND_TAG: "report"})
    metrics = {f"{arch}.test/{m}": value for m in ("psnr_y", "ssim_y")
               for arch, value in zip(table["architecture"], table[f"test/{m}"], strict=True)}
    measured = benchmarks[benchmarks["source"] == MEASURED]
    metrics.update({f"{r.architecture}.{r.benchmark}_x{r.scale}/{m}": getattr(r, m)
                    for r in measured.itertuples() for m in ("psnr_y", "ssim_y")})
    tracker.log_metrics(run_id, metrics)
    tracker.log_text(run_id, table.to_csv(index=False), "comparison.csv")
    tracker.log_text(run_id, benchmarks.to_csv(index=False), "benchmarks.csv")
    tracker.log_text(run_id, markdown, "comparison.md")
    tracker.log_text(run_id, html, "report.html")
    for name, figure in figures.items():
        tracker.log_figure(run_id, figure, f"plots/{name}")
    tracker.end_run(run_id)
