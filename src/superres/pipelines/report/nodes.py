"""Nodes of the report pipeline: the comparison of every architecture over the seeds of
``params:seeds``, read from the per-seed folders ``<arch>/seed<s>/`` that training and evaluation
write."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from superres.errors import ConfigError, SuperresError
from superres.params.prepare import PrepareParams
from superres.params.pretrained import ROW_PREFIX
from superres.tracking import KIND_TAG, Tracker, registered_name

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from superres.reporting import Comparison

# superres.reporting (matplotlib, SciPy: about a second) is imported in the nodes that use it: every
# `kedro run` imports this module to register the pipelines, and most stages never report.

log = logging.getLogger(__name__)

Lazy = Mapping[str, Callable[[], Any]]

# What each partition is, and the stage that writes it (for the message when one is missing).
WRITTEN_BY = {"per_image": ("per_image.csv", "evaluate"), "benchmarks": ("benchmarks.csv", "evaluate"),
              "timing": ("timing.json", "evaluate"), "config": ("config.json", "train"),
              "history": ("history.csv", "train")}


def check_seeds(seeds: Any) -> list[int]:
    """``params:seeds`` as a list of distinct ints >= 0, or a ConfigError saying what to write."""
    if not isinstance(seeds, (list, tuple)) or not seeds or len(set(seeds)) != len(seeds) or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds in params.yaml must be a non-empty list of distinct integers >= 0, e.g. [0, 1, 2], "
                          f"got {seeds!r}")
    return list(seeds)


def by_run(partitions: Lazy, suffix: str, architectures: list[str], seeds: list[int]) -> dict[str, dict[int, Any]]:
    """Load ``<arch>/seed<s>/<suffix>`` of every architecture and seed asked for; folders of other
    seeds (left by an earlier run with more) are ignored. A missing one is an error naming it and the
    command that makes it."""
    seeds = check_seeds(seeds)
    missing = [(a, s) for a in architectures for s in seeds if f"{a}/seed{s}/{suffix}" not in partitions]
    if missing:
        file, stage = WRITTEN_BY.get(suffix, (suffix, "evaluate"))
        runs = ", ".join(f"{a}/seed{s}/{file}" for a, s in missing[:6]) + (" ..." if len(missing) > 6 else "")
        a, s = missing[0]
        raise SuperresError(f"{len(missing)} run(s) of params.yaml's architectures x seeds have no {file}: {runs}; "
                            f"make them with `dvc repro` (one run: `dvc repro {stage}@{a}-{s}`, or "
                            f"`kedro run --pipelines={a} --namespaces={a}.seed{s}`)")
    stale = sorted({key.rsplit("/", 1)[0] for key in partitions
                    if key.endswith(f"/{suffix}") and key.count("/") == 2 and key.split("/")[0] in architectures
                    and key.split("/")[1] not in {f"seed{s}" for s in seeds}})
    if stale:
        log.info("%s of seeds not in params.yaml's seeds ignored: %s", suffix, ", ".join(stale))
    return {a: {s: partitions[f"{a}/seed{s}/{suffix}"]() for s in seeds} for a in architectures}


def pretrained_runs(partitions: Lazy, suffix: str, pretrained: Mapping[str, Any] | None) -> dict[str, dict[int, Any]]:
    """``pretrained/<name>/<suffix>`` of every checkpoint of ``params:pretrained``, as one run (seed 0)
    of the row ``pretrained:<name>``. A missing one is an error naming the stage that makes it."""
    names = list(pretrained or {})
    missing = [name for name in names if f"pretrained/{name}/{suffix}" not in partitions]
    if missing:
        file = WRITTEN_BY.get(suffix, (suffix, ""))[0]
        raise SuperresError(f"the pretrained checkpoint(s) {', '.join(missing)} have no {file}; make them with "
                            f"`dvc repro pretrained@{missing[0]}` (or `kedro run --pipelines=pretrained "
                            f"--namespaces=pretrained.{missing[0]}`)")
    return {f"{ROW_PREFIX}{name}": {0: partitions[f"pretrained/{name}/{suffix}"]()} for name in names}


def _noted(configs: dict[str, dict[int, Any]]) -> dict[str, dict[int, Any]]:
    """The configs of imported checkpoints with the note the report shows beside their rows."""
    for by_seed in configs.values():
        for config in by_seed.values():
            source = config.get("pretrained", {})
            config.setdefault("notes", []).append(
                f"pretrained: {source.get('origin') or source.get('source', 'published')} weights, measured here")
    return configs


def compare(
    per_image: Lazy,
    configs: Lazy,
    timings: Lazy,
    architectures: list[str],
    seeds: list[int],
    prepare: Mapping[str, Any],
    pretrained: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, str, Comparison]:
    """The comparison of ``architectures`` over ``seeds`` on the test split and on the benchmark sets
    (with the published reference rows), and of the published checkpoints of ``pretrained`` measured
    here (rows ``pretrained:<name>``): comparison.csv, benchmarks.csv, the Markdown report, and the
    whole comparison for the plots, the page and MLflow."""
    from superres.reporting import build_comparison, published_table, to_markdown

    scale = PrepareParams.from_params(prepare).scale
    comparison = build_comparison(
        by_run(per_image, "per_image", architectures, seeds) | pretrained_runs(per_image, "per_image", pretrained),
        by_run(configs, "config", architectures, seeds) | _noted(pretrained_runs(configs, "config", pretrained)),
        by_run(timings, "timing", architectures, seeds) | pretrained_runs(timings, "timing", pretrained),
        by_run(per_image, "benchmarks", architectures, seeds) | pretrained_runs(per_image, "benchmarks", pretrained),
        scale=scale,
    )
    log.info("comparison on the test split over seeds %s:\n%s", seeds, comparison.table.to_string(index=False))
    for note in comparison.notes:
        log.warning("%s", note)
    markdown = to_markdown(comparison, published_table(scale), "superres: comparison on the test split")
    return comparison.table, comparison.benchmarks, markdown, comparison


def plot(comparison: Comparison, histories: Lazy, architectures: list[str], seeds: list[int]) -> dict[str, Figure]:
    """Every plot of the report, by file name."""
    from superres.reporting import report_figures

    return report_figures(comparison, by_run(histories, "history", architectures, seeds))


def save_plots(figures: dict[str, Figure]) -> dict[str, Figure]:
    """The same figures, for the catalog to write as PNG files (the page and MLflow reuse them
    in memory)."""
    return figures


def render_html(
    comparison: Comparison,
    figures: Mapping[str, Figure],
    sr_images: Lazy,
    test_hr: Lazy,
    test_lr: Lazy,
    architectures: list[str],
    seeds: list[int],
    report: Mapping[str, Any],
    profile: str,
) -> str:
    """A self-contained page: the tables, the rankings in words, the published reference rows, the
    machines, the plots and crops of a few test images (each architecture's output of the first
    seed of ``seeds``)."""
    from superres.reporting import crop_rows, html_report, published_table

    seed = check_seeds(seeds)[0]
    crop_size = int(report["crop_size"])
    names = sorted(test_hr)[: int(report["crops"])]
    outputs = {a: {n: sr_images[f"{a}/seed{seed}/images/{n}"]() for n in names
                   if f"{a}/seed{seed}/images/{n}" in sr_images} for a in architectures}
    crops = crop_rows({n: test_hr[n]() for n in names}, {n: test_lr[n]() for n in names}, outputs,
                      comparison.scale, crop_size)
    return html_report(comparison, published_table(comparison.scale), figures, crops, profile=profile,
                       crop_size=crop_size, crop_seed=seed)


def champion(comparison: Comparison, configs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> tuple[str, int] | None:
    """The network the report recommends: the trained architecture (not bicubic, which has no
    parameters, nor an imported checkpoint) with the best test PSNR-Y, the mean over seeds, and its
    seed with the best validation PSNR-Y (ties: the lowest seed), as ``superres upscale`` picks them.
    None when nothing was trained."""
    table = comparison.table
    trained = table[(table["parameters"] > 0) & ~table["architecture"].str.startswith(ROW_PREFIX)
                     & table["architecture"].isin(list(configs)) & table["test/psnr_y"].notna()]
    if trained.empty:
        return None
    architecture = str(trained.loc[trained["test/psnr_y"].idxmax(), "architecture"])
    by_seed = configs[architecture]
    seed = max(by_seed, key=lambda s: (by_seed[s].get("best_val_psnr_y") or float("-inf"), -s))
    return architecture, seed


def log_report(
    comparison: Comparison,
    markdown: str,
    html: str,
    figures: Mapping[str, Figure],
    configs: Lazy,
    architectures: list[str],
    seeds: list[int],
    tracking: Mapping[str, Any],
    tracking_uri: str,
    profile: str,
) -> dict[str, Any]:
    """Record the comparison as an MLflow run of its own (run name ``report``) in the store
    ``tracking_uri``: the tables, the page and the plots as artifacts; the figures of every
    architecture and data set as metrics under stable keys (:func:`superres.reporting.report_metrics`:
    ``<arch>.test/psnr_y``, ``<arch>.test/psnr_y_std``, ``<arch>.test/psnr_y_vs_bicubic_ci_low``...);
    the rankings as tags. The run ends FAILED when any of it cannot be logged.

    The recommended network (:func:`champion`) becomes the version of the registered model
    ``superres-x<scale>`` that the alias ``champion`` names, so that ``superres upscale --model
    models:/superres-x2@champion`` and ``mlflow models serve`` use it. Returns the run (``run_id``,
    ``experiment_id``) and what was registered (``champion``, null when nothing was)."""
    from superres.reporting import report_metrics, report_tags

    tracker = Tracker(tracking_uri, tracking["experiment"])
    params = {"profile": profile, "architectures": ",".join(architectures), "seeds": ",".join(map(str, seeds))}
    with tracker.run("report", params, tags={KIND_TAG: "report", **report_tags(comparison)}) as run_id:
        tracker.log_metrics(run_id, report_metrics(comparison))
        tracker.log_text(run_id, comparison.table.to_csv(index=False), "comparison.csv")
        tracker.log_text(run_id, comparison.benchmarks.to_csv(index=False), "benchmarks.csv")
        tracker.log_text(run_id, markdown, "comparison.md")
        tracker.log_text(run_id, html, "report.html")
        for name, figure in figures.items():
            tracker.log_figure(run_id, figure, f"plots/{name}")
        registered = _register_champion(tracker, comparison, by_run(configs, "config", architectures, seeds))
        if registered:
            tracker.set_tags(run_id, {"superres.champion": f"models:/{registered['name']}@{registered['alias']} = "
                                                           f"{registered['architecture']}/seed{registered['seed']} "
                                                           f"(version {registered['version']})"})
    return {"run_id": run_id, "experiment_id": tracker.experiment_id, "champion": registered}


def _register_champion(tracker: Tracker, comparison: Comparison,
                       configs: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict[str, Any] | None:
    best = champion(comparison, configs)
    if best is None:
        return None
    architecture, seed = best
    run_id = tracker.find_run(configs[architecture][seed].get("mlflow_run_id")) or \
        tracker.latest_run(architecture, seed)  # the run the evaluation recorded afresh
    row = comparison.table.set_index("architecture").loc[architecture]
    tags = {"architecture": architecture, "seed": str(seed), "test/psnr_y": f"{row['test/psnr_y']:.4f}"}
    registered = tracker.register_champion(registered_name(comparison.scale), run_id, tags) if run_id else None
    if registered is None:
        log.warning("%s/seed%d is the best network but its MLflow run has no MLflow Model: nothing registered",
                    architecture, seed)
        return None
    log.info("registered %s/seed%d as models:/%s@%s (version %s)", architecture, seed, registered["name"],
             registered["alias"], registered["version"])
    return {**registered, "architecture": architecture, "seed": seed}
