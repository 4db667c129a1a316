"""The comparison of architectures: a table, a plot and a self-contained HTML page.

Pure functions of the evaluation results; the report pipeline feeds them and the catalog
writes what they return.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources

import numpy as np
import pandas as pd
from jinja2 import Environment
from matplotlib.figure import Figure
from PIL import Image

from superres.metrics import METRICS, psnr

BASELINE = "bicubic"


def _costs(arch: str, config: Mapping, timings: Mapping[str, Mapping] | None) -> dict[str, int | float]:
    """The size, latency and training cost of ``arch``: 0 (NaN for the latency) where not recorded."""
    return {"parameters": int(config.get("parameters", 0)),
            "latency_ms": float((timings or {}).get(arch, {}).get("latency_ms", math.nan)),
            "iterations": int(config.get("iterations", 0)), "train_seconds": float(config.get("train_seconds", 0.0))}


def comparison_table(
    per_image: Mapping[str, pd.DataFrame],
    configs: Mapping[str, Mapping],
    timings: Mapping[str, Mapping] | None = None,
    dataset: str = "test",
) -> pd.DataFrame:
    """One row per architecture: its mean test metrics, size, latency and training cost, and the
    PSNR-Y gained over bicubic; best PSNR-Y first."""
    rows = []
    for arch, frame in per_image.items():
        config = configs.get(arch, {})
        row = {"architecture": arch, **_costs(arch, config, timings)}
        row.update({f"{dataset}/{m}": float(frame[m].mean()) for m in METRICS if m in frame})
        row["notes"] = "; ".join(config.get("notes", []))  # e.g. a GAN trained without its perceptual loss
        rows.append(row)
    table = pd.DataFrame(rows)
    key = f"{dataset}/psnr_y"
    if BASELINE in per_image and key in table:
        table.insert(len(table.columns) - 1, f"{dataset}/psnr_y_gain",
                     table[key] - float(table.loc[table.architecture == BASELINE, key].iloc[0]))
    return table.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)


def to_markdown(table: pd.DataFrame, published: pd.DataFrame, title: str, scale: int) -> str:
    text = f"# {title}\n\n{table.to_markdown(index=False, floatfmt='.4f')}\n"
    if len(published):
        text += (f"\n## Published PSNR-Y at x{scale} (reference rows from the papers, not measured here)\n\n"
                 f"{published.to_markdown(index=False, floatfmt='.2f')}\n")
    return text


def _scatter(table: pd.DataFrame, x: pd.Series, xlabel: str, dataset: str) -> Figure:
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    y = table[f"{dataset}/psnr_y"]
    ax.scatter(x, y)
    for xi, yi, name in zip(x, y, table["architecture"], strict=True):
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{dataset} PSNR-Y (dB)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def psnr_plot(table: pd.DataFrame, dataset: str = "test") -> Figure:
    """PSNR-Y against the number of parameters, one labelled point per architecture."""
    return _scatter(table, table["parameters"].clip(lower=1), "parameters (log scale; bicubic drawn at 1)", dataset)


def latency_plot(table: pd.DataFrame, dataset: str = "test") -> Figure:
    """PSNR-Y against the time to upscale a 256x256 input."""
    return _scatter(table, table["latency_ms"], "latency of a 256x256 input (ms, log scale)", dataset)


def validation_plot(histories: Mapping[str, pd.DataFrame]) -> Figure:
    """The validation PSNR-Y curve of every architecture on one chart (bicubic as a line)."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    for arch, history in histories.items():
        if len(history) > 1:
            ax.plot(history["step"], history["val_psnr_y"], marker=".", label=arch)
        elif len(history) == 1:
            ax.axhline(float(history["val_psnr_y"].iloc[0]), linestyle="--", color="grey", label=arch)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation PSNR-Y (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def gain_plot(per_image: Mapping[str, pd.DataFrame]) -> Figure:
    """Per test image, the PSNR-Y each architecture gains over bicubic."""
    base = per_image[BASELINE].set_index("image")["psnr_y"]
    gains = pd.DataFrame({arch: frame.set_index("image")["psnr_y"] - base
                          for arch, frame in per_image.items() if arch != BASELINE})
    fig = Figure(figsize=(max(6, 0.6 * len(gains) + 2), 4), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(len(gains.columns), 1)
    for k, arch in enumerate(gains.columns):
        ax.bar(np.arange(len(gains)) + k * width, gains[arch], width, label=arch)
    ax.set_xticks(np.arange(len(gains)) + 0.4 - width / 2, gains.index, rotation=30, ha="right")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("PSNR-Y gain over bicubic (dB)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


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


BENCHMARK_ORDER = ("set5", "set14", "bsd100", "urban100", "manga109")  # the literature's order; others follow
MEASURED = "this run"  # the source of the benchmark rows measured here (the others cite their paper)
BENCHMARK_COLUMNS = ["benchmark", "scale", "architecture", "source", "psnr_y", "ssim_y", "images",
                     "parameters", "latency_ms", "train_seconds", "iterations"]


def benchmark_table(
    per_image: Mapping[str, pd.DataFrame], configs: Mapping[str, Mapping], timings: Mapping[str, Mapping] | None = None
) -> pd.DataFrame:
    """The comparison on the benchmark sets, one row per benchmark, scale and architecture (long
    format): mean PSNR-Y and SSIM-Y, the number of images, size, latency and training cost.

    The published PSNR-Y of the same benchmark and scale follow as reference rows, their paper
    in ``source`` (``"this run"`` for the rows measured here)."""
    rows = []
    for arch, frame in per_image.items():
        config = configs.get(arch, {})
        for (benchmark, scale), group in frame.groupby(["benchmark", "scale"], sort=False):
            rows.append({"benchmark": benchmark, "scale": int(scale), "architecture": arch, "source": MEASURED,
                         "psnr_y": float(group["psnr_y"].mean()), "ssim_y": float(group["ssim_y"].mean()),
                         "images": len(group), **_costs(arch, config, timings)})
    table = pd.DataFrame(rows, columns=BENCHMARK_COLUMNS)
    published = _published().rename(columns={"dataset": "benchmark"})
    published = published.merge(table[["benchmark", "scale"]].drop_duplicates(), on=["benchmark", "scale"])
    if len(published):
        table = pd.concat([table, published.reindex(columns=BENCHMARK_COLUMNS)], ignore_index=True)
    table = table.astype({"scale": int, "images": "Int64", "parameters": "Int64", "iterations": "Int64"})
    order = {name: k for k, name in enumerate(BENCHMARK_ORDER)}
    table = table.assign(_set=table["benchmark"].map(lambda b: (order.get(b, len(order)), b)),
                         _published=table["source"] != MEASURED)
    table = table.sort_values(["_set", "scale", "_published", "psnr_y"], ascending=[True, True, True, False],
                              kind="stable")
    return table.drop(columns=["_set", "_published"]).reset_index(drop=True)


def benchmark_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The benchmark table to read: one row per architecture (then the published reference rows,
    marked), one column per benchmark and scale holding ``PSNR-Y / SSIM-Y``."""
    if table.empty:
        return pd.DataFrame()
    labels = [f"{b} x{s}" for b, s in zip(table["benchmark"], table["scale"], strict=True)]
    cells = table.assign(
        column=labels,
        row=[a if src == MEASURED else f"{a} (published)"
             for a, src in zip(table["architecture"], table["source"], strict=True)],
        value=[f"{p:.2f}" if math.isnan(q) else f"{p:.2f} / {q:.4f}"
               for p, q in zip(table["psnr_y"], table["ssim_y"], strict=True)],
    )
    matrix = cells.pivot(index="row", columns="column", values="value")
    matrix = matrix.reindex(columns=list(dict.fromkeys(labels))).fillna("")
    measured = cells[cells["source"] == MEASURED].drop_duplicates("row").set_index("row")
    info = measured[["parameters", "latency_ms", "train_seconds", "iterations"]]
    sources = cells[cells["source"] != MEASURED].drop_duplicates("row").set_index("row")["source"]
    rows = list(dict.fromkeys(measured.index)) + list(dict.fromkeys(sources.index))
    formats = {"parameters": "{:,.0f}", "latency_ms": "{:.1f}", "train_seconds": "{:.0f}", "iterations": "{:,.0f}"}
    info = pd.DataFrame({column: [fmt.format(v) if pd.notna(v) else "" for v in info[column]]
                         for column, fmt in formats.items()}, index=info.index)
    matrix = info.join(matrix, how="right").reindex(rows).fillna("")
    matrix["source"] = sources.reindex(rows).fillna(MEASURED)
    return matrix.rename_axis("architecture").reset_index()


def benchmark_markdown(table: pd.DataFrame) -> str:
    """The benchmark section of the Markdown report ('' when no benchmark was evaluated)."""
    if table.empty:
        return ""
    matrix = benchmark_matrix(table)
    return ("\n## Benchmarks: PSNR-Y / SSIM-Y, the published rows marked and cited\n\n"
            "A trained model is measured at its own scale, bicubic at every scale; latency in ms for a 256x256 input, "
            "training time in seconds.\n\n"
            f"{matrix.to_markdown(index=False, disable_numparse=True)}\n")


def benchmark_plot(table: pd.DataFrame) -> Figure:
    """PSNR-Y of every architecture on every benchmark and scale (bars), with the published
    values of the same architecture as black ticks."""
    measured = table[table["source"] == MEASURED]
    groups = list(dict.fromkeys(zip(measured["benchmark"], measured["scale"], strict=True)))
    archs = list(dict.fromkeys(measured["architecture"]))
    fig = Figure(figsize=(min(14, max(6, 0.18 * len(groups) * len(archs) + 3)), 4.5), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(len(archs), 1)
    published = table[table["source"] != MEASURED].set_index(["benchmark", "scale", "architecture"])["psnr_y"]
    for k, arch in enumerate(archs):
        values = measured[measured["architecture"] == arch].set_index(["benchmark", "scale"])["psnr_y"]
        x = np.arange(len(groups)) + k * width
        heights = np.array([values.get(g, np.nan) for g in groups], dtype=float)
        exact = np.isinf(heights)  # an image reproduced exactly: no bar, the word "inf"
        ax.bar(x, np.where(exact, np.nan, heights), width, label=arch)
        for xi in x[exact]:
            ax.annotate("inf", (xi, 0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize="small")
        ref = [published.get((*g, arch), np.nan) for g in groups]
        ax.scatter(x, ref, marker="_", s=200, color="black", label="published" if k == 0 else None)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{b} x{s}" for b, s in groups])
    finite = table["psnr_y"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]  # an image reproduced exactly has an infinite PSNR
    ax.set_ylim(bottom=max(0.0, finite.min() - 3) if finite.size else 0.0)
    ax.set_ylabel("PSNR-Y (dB)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def report_figures(
    table: pd.DataFrame,
    per_image: Mapping[str, pd.DataFrame],
    histories: Mapping[str, pd.DataFrame],
    benchmarks: pd.DataFrame | None = None,
) -> dict[str, Figure]:
    """Every plot of the report, by file name."""
    figures = {
        "psnr_vs_parameters.png": psnr_plot(table),
        "psnr_vs_latency.png": latency_plot(table),
        "validation_curves.png": validation_plot(histories),
    }
    if BASELINE in per_image and len(per_image) > 1:
        figures["gain_over_bicubic.png"] = gain_plot(per_image)
    if benchmarks is not None and (benchmarks["source"] == MEASURED).any():
        figures["psnr_on_benchmarks.png"] = benchmark_plot(benchmarks)
    return figures


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
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">Profile <b>{{ profile }}</b>, scale x{{ scale }}, {{ n_test }} test images, made {{ made }}.
PSNR and SSIM on the Y channel (ITU-R BT.601), {{ scale }} pixels shaved from each border.</p>
{{ table_html|safe }}
{% if benchmarks_html %}<h2>Benchmarks</h2>
<p class="note">PSNR-Y / SSIM-Y on the standard test sets, LR made by modcrop and MATLAB bicubic; a trained model is
measured at its own scale, bicubic at every scale. Rows marked <i>published</i> are the papers' numbers (cited in the last
column), not measured by this run.</p>
{{ benchmarks_html|safe }}{% endif %}
{% if published_html %}<h2>Published PSNR-Y at x{{ scale }} (reference)</h2>
<p class="note">Reference rows from the papers, on the standard benchmarks; not measured by this run.</p>
{{ published_html|safe }}{% endif %}
<h2>Plots</h2>
<div class="crops">{% for name, uri in plots %}<figure><img alt="{{ name }}" src="{{ uri }}"><figcaption>{{ name }}</figcaption></figure>
{% endfor %}</div>
<h2>Visual comparison</h2>
<p class="note">The most detailed {{ crop_size }}x{{ crop_size }} region of each test image, enlarged without smoothing; PSNR-Y of the crop.</p>
{% for row in crops %}<h3>{{ row.image }}</h3><div class="crops">
{% for label, value, uri in row.tiles %}<figure><img alt="{{ label }}" src="{{ uri }}"><figcaption>{{ label }}<br>{{ value }}</figcaption></figure>
{% endfor %}</div>
{% endfor %}</body></html>
"""
)


def html_report(
    table: pd.DataFrame,
    published: pd.DataFrame,
    figures: Mapping[str, Figure],
    crops: Sequence[CropRow],
    *,
    profile: str,
    scale: int,
    n_test: int,
    crop_size: int,
    benchmarks: pd.DataFrame | None = None,
    title: str = "superres: comparison of architectures",
) -> str:
    table_html = table.to_html(index=False, float_format=lambda v: f"{v:.4f}", classes="metrics", border=0, escape=True)
    matrix = benchmark_matrix(benchmarks) if benchmarks is not None else pd.DataFrame()
    benchmarks_html = matrix.to_html(index=False, classes="metrics", border=0, escape=True) if len(matrix) else ""
    published_html = published.to_html(index=False, float_format=lambda v: f"{v:.2f}", classes="metrics", border=0) if len(published) else ""
    return PAGE.render(
        title=title,
        profile=profile,
        scale=scale,
        n_test=n_test,
        made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        table_html=table_html,
        benchmarks_html=benchmarks_html,
        published_html=published_html,
        plots=[(name.removesuffix(".png").replace("_", " "), figure_data_uri(fig)) for name, fig in figures.items()],
        crops=crops,
        crop_size=crop_size,
    )
