"""The comparison of architectures over seeds: tables, rankings in words, plots and a
self-contained HTML page.

Pure functions of the evaluation results of every architecture and seed; the report pipeline
feeds them and the catalog writes what they return. The statistics (spread over seeds, paired
bootstrap intervals, when two architectures can be told apart, how many decimals a number
deserves) are those of :mod:`superres.stats`.

For every data set (the test split, and each benchmark at each scale) and every architecture:

* each metric's mean over seeds of the per-seed mean over images, and its standard deviation
  over seeds (``<metric>_std``; NaN with one seed);
* the per-image paired difference of PSNR-Y (each image's PSNR-Y averaged over the seeds) against
  bicubic and against the next architecture of the ranking, with its 95% bootstrap interval
  (``psnr_y_vs_bicubic``, ``psnr_y_vs_next``, each with ``_ci_low`` and ``_ci_high``);
* whether it can be told apart from the next one (``told_apart_from_next``), and why, in words.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from jinja2 import Environment
from matplotlib.figure import Figure
from PIL import Image

from superres.metrics import METRICS, psnr
from superres.stats import (
    CONFIDENCE,
    MIN_IMAGES_FOR_CI,
    N_RESAMPLES,
    SIGNIFICANT_DIGITS,
    PairedDifference,
    SeedSpread,
    confidence_words,
    format_difference,
    format_spread,
    neighbour_verdict,
    paired_difference,
    seed_spread,
)

BASELINE = "bicubic"
TEST = "test"  # the data set key of the test split; a benchmark's is <set>_x<scale>
FEW_IMAGES = 10  # below this many images a data set gets a plain warning in the report
DEFAULT_DECIMALS = {"psnr_y": 2, "psnr_rgb": 2, "ssim_y": 4, "mae": 4, "mse": 5}  # where no uncertainty is known
METRIC_LABELS = {"psnr_y": "PSNR-Y (dB)", "ssim_y": "SSIM-Y", "psnr_rgb": "PSNR-RGB (dB)", "mae": "MAE", "mse": "MSE"}
GAN_WHY = ("adversarial and perceptual losses aim at perceptual quality, and PSNR favours smooth averages, so a "
           "lower value does not mean a worse-looking image")
GAN_NOTE = f"GAN: judged by PSNR-Y, which it is not trained for ({GAN_WHY})"
# the machine record's keys shown first, in this order; other keys follow
MACHINE_KEYS = ("cpu", "cpus", "threads", "device", "device_name", "torch", "python")

T = TypeVar("T")
Runs = Mapping[str, Mapping[int, T]]  # architecture -> seed -> what that run wrote


def is_gan(config: Mapping[str, Any]) -> bool:
    """Whether the run trained adversarially (``train.gan_start`` set): SRGAN, ESRGAN."""
    return (config.get("train") or {}).get("gan_start") is not None


# --- the numbers ---------------------------------------------------------------------------------


def per_image_frame(test: Runs[pd.DataFrame], benchmarks: Runs[pd.DataFrame] | None, scale: int) -> pd.DataFrame:
    """Every measured image of every run in one long frame: ``architecture, seed, dataset, benchmark,
    scale, image`` and the metrics. The test split is the data set ``test`` (benchmark ``test``, at
    ``scale``); the benchmark rows keep their ``<set>_x<scale>`` key."""
    columns = ["architecture", "seed", "dataset", "benchmark", "scale", "image"]
    frames = [frame.assign(architecture=arch, seed=int(seed), dataset=TEST, benchmark=TEST, scale=int(scale))
              for arch, by_seed in test.items() for seed, frame in by_seed.items()]
    frames += [frame.assign(architecture=arch, seed=int(seed))
               for arch, by_seed in (benchmarks or {}).items() for seed, frame in by_seed.items() if len(frame)]
    if not frames:
        return pd.DataFrame(columns=[*columns, *METRICS])
    long = pd.concat(frames, ignore_index=True)
    metrics = [m for m in METRICS if m in long]
    long = long[[*columns, *metrics]].astype({"image": str, "scale": int, "seed": int})
    return long.astype(dict.fromkeys(metrics, float))


def image_means(data: pd.DataFrame, metric: str = "psnr_y") -> pd.DataFrame:
    """``metric`` per image (rows) and architecture (columns), averaged over the seeds."""
    return data.groupby(["image", "architecture"], sort=False)[metric].mean().unstack("architecture")


SUMMARY_DIFFERENCES = ["psnr_y_vs_bicubic", "psnr_y_vs_bicubic_ci_low", "psnr_y_vs_bicubic_ci_high", "next",
                       "psnr_y_vs_next", "psnr_y_vs_next_ci_low", "psnr_y_vs_next_ci_high", "told_apart_from_next"]


def _difference_columns(prefix: str, difference: PairedDifference) -> dict[str, float]:
    return {prefix: difference.mean, f"{prefix}_ci_low": difference.low, f"{prefix}_ci_high": difference.high}


def summarise(data: pd.DataFrame) -> pd.DataFrame:
    """One data set (rows of :func:`per_image_frame` with one ``dataset``): one row per architecture,
    best mean PSNR-Y first, with ``seeds``, ``images``, each metric's mean and ``_std`` over seeds,
    the paired differences of PSNR-Y against bicubic and the next architecture (with intervals),
    ``told_apart_from_next`` and ``verdict`` (the reason, in words)."""
    metrics = [m for m in METRICS if m in data and data[m].notna().any()]
    per_seed = data.groupby(["architecture", "seed"], sort=False)[metrics].mean()  # each seed: mean over images
    rows = []
    for arch in dict.fromkeys(data["architecture"]):
        seeds = per_seed.loc[arch]
        row: dict[str, Any] = {"architecture": arch, "seeds": len(seeds),
                               "images": int(data.loc[data["architecture"] == arch, "image"].nunique())}
        for m in metrics:
            spread = seed_spread(seeds[m].to_numpy())
            row[m], row[f"{m}_std"] = spread.mean, spread.std
        rows.append(row)
    summary = pd.DataFrame(rows).sort_values("psnr_y", ascending=False, kind="stable", na_position="last")
    summary = summary.reset_index(drop=True)
    psnr_y = image_means(data)
    extra: list[dict[str, Any]] = []
    for k, row in enumerate(summary.itertuples()):
        columns: dict[str, Any] = dict.fromkeys(SUMMARY_DIFFERENCES, math.nan) | {"next": "", "verdict": ""}
        columns["told_apart_from_next"] = pd.NA
        if BASELINE in psnr_y and row.architecture != BASELINE:
            columns.update(_difference_columns("psnr_y_vs_bicubic",
                                               paired_difference(psnr_y[row.architecture], psnr_y[BASELINE])))
        if k + 1 < len(summary):
            below = summary.iloc[k + 1]
            difference = paired_difference(psnr_y[row.architecture], psnr_y[below["architecture"]])
            verdict = neighbour_verdict(difference, _spread(summary.iloc[k]), _spread(below))
            columns.update(_difference_columns("psnr_y_vs_next", difference), next=below["architecture"],
                           told_apart_from_next=verdict.told_apart, verdict=verdict.reason)
        extra.append(columns)
    return pd.concat([summary, pd.DataFrame(extra, index=summary.index)], axis=1)


def _spread(row: pd.Series, metric: str = "psnr_y") -> SeedSpread:
    return SeedSpread(float(row[metric]), float(row[f"{metric}_std"]), int(row["seeds"]))


def _costs(by_seed_config: Mapping[int, Mapping], by_seed_timing: Mapping[int, Mapping] | None) -> dict[str, Any]:
    """Size, latency and training cost of one architecture over its seeds (means; latency and
    training time with their spread)."""
    configs = list(by_seed_config.values())
    timings = list((by_seed_timing or {}).values())
    latency = seed_spread([float(t.get("latency_ms", math.nan)) for t in timings])
    seconds = seed_spread([float(c.get("train_seconds", 0.0)) for c in configs])
    return {"parameters": int(configs[0].get("parameters", 0)) if configs else 0,
            "latency_ms": latency.mean, "latency_ms_std": latency.std,
            "iterations": round(float(np.mean([c.get("iterations", 0) for c in configs]))) if configs else 0,
            "train_seconds": seconds.mean, "train_seconds_std": seconds.std}


def run_notes(by_seed_config: Mapping[int, Mapping]) -> str:
    """The notes of an architecture's runs (e.g. a GAN trained without its perceptual loss): a note of
    every seed once, one of some seeds with them named; then the GAN note for a GAN."""
    seeds = list(by_seed_config)
    found: dict[str, list[int]] = {}
    for seed, config in by_seed_config.items():
        for note in config.get("notes", []) or []:
            found.setdefault(note, []).append(seed)
    notes = [note if len(found[note]) == len(seeds) else f"seed {', '.join(map(str, found[note]))}: {note}"
             for note in found]
    if any(is_gan(config) for config in by_seed_config.values()):
        notes.append(GAN_NOTE)
    return "; ".join(notes)


# --- the comparison as a whole -------------------------------------------------------------------


@dataclass
class Comparison:
    """Everything the report shows: ``table`` is comparison.csv (the test split, one row per
    architecture), ``benchmarks`` is benchmarks.csv (long, with the published rows); ``summaries``
    holds the ranked summary of every data set (``test``, ``set5_x2``...), ``per_image`` the PSNR-Y
    of every image and architecture (mean over seeds) and ``per_seed`` the same per seed."""

    table: pd.DataFrame
    benchmarks: pd.DataFrame
    summaries: dict[str, pd.DataFrame]
    per_image: pd.DataFrame
    seeds: list[int]
    scale: int
    notes: list[str] = field(default_factory=list)
    machines: pd.DataFrame = field(default_factory=pd.DataFrame)
    gans: list[str] = field(default_factory=list)

    @property
    def test_images(self) -> int:
        summary = self.summaries.get(TEST)
        return int(summary["images"].max()) if summary is not None and len(summary) else 0


def dataset_label(key: str) -> str:
    """``test`` -> ``the test split``; ``set5_x2`` -> ``set5 x2``."""
    if key == TEST:
        return "the test split"
    benchmark, _, scale = key.rpartition("_x")
    return f"{benchmark} x{scale}" if benchmark and scale.isdigit() else key


def _dataset_order(keys: Iterable[str]) -> list[str]:
    order = {name: k for k, name in enumerate(BENCHMARK_ORDER)}

    def rank(key: str) -> tuple:
        if key == TEST:
            return (-1, "", 0)
        benchmark, _, scale = key.rpartition("_x")
        return (order.get(benchmark, len(order)), benchmark, int(scale) if scale.isdigit() else 0)

    return sorted(dict.fromkeys(keys), key=rank)


def comparison_table(summary: pd.DataFrame, configs: Runs[Mapping], timings: Runs[Mapping] | None = None,
                     dataset: str = TEST) -> pd.DataFrame:
    """comparison.csv: the summary of ``dataset`` with its columns prefixed (``test/psnr_y`` is the
    mean over seeds, ``test/psnr_y_std`` its spread...), the architecture's size, latency and
    training cost, the number of seeds and the notes; best mean PSNR-Y first."""
    rows = []
    for row in summary.to_dict("records"):
        arch = row.pop("architecture")
        row.pop("verdict", None)
        seeds = row.pop("seeds")
        rows.append({"architecture": arch, "seeds": seeds,
                     **_costs(configs.get(arch, {}), (timings or {}).get(arch)),
                     **{f"{dataset}/{key}": value for key, value in row.items()},
                     "notes": run_notes(configs.get(arch, {}))})
    return pd.DataFrame(rows)


def build_comparison(
    per_image: Runs[pd.DataFrame],
    configs: Runs[Mapping],
    timings: Runs[Mapping] | None = None,
    benchmarks: Runs[pd.DataFrame] | None = None,
    *,
    scale: int,
) -> Comparison:
    """The comparison of every architecture over its seeds, on the test split (``per_image``, one
    frame per architecture and seed) and on every benchmark (``benchmarks``, the same)."""
    long = per_image_frame(per_image, benchmarks, scale)
    keys = _dataset_order(long["dataset"])
    summaries = {key: summarise(long[long["dataset"] == key]) for key in keys}
    table = comparison_table(summaries[TEST], configs, timings) if TEST in summaries else pd.DataFrame()
    bench = benchmark_table(summaries, long, configs, timings)
    seeds = sorted({int(s) for by_seed in per_image.values() for s in by_seed})
    gans = [arch for arch, by_seed in configs.items() if any(is_gan(c) for c in by_seed.values())]
    comparison = Comparison(table=table, benchmarks=bench, summaries=summaries, per_image=long, seeds=seeds,
                            scale=int(scale), machines=machines_table(configs, timings), gans=gans)
    comparison.notes = report_notes(comparison)
    return comparison


def report_notes(comparison: Comparison) -> list[str]:
    """Plain warnings on top of the report: a test split or benchmarks with few images, one seed only."""
    notes = []
    counts = {key: int(summary["images"].max()) if len(summary) else 0
              for key, summary in comparison.summaries.items()}
    n = counts.get(TEST)
    if n is not None and n < FEW_IMAGES:
        consequence = (f"with fewer than {MIN_IMAGES_FOR_CI} no interval can be computed, so no two architectures can "
                       "be told apart" if n < MIN_IMAGES_FOR_CI else "the intervals are wide")
        notes.append(f"The test split has only {n} image{'s' if n != 1 else ''} (fewer than {FEW_IMAGES}): the ranking "
                     f"rests on them, and {consequence}. For a comparison you can trust, test on more images (more "
                     "photographs, or a larger test share in `prepare.split`), evaluate on the benchmark sets "
                     "(`benchmarks.sets`), and train more seeds (`seeds`).")
    few = [f"{dataset_label(key)} ({count})" for key, count in counts.items() if key != TEST and count < FEW_IMAGES]
    if few:
        notes.append(f"Fewer than {FEW_IMAGES} images in {', '.join(few)}: read the rankings on "
                     f"{'it' if len(few) == 1 else 'them'} with care.")
    seeds = {int(s) for summary in comparison.summaries.values() for s in summary["seeds"]}
    if seeds and max(seeds) < 2:
        notes.append("One seed per architecture: the spread over seeds is unknown, so two runs of the same "
                     "configuration may land further apart than these intervals, which measure only the choice of "
                     "images. Train several seeds (`seeds: [0, 1, 2, 3, 4]` in params.yaml) to see it.")
    return notes


def machines_table(configs: Runs[Mapping], timings: Runs[Mapping] | None = None) -> pd.DataFrame:
    """The machines the runs came from, one row per distinct machine: its record (``machine`` in
    config.json for training and in timing.json for evaluation: cpu, threads, device, torch
    version...) and the runs it made. Empty when no run recorded its machine; runs without a record
    beside others that have one are listed under ``not recorded``."""
    groups: dict[str, tuple[Mapping, dict[str, dict[int, list[str]]]]] = {}
    for role, runs in (("train", configs), ("evaluate", timings or {})):
        for arch, by_seed in runs.items():
            for seed, record in by_seed.items():
                if role == "train" and record.get("pretrained"):
                    continue  # imported, not trained: only its evaluation ran here
                machine = record.get("machine") or {}
                key = json.dumps(machine, sort_keys=True, default=str)
                made = groups.setdefault(key, (machine, {}))[1].setdefault(arch, {})
                made.setdefault(int(seed), []).append(role)
    if not groups or list(groups) == ["{}"]:
        return pd.DataFrame()
    keys = [k for k in MACHINE_KEYS if any(k in m for m, _ in groups.values())]
    keys += sorted({k for m, _ in groups.values() for k in m} - set(keys))
    rows = []
    for machine, made in groups.values():
        row = {k: _text(machine[k]) if k in machine else "" for k in keys}
        if not machine:
            row[keys[0]] = "not recorded"
        row["runs"] = "; ".join(_runs_text(arch, by_seed) for arch, by_seed in made.items())
        rows.append(row)
    return pd.DataFrame(rows)


def _runs_text(arch: str, by_seed: Mapping[int, list[str]]) -> str:
    """``edsr seeds 0, 1 (train, evaluate)``, one part per distinct set of roles."""
    parts: dict[tuple[str, ...], list[int]] = {}
    for seed, roles in by_seed.items():
        parts.setdefault(tuple(roles), []).append(seed)
    return ", ".join(f"{arch} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(seeds)))} "
                     f"({', '.join(roles)})" for roles, seeds in parts.items())


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (Mapping, list)) else str(value)


# --- published reference rows ---------------------------------------------------------------------


def _published() -> pd.DataFrame:
    """Every published PSNR-Y kept in ``superres/reference/published_psnr_y.csv``."""
    return pd.read_csv(resources.files("superres.reference").joinpath("published_psnr_y.csv"))


def published_table(scale: int) -> pd.DataFrame:
    """Published PSNR-Y (reference rows from the papers) at ``scale``: one row per
    architecture, one column per benchmark, and the source."""
    frame = _published()
    frame = frame[frame["scale"] == scale]
    table = frame.pivot_table(index="architecture", columns="dataset", values="psnr_y", sort=False)
    columns = [c for c in ("set5", "set14", "bsd100", "urban100") if c in table]
    sources = frame.groupby("architecture", sort=False)["source"].first()
    return table[columns].assign(source=sources).rename_axis(None, axis=1).reset_index()


# --- the benchmark sets ---------------------------------------------------------------------------

BENCHMARK_ORDER = ("set5", "set14", "bsd100", "urban100", "manga109")  # the literature's order; others follow
MEASURED = "this run"  # the source of the benchmark rows measured here (the others cite their paper)
COST_COLUMNS = ["parameters", "latency_ms", "latency_ms_std", "train_seconds", "train_seconds_std", "iterations"]
BENCHMARK_COLUMNS = ["benchmark", "scale", "architecture", "source", "seeds", "images",
                     *[c for m in METRICS for c in (m, f"{m}_std")], *SUMMARY_DIFFERENCES, *COST_COLUMNS]


def benchmark_table(
    summaries: Mapping[str, pd.DataFrame],
    long: pd.DataFrame,
    configs: Runs[Mapping],
    timings: Runs[Mapping] | None = None,
) -> pd.DataFrame:
    """benchmarks.csv: one row per benchmark, scale and measured architecture (the summary of that
    data set: means and spreads over seeds, the paired differences, the costs), best first; then the
    papers' published PSNR-Y of the same benchmark and scale as reference rows, their paper in
    ``source`` (``"this run"`` for the rows measured here)."""
    frames = []
    for key, summary in summaries.items():
        if key == TEST or summary.empty:
            continue
        first = long[long["dataset"] == key].iloc[0]
        costs = pd.DataFrame([_costs(configs.get(a, {}), (timings or {}).get(a)) for a in summary["architecture"]],
                             index=summary.index)
        frames.append(summary.drop(columns="verdict").join(costs)
                      .assign(benchmark=first["benchmark"], scale=int(first["scale"]), source=MEASURED))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BENCHMARK_COLUMNS)
    table = table.reindex(columns=BENCHMARK_COLUMNS)
    published = _published().rename(columns={"dataset": "benchmark"})
    published = published.merge(table[["benchmark", "scale"]].drop_duplicates(), on=["benchmark", "scale"])
    if len(published):
        table = pd.concat([table, published.reindex(columns=BENCHMARK_COLUMNS)], ignore_index=True)
    table = table.astype({"scale": int, "seeds": "Int64", "images": "Int64", "parameters": "Int64",
                          "iterations": "Int64", "told_apart_from_next": "boolean"})
    order = {name: k for k, name in enumerate(BENCHMARK_ORDER)}
    table = table.assign(_set=table["benchmark"].map(lambda b: (order.get(b, len(order)), b)),
                         _published=table["source"] != MEASURED)
    table = table.sort_values(["_set", "scale", "_published"], kind="stable")  # measured rows keep their ranking
    return table.drop(columns=["_set", "_published"]).reset_index(drop=True)


def _metric_cell(mean: float, std: float, metric: str) -> str:
    return format_spread(SeedSpread(float(mean), float(std), 2 if pd.notna(std) else 1), DEFAULT_DECIMALS[metric])


def benchmark_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table to read: one row per architecture (then the published reference rows,
    marked), one column per benchmark and scale holding ``PSNR-Y / SSIM-Y`` (each ``mean ± std``
    over seeds where there are several, decimals following the std)."""
    if table.empty:
        return pd.DataFrame()
    labels = [f"{b} x{s}" for b, s in zip(table["benchmark"], table["scale"], strict=True)]

    def cell(row: pd.Series) -> str:
        text = _metric_cell(row["psnr_y"], row.get("psnr_y_std", math.nan), "psnr_y")
        if pd.notna(row.get("ssim_y", math.nan)):
            text += f" / {_metric_cell(row['ssim_y'], row.get('ssim_y_std', math.nan), 'ssim_y')}"
        return text

    cells = table.assign(
        column=labels,
        row=[a if src == MEASURED else f"{a} (published)"
             for a, src in zip(table["architecture"], table["source"], strict=True)],
        value=[cell(row) for _, row in table.iterrows()],
    )
    matrix = cells.pivot(index="row", columns="column", values="value")
    matrix = matrix.reindex(columns=list(dict.fromkeys(labels))).fillna("")
    measured = cells[cells["source"] == MEASURED].drop_duplicates("row").set_index("row")
    info = measured.reindex(columns=["seeds", "parameters", "latency_ms", "latency_ms_std", "train_seconds",
                                     "iterations"])
    sources = cells[cells["source"] != MEASURED].drop_duplicates("row").set_index("row")["source"]
    rows = list(dict.fromkeys(measured.index)) + list(dict.fromkeys(sources.index))
    info = pd.DataFrame({
        "seeds": [_integer(v) for v in info["seeds"]],
        "parameters": [_integer(v) for v in info["parameters"]],
        "latency_ms": [_cost(m, s, 1) for m, s in zip(info["latency_ms"], info["latency_ms_std"], strict=True)],
        "train_seconds": [_cost(v, math.nan, 0) for v in info["train_seconds"]],
        "iterations": [_integer(v) for v in info["iterations"]],
    }, index=info.index)
    matrix = info.join(matrix, how="right").reindex(rows).fillna("")
    matrix["source"] = sources.reindex(rows).fillna(MEASURED)
    return matrix.rename_axis("architecture").reset_index()


def _integer(value: Any) -> str:
    return f"{int(value):,}" if pd.notna(value) else ""


def _cost(mean: Any, std: Any, default: int) -> str:
    if pd.isna(mean):
        return ""
    return format_spread(SeedSpread(float(mean), float(std) if pd.notna(std) else math.nan,
                                    2 if pd.notna(std) else 1), default)


# --- words ----------------------------------------------------------------------------------------


def _told(value: Any) -> bool:
    """``told_apart_from_next`` as a plain bool (NA, for the last of a ranking, is False)."""
    return bool(pd.notna(value) and value)


def ranking_line(summary: pd.DataFrame) -> str:
    """``lapsrn ≈ autoencoder > vdsr ...``: ``>`` where the neighbours are told apart, ``≈`` where not."""
    if summary.empty:
        return ""
    parts = [str(summary["architecture"].iloc[0])]
    for k in range(1, len(summary)):
        told = _told(summary["told_apart_from_next"].iloc[k - 1])
        parts.append(f"{'>' if told else '≈'} {summary['architecture'].iloc[k]}")
    return " ".join(parts)


def ranking_sentences(summary: pd.DataFrame, gans: Sequence[str] = ()) -> list[str]:
    """Each neighbouring pair of the ranking, in words: told apart or not, and why."""
    sentences = []
    for k in range(len(summary) - 1):
        row = summary.iloc[k]
        a, b = row["architecture"], row["next"]
        if _told(row["told_apart_from_next"]):
            sentences.append(f"{a} ranks above {b}: {row['verdict']}.")
        else:
            sentences.append(f"{a} and {b} cannot be told apart: {row['verdict']}.")
    if gans and any(g in set(summary["architecture"]) for g in gans):
        names = [g for g in summary["architecture"] if g in gans]
        sentences.append(f"{', '.join(names)}: {'a GAN' if len(names) == 1 else 'GANs'}, judged here by PSNR-Y, "
                         f"which {'it is' if len(names) == 1 else 'they are'} not trained for: {GAN_WHY}.")
    return sentences


READING = (
    "How to read these numbers. Every architecture is trained once per seed: a metric is the mean over seeds of "
    "each seed's mean over the images, `±` its standard deviation over seeds (none is shown with one seed). "
    "`vs bicubic` and `vs next` are the mean per-image difference of PSNR-Y (each image's PSNR-Y averaged over "
    "the seeds) against bicubic and against the next architecture of the ranking, in dB, with its "
    f"{confidence_words(CONFIDENCE)} bootstrap confidence interval in brackets (scipy.stats.bootstrap, BCa, "
    f"{N_RESAMPLES:,} resamples of the images, seeded; none with fewer than {MIN_IMAGES_FOR_CI} images). "
    "Two neighbours are told apart (`>`) only when that interval excludes 0 and, with several seeds, their "
    "ranges mean ± std over seeds do not overlap; otherwise they cannot be told apart (`≈`). Decimals follow the "
    f"uncertainty: a number gets the decimals that give its uncertainty {SIGNIFICANT_DIGITS} significant digits "
    "(its standard deviation over seeds, or its interval's half-width: 0.034 gives 3 decimals, 0.34 gives 2, "
    "3.4 gives 1); without one, the metric's usual decimals (2 for dB, 4 for SSIM)."
)


def display_table(comparison: Comparison, dataset: str = TEST) -> pd.DataFrame:
    """The comparison of ``dataset`` to read (strings): mean ± std with decimals that follow the
    spread, the differences with their intervals, the neighbour verdict and the notes."""
    summary = comparison.summaries.get(dataset, pd.DataFrame())
    if summary.empty:
        return pd.DataFrame()
    costs = comparison.table.set_index("architecture") if dataset == TEST and len(comparison.table) else None
    rows = []
    for row in summary.itertuples():
        out: dict[str, str] = {"architecture": row.architecture, "seeds": str(row.seeds), "images": str(row.images)}
        if costs is not None:
            c = costs.loc[row.architecture]
            out.update({"parameters": _integer(c["parameters"]),
                        "latency (ms)": _cost(c["latency_ms"], c["latency_ms_std"], 1),
                        "iterations": _integer(c["iterations"]),
                        "train (s)": _cost(c["train_seconds"], c["train_seconds_std"], 0)})
        for m in METRICS:
            if m in summary:
                out[METRIC_LABELS[m]] = _metric_cell(getattr(row, m), getattr(row, f"{m}_std"), m)
        out["vs bicubic (dB)"] = format_difference(_difference(row, "psnr_y_vs_bicubic"))
        vs_next = format_difference(_difference(row, "psnr_y_vs_next"))
        told = _told(row.told_apart_from_next)
        out["vs next (dB)"] = f"{vs_next} {'>' if told else '≈'} {row.next}" if row.next else ""
        if costs is not None:
            out["notes"] = costs.loc[row.architecture, "notes"]
        rows.append(out)
    return pd.DataFrame(rows)


def _difference(row: Any, prefix: str) -> PairedDifference:
    return PairedDifference(getattr(row, prefix), getattr(row, f"{prefix}_ci_low"), getattr(row, f"{prefix}_ci_high"),
                            0)


def machines_text(comparison: Comparison) -> str:
    if comparison.machines.empty:
        return ("The machine is not recorded in these runs' config.json, so this report cannot say which machine made "
                "them.")
    return ("The runs came from the machine(s) below. Bit-identical results hold only on the same machine and "
            "software; across machines, expect differences within the spread over seeds shown above.")


def to_markdown(comparison: Comparison, published: pd.DataFrame, title: str) -> str:
    """comparison.md: warnings, how to read, the test table, its ranking in words, the published
    reference rows, the benchmarks with their rankings, and the machines."""
    text = f"# {title}\n\n"
    text += "".join(f"> **{note}**\n>\n" for note in comparison.notes).removesuffix(">\n")
    text += "\n" if comparison.notes else ""
    table = display_table(comparison)
    text += f"{READING}\n\n{table.to_markdown(index=False, disable_numparse=True)}\n" if len(table) else ""
    text += _ranking_markdown(comparison, TEST, "##")
    if len(published):
        text += (f"\n## Published PSNR-Y at x{comparison.scale} (reference rows from the papers, not measured here)\n\n"
                 f"{published.to_markdown(index=False, floatfmt='.2f')}\n")
    text += benchmark_markdown(comparison)
    text += f"\n## Machines\n\n{machines_text(comparison)}\n"
    if len(comparison.machines):
        text += f"\n{comparison.machines.to_markdown(index=False, disable_numparse=True)}\n"
    return text


def _ranking_markdown(comparison: Comparison, key: str, level: str) -> str:
    summary = comparison.summaries.get(key)
    if summary is None or summary.empty:
        return ""
    lines = "".join(f"- {s}\n" for s in ranking_sentences(summary, comparison.gans))
    return f"\n{level} Ranking on {dataset_label(key)} (PSNR-Y)\n\n`{ranking_line(summary)}`\n\n{lines}"


def benchmark_markdown(comparison: Comparison) -> str:
    """The benchmark section of the Markdown report ('' when no benchmark was evaluated)."""
    if comparison.benchmarks.empty:
        return ""
    matrix = benchmark_matrix(comparison.benchmarks)
    text = ("\n## Benchmarks: PSNR-Y / SSIM-Y, the published rows marked and cited\n\n"
            "Mean ± std over seeds. A trained model is measured at its own scale, bicubic at every scale; latency in "
            "ms for a 256x256 input, training time in seconds.\n\n"
            f"{matrix.to_markdown(index=False, disable_numparse=True)}\n")
    for key in comparison.summaries:
        if key != TEST:
            text += _ranking_markdown(comparison, key, "###")
    return text


# --- plots ----------------------------------------------------------------------------------------


def _errors(std: pd.Series) -> np.ndarray | None:
    values = std.to_numpy(dtype=float)
    return None if np.isnan(values).all() else np.nan_to_num(values)


def _scatter(table: pd.DataFrame, x: pd.Series, xerr: np.ndarray | None, xlabel: str, dataset: str) -> Figure:
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    y = table[f"{dataset}/psnr_y"]
    yerr = _errors(table[f"{dataset}/psnr_y_std"]) if f"{dataset}/psnr_y_std" in table else None
    ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt="o", capsize=3)
    for xi, yi, name in zip(x, y, table["architecture"], strict=True):
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{dataset} PSNR-Y (dB), mean ± std over seeds")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def psnr_plot(table: pd.DataFrame, dataset: str = TEST) -> Figure:
    """PSNR-Y against the number of parameters, one labelled point per architecture, with its
    spread over seeds as an error bar."""
    return _scatter(table, table["parameters"].clip(lower=1), None, "parameters (log scale; bicubic drawn at 1)",
                    dataset)


def latency_plot(table: pd.DataFrame, dataset: str = TEST) -> Figure:
    """PSNR-Y against the time to upscale a 256x256 input, both with their spread over seeds."""
    xerr = _errors(table["latency_ms_std"]) if "latency_ms_std" in table else None
    return _scatter(table, table["latency_ms"], xerr, "latency of a 256x256 input (ms, log scale)", dataset)


def validation_plot(histories: Runs[pd.DataFrame]) -> Figure:
    """The validation PSNR-Y curve of every architecture on one chart: the mean over seeds at each
    step, with a band of ± one std where there are several seeds (bicubic, one value, as a line)."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    for k, (arch, by_seed) in enumerate(histories.items()):
        frames = [h[["step", "val_psnr_y"]].assign(seed=s) for s, h in by_seed.items() if len(h)]
        if not frames:
            continue
        curves = pd.concat(frames).groupby("step")["val_psnr_y"].agg(["mean", "std", "count"])
        n = len(frames)
        if len(curves) > 1:
            label = arch if n == 1 else f"{arch} ({n} seeds)"
            ax.plot(curves.index, curves["mean"], marker=".", color=f"C{k % 10}", label=label)
            if n > 1:
                band = curves["std"].fillna(0)
                ax.fill_between(curves.index, curves["mean"] - band, curves["mean"] + band, color=f"C{k % 10}",
                                alpha=0.2, linewidth=0)
        else:
            ax.axhline(float(curves["mean"].iloc[0]), linestyle="--", color="grey", label=arch)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation PSNR-Y (dB), mean ± std over seeds")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def gain_plot(long: pd.DataFrame, dataset: str = TEST) -> Figure:
    """Per image of ``dataset``, the PSNR-Y each architecture gains over bicubic: the mean over seeds,
    with the spread over seeds as an error bar."""
    data = long[long["dataset"] == dataset]
    base = data[data["architecture"] == BASELINE].groupby("image")["psnr_y"].mean()
    gains = data[data["architecture"] != BASELINE].assign(gain=lambda f: f["psnr_y"] - f["image"].map(base))
    mean = gains.groupby(["image", "architecture"], sort=False)["gain"].mean().unstack("architecture")
    std = gains.groupby(["image", "architecture"], sort=False)["gain"].std().unstack("architecture")
    fig = Figure(figsize=(max(6, 0.6 * len(mean) + 2), 4), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(len(mean.columns), 1)
    for k, arch in enumerate(mean.columns):
        ax.bar(np.arange(len(mean)) + k * width, mean[arch], width, yerr=_errors(std[arch]), capsize=2, label=arch)
    ax.set_xticks(np.arange(len(mean)) + 0.4 - width / 2, mean.index, rotation=30, ha="right")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("PSNR-Y gain over bicubic (dB)\nmean ± std over seeds")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def difference_plot(summary: pd.DataFrame, label: str) -> Figure:
    """The mean per-image difference of PSNR-Y against bicubic of every architecture, with its
    bootstrap interval (a dot alone where there is none)."""
    rows = summary[summary["architecture"] != BASELINE].iloc[::-1]
    fig = Figure(figsize=(6, max(2.5, 0.35 * len(rows) + 1.2)), dpi=100)
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    mean = rows["psnr_y_vs_bicubic"].to_numpy(dtype=float)
    low = rows["psnr_y_vs_bicubic_ci_low"].to_numpy(dtype=float)
    high = rows["psnr_y_vs_bicubic_ci_high"].to_numpy(dtype=float)
    xerr = np.nan_to_num(np.vstack([mean - low, high - mean]))
    ax.errorbar(mean, y, xerr=xerr, fmt="o", capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, rows["architecture"])
    ax.set_xlabel(f"PSNR-Y difference from bicubic on {label} (dB), {confidence_words()} interval")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def benchmark_plot(table: pd.DataFrame) -> Figure:
    """PSNR-Y of every architecture on every benchmark and scale (bars, the spread over seeds as
    error bars), with the published values of the same architecture as black ticks."""
    measured = table[table["source"] == MEASURED]
    groups = list(dict.fromkeys(zip(measured["benchmark"], measured["scale"], strict=True)))
    archs = list(dict.fromkeys(measured["architecture"]))
    fig = Figure(figsize=(min(14, max(6, 0.18 * len(groups) * len(archs) + 3)), 4.5), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(len(archs), 1)
    published = table[table["source"] != MEASURED].set_index(["benchmark", "scale", "architecture"])["psnr_y"]
    for k, arch in enumerate(archs):
        rows = measured[measured["architecture"] == arch].set_index(["benchmark", "scale"])
        x = np.arange(len(groups)) + k * width
        heights = np.array([rows["psnr_y"].get(g, np.nan) for g in groups], dtype=float)
        spread = np.array([rows["psnr_y_std"].get(g, np.nan) if "psnr_y_std" in rows else np.nan for g in groups],
                          dtype=float)
        exact = np.isinf(heights)  # an image reproduced exactly: no bar, the word "inf"
        heights = np.where(exact, np.nan, heights)
        ax.bar(x, heights, width, label=arch)
        if np.isfinite(spread).any():
            ax.errorbar(x, heights, yerr=np.nan_to_num(spread), fmt="none", ecolor="black", capsize=2, linewidth=0.8)
        for xi in x[exact]:
            ax.annotate("inf", (xi, 0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize="small")
        ref = [published.get((*g, arch), np.nan) for g in groups]
        ax.scatter(x, ref, marker="_", s=200, color="black", label="published" if k == 0 else None)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{b} x{s}" for b, s in groups])
    finite = table["psnr_y"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]  # an image reproduced exactly has an infinite PSNR
    ax.set_ylim(bottom=max(0.0, finite.min() - 3) if finite.size else 0.0)
    ax.set_ylabel("PSNR-Y (dB), mean ± std over seeds")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def report_figures(comparison: Comparison, histories: Runs[pd.DataFrame]) -> dict[str, Figure]:
    """Every plot of the report, by file name."""
    table = comparison.table
    figures = {
        "psnr_vs_parameters.png": psnr_plot(table),
        "psnr_vs_latency.png": latency_plot(table),
        "validation_curves.png": validation_plot(histories),
    }
    archs = set(table["architecture"]) if len(table) else set()
    if BASELINE in archs and len(archs) > 1:
        figures["gain_over_bicubic.png"] = gain_plot(comparison.per_image)
        figures["difference_vs_bicubic.png"] = difference_plot(comparison.summaries[TEST], dataset_label(TEST))
    if (comparison.benchmarks["source"] == MEASURED).any():
        figures["psnr_on_benchmarks.png"] = benchmark_plot(comparison.benchmarks)
    return figures


# --- visual crops -----------------------------------------------------------------------------------


def detailed_crop_box(hr: np.ndarray, size: int) -> tuple[int, int, int]:
    """(top, left, size) of the square crop with the most detail (gradient energy)."""
    size = min(size, hr.shape[0], hr.shape[1])
    gray = hr.astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(gray, axis=0))[:, :-1] + np.abs(np.diff(gray, axis=1))[:-1, :]
    best, box = -1.0, (0, 0)
    step = max(size // 2, 1)
    for top in range(0, hr.shape[0] - size + 1, step):
        for left in range(0, hr.shape[1] - size + 1, step):
            value = energy[top : top + size - 1, left : left + size - 1].sum()
            if value > best:
                best, box = value, (top, left)
    return box[0], box[1], size


@dataclass
class CropRow:
    image: str
    tiles: list[tuple[str, str, str]]  # (label, PSNR text, PNG data URI)


def png_data_uri(image: np.ndarray, display: int | None = None) -> str:
    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    if display and pil.width != display:
        pil = pil.resize((display, round(display * pil.height / pil.width)), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def crop_rows(
    test_hr: Mapping[str, np.ndarray],
    test_lr: Mapping[str, np.ndarray],
    outputs: Mapping[str, Mapping[str, np.ndarray]],
    scale: int,
    crop_size: int,
    display: int = 160,
) -> list[CropRow]:
    """For each test image: the most detailed HR crop, and the same region of the LR input,
    of every architecture's output and of HR, each with its PSNR-Y on the crop."""
    rows = []
    for name, hr in test_hr.items():
        top, left, size = detailed_crop_box(hr, crop_size - crop_size % scale)
        lr_crop = test_lr[name][top // scale : (top + size) // scale, left // scale : (left + size) // scale]
        hr_crop = hr[top : top + size, left : left + size]
        tiles = [("LR input", "", png_data_uri(lr_crop, display))]
        for arch, images in outputs.items():
            if name in images:
                crop = images[name][top : top + size, left : left + size]
                value = psnr(crop, hr_crop, y_channel=True)
                tiles.append((arch, "inf dB" if math.isinf(value) else f"{value:.2f} dB", png_data_uri(crop, display)))
        tiles.append(("HR", "", png_data_uri(hr_crop, display)))
        rows.append(CropRow(name, tiles))
    return rows


# --- the page -------------------------------------------------------------------------------------

PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table.metrics { border-collapse: collapse; margin: 1rem 0; }
table.metrics th, table.metrics td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
table.metrics td:first-child, table.metrics th:first-child { text-align: left; }
.crops { display: flex; flex-wrap: wrap; gap: .5rem; margin-bottom: 1.5rem; }
.crops figure { margin: 0; text-align: center; font-size: .85rem; }
.crops img { image-rendering: pixelated; display: block; }
.note { color: #666; font-size: .9rem; }
.warning { background: #fff4e0; border-left: 4px solid #e69500; padding: .5rem 1rem; margin: .5rem 0; }
code.ranking { font-size: 1rem; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">Profile <b>{{ profile }}</b>, scale x{{ scale }}, {{ n_test }} test images,
{{ n_seeds }} seed{{ "s" if n_seeds != 1 }} ({{ seeds }}), made {{ made }}. PSNR and SSIM on the Y channel
(ITU-R BT.601), {{ scale }} pixels shaved from each border.</p>
{% for note in notes %}<p class="warning">{{ note }}</p>
{% endfor %}<p class="note">{{ reading }}</p>
{{ table_html|safe }}
{% for ranking in rankings %}<h2>Ranking on {{ ranking.label }} (PSNR-Y)</h2>
<p><code class="ranking">{{ ranking.line }}</code></p>
<ul>{% for sentence in ranking.sentences %}<li>{{ sentence }}</li>{% endfor %}</ul>
{% endfor %}
{% if benchmarks_html %}<h2>Benchmarks</h2>
<p class="note">PSNR-Y / SSIM-Y on the standard test sets, mean ± std over seeds, LR made by modcrop and MATLAB
bicubic; a trained model is measured at its own scale, bicubic at every scale. Rows marked <i>published</i> are the
papers' numbers
(cited in the last column), not measured by this run.</p>
{{ benchmarks_html|safe }}
{% for ranking in benchmark_rankings %}<h3>Ranking on {{ ranking.label }} (PSNR-Y)</h3>
<p><code class="ranking">{{ ranking.line }}</code></p>
<ul>{% for sentence in ranking.sentences %}<li>{{ sentence }}</li>{% endfor %}</ul>
{% endfor %}{% endif %}
{% if published_html %}<h2>Published PSNR-Y at x{{ scale }} (reference)</h2>
<p class="note">Reference rows from the papers, on the standard benchmarks; not measured by this run.</p>
{{ published_html|safe }}{% endif %}
<h2>Machines</h2>
<p class="note">{{ machines_text }}</p>
{{ machines_html|safe }}
<h2>Plots</h2>
<div class="crops">{% for name, uri in plots %}<figure><img alt="{{ name }}" src="{{ uri }}">
<figcaption>{{ name }}</figcaption></figure>
{% endfor %}</div>
<h2>Visual comparison</h2>
<p class="note">The most detailed {{ crop_size }}x{{ crop_size }} region of each test image, enlarged without
smoothing; PSNR-Y of the crop.
{% if crop_seed is not none %}Each architecture's output is that of seed {{ crop_seed }}.{% endif %}</p>
{% for row in crops %}<h3>{{ row.image }}</h3><div class="crops">
{% for label, value, uri in row.tiles %}<figure><img alt="{{ label }}" src="{{ uri }}">
<figcaption>{{ label }}<br>{{ value }}</figcaption></figure>
{% endfor %}</div>
{% endfor %}</body></html>
"""
)


def _rankings(comparison: Comparison, keys: Iterable[str]) -> list[dict[str, Any]]:
    return [{"label": dataset_label(k), "line": ranking_line(comparison.summaries[k]),
             "sentences": ranking_sentences(comparison.summaries[k], comparison.gans)}
            for k in keys if k in comparison.summaries and len(comparison.summaries[k])]


def html_report(
    comparison: Comparison,
    published: pd.DataFrame,
    figures: Mapping[str, Figure],
    crops: Sequence[CropRow],
    *,
    profile: str,
    crop_size: int,
    crop_seed: int | None = None,
    title: str = "superres: comparison of architectures",
) -> str:
    """The self-contained page: warnings, the test table and its ranking in words, the benchmarks
    and theirs, the published reference rows, the machines, the plots and the crops (of seed
    ``crop_seed``)."""
    table_html = display_table(comparison).to_html(index=False, classes="metrics", border=0, escape=True)
    matrix = benchmark_matrix(comparison.benchmarks)
    benchmarks_html = matrix.to_html(index=False, classes="metrics", border=0, escape=True) if len(matrix) else ""
    published_html = published.to_html(index=False, float_format=lambda v: f"{v:.2f}", classes="metrics",
                                       border=0) if len(published) else ""
    machines_html = comparison.machines.to_html(index=False, classes="metrics", border=0, escape=True) \
        if len(comparison.machines) else ""
    return PAGE.render(
        title=title,
        profile=profile,
        scale=comparison.scale,
        n_test=comparison.test_images,
        n_seeds=len(comparison.seeds),
        seeds=", ".join(map(str, comparison.seeds)),
        made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        notes=comparison.notes,
        reading=READING.replace("`", ""),
        table_html=table_html,
        rankings=_rankings(comparison, [TEST]),
        benchmarks_html=benchmarks_html,
        benchmark_rankings=_rankings(comparison, [k for k in comparison.summaries if k != TEST]),
        published_html=published_html,
        machines_text=machines_text(comparison),
        machines_html=machines_html,
        plots=[(name.removesuffix(".png").replace("_", " "), figure_data_uri(fig)) for name, fig in figures.items()],
        crops=crops,
        crop_size=crop_size,
        crop_seed=crop_seed,
    )


# --- MLflow -----------------------------------------------------------------------------------------


def report_metrics(comparison: Comparison) -> dict[str, float]:
    """The report's figures under stable MLflow keys, for every architecture and data set ``D``
    (``test``, ``set5_x2``...): ``<arch>.D/<metric>`` (mean over seeds) and ``<arch>.D/<metric>_std``
    for every metric; ``<arch>.D/psnr_y_vs_bicubic`` and ``<arch>.D/psnr_y_vs_next`` with
    ``_ci_low`` and ``_ci_high``; ``<arch>.D/told_apart_from_next`` (1 or 0); ``<arch>.D/images``;
    and ``<arch>.seeds``. NaN values (no spread with one seed, no interval) are left out."""
    metrics: dict[str, float] = {}
    for key, summary in comparison.summaries.items():
        for row in summary.to_dict("records"):
            arch = row["architecture"]
            metrics[f"{arch}.seeds"] = float(row["seeds"])
            metrics[f"{arch}.{key}/images"] = float(row["images"])
            for m in METRICS:
                if m in row:
                    metrics[f"{arch}.{key}/{m}"] = float(row[m])
                    metrics[f"{arch}.{key}/{m}_std"] = float(row[f"{m}_std"])
            for prefix in ("psnr_y_vs_bicubic", "psnr_y_vs_next"):
                for suffix in ("", "_ci_low", "_ci_high"):
                    metrics[f"{arch}.{key}/{prefix}{suffix}"] = float(row[f"{prefix}{suffix}"])
            if pd.notna(row["told_apart_from_next"]):
                metrics[f"{arch}.{key}/told_apart_from_next"] = float(_told(row["told_apart_from_next"]))
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def report_tags(comparison: Comparison) -> dict[str, str]:
    """The ranking of every data set in words, as MLflow tags ``superres.ranking.<D>``."""
    return {f"superres.ranking.{key}": ranking_line(summary)[:5000]
            for key, summary in comparison.summaries.items() if len(summary)}
