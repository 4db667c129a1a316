"""The report over seeds: means and spreads, paired differences with bootstrap intervals, the
ranking in words, decimals that follow the uncertainty, error bars, the warnings (few images, one
seed, GANs judged by PSNR), the machines, the benchmarks beside the published rows, MLflow's keys;
and the report pipeline on per-seed files through Kedro's SequentialRunner."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from matplotlib.container import ErrorbarContainer

from superres.errors import ConfigError, SuperresError
from superres.reporting import (
    GAN_NOTE,
    MEASURED,
    READING,
    benchmark_markdown,
    benchmark_matrix,
    benchmark_plot,
    build_comparison,
    crop_rows,
    display_table,
    html_report,
    published_table,
    ranking_line,
    report_figures,
    report_metrics,
    report_tags,
    to_markdown,
)

IMAGES = [f"img{i:02d}" for i in range(12)]
MACHINE = {"cpu": "Test CPU 9000", "cpus": 2, "device": "cpu", "threads": 2, "torch": "2.13.0+cpu"}


def frame(offset: float, noise: float, seed: int, images=IMAGES) -> pd.DataFrame:
    """Per-image metrics as the evaluate node writes them: a fixed content per image (the same for
    every architecture), ``offset`` dB above it, with seeded noise of ``noise`` dB."""
    base = np.random.default_rng(123).normal(30.0, 2.0, len(IMAGES))[: len(images)]
    psnr_y = base + offset + np.random.default_rng(seed).normal(0.0, noise, len(images))
    return pd.DataFrame({"image": list(images), "psnr_y": psnr_y, "ssim_y": 0.8 + psnr_y / 1000,
                         "psnr_rgb": psnr_y - 1.0, "mae": 0.05 - psnr_y / 1000, "mse": 10 ** (-psnr_y / 10)})


# architecture -> (offset over bicubic in dB, noise in dB): edsr and vdsr 0.02 dB apart (noise 0.3), lapsrn 1 dB
ZOO = {"bicubic": (0.0, 0.0), "edsr": (1.02, 0.3), "vdsr": (1.0, 0.3), "lapsrn": (2.0, 0.05), "srgan": (-1.0, 0.1)}


def runs(seeds=(0, 1, 2), zoo=ZOO, images=IMAGES):
    per_image = {a: {s: frame(o, n, 100 * k + s, images) for s in seeds} for k, (a, (o, n)) in enumerate(zoo.items())}
    configs = {a: {s: {"parameters": 1000 * k, "iterations": 600, "train_seconds": 40.0 + s, "seed": s,
                       "machine": MACHINE, "train": {"gan_start": 1000 if a == "srgan" else None},
                       "notes": ["perceptual loss off: no VGG19 weights"] if a == "srgan" else []}
                   for s in seeds} for k, a in enumerate(zoo)}
    timings = {a: {s: {"latency_ms": 10.0 * (k + 1) + s, "machine": MACHINE} for s in seeds}
               for k, a in enumerate(zoo)}
    return per_image, configs, timings


def comparison(seeds=(0, 1, 2), zoo=ZOO, images=IMAGES, benchmarks=None):
    per_image, configs, timings = runs(seeds, zoo, images)
    return build_comparison(per_image, configs, timings, benchmarks, scale=2)


# --- the test split --------------------------------------------------------------------------------


def test_a_row_per_architecture_with_the_mean_and_spread_over_seeds_best_first():
    per_image, configs, timings = runs()
    result = build_comparison(per_image, configs, timings, scale=2)
    table = result.table.set_index("architecture")
    assert list(result.table["architecture"]) == ["lapsrn", "edsr", "vdsr", "bicubic", "srgan"]
    per_seed = [per_image["edsr"][s]["psnr_y"].mean() for s in (0, 1, 2)]
    assert table.loc["edsr", "test/psnr_y"] == pytest.approx(np.mean(per_seed))  # what other code reads
    assert table.loc["edsr", "test/psnr_y_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert table.loc["bicubic", "test/psnr_y_std"] == 0  # bicubic: identical seeds
    for metric in ("ssim_y", "psnr_rgb", "mae", "mse"):
        assert {f"test/{metric}", f"test/{metric}_std"} <= set(table.columns)
    assert table.loc["edsr", "seeds"] == 3 and table.loc["edsr", "test/images"] == 12
    assert table.loc["edsr", "latency_ms"] == pytest.approx(21.0) and table.loc["edsr", "latency_ms_std"] == 1.0
    assert table.loc["edsr", "train_seconds"] == pytest.approx(41.0) and table.loc["lapsrn", "parameters"] == 3000


def test_the_paired_difference_against_bicubic_and_the_next_one_comes_with_an_interval():
    result = comparison()
    table = result.table.set_index("architecture")
    lapsrn = table.loc["lapsrn"]
    per_image = result.per_image[result.per_image["dataset"] == "test"]
    means = per_image.groupby(["image", "architecture"])["psnr_y"].mean().unstack()
    assert lapsrn["test/psnr_y_vs_bicubic"] == pytest.approx((means["lapsrn"] - means["bicubic"]).mean())
    assert lapsrn["test/psnr_y_vs_bicubic_ci_low"] < 2.0 < lapsrn["test/psnr_y_vs_bicubic_ci_high"]
    assert lapsrn["test/next"] == "edsr"
    assert lapsrn["test/psnr_y_vs_next"] == pytest.approx((means["lapsrn"] - means["edsr"]).mean())
    assert lapsrn["test/psnr_y_vs_next_ci_low"] > 0 and bool(lapsrn["test/told_apart_from_next"])
    assert math.isnan(table.loc["bicubic", "test/psnr_y_vs_bicubic"])
    assert table.loc["srgan", "test/next"] == "" and pd.isna(table.loc["srgan", "test/told_apart_from_next"])


def test_the_ranking_says_in_words_where_neighbours_cannot_be_told_apart():
    result = comparison()
    assert ranking_line(result.summaries["test"]) == "lapsrn > edsr ≈ vdsr > bicubic > srgan"
    text = to_markdown(result, published_table(2), "title")
    assert "`lapsrn > edsr ≈ vdsr > bicubic > srgan`" in text
    assert "edsr and vdsr cannot be told apart:" in text
    assert "lapsrn ranks above edsr:" in text and "do not overlap" in text


def test_identical_models_cannot_be_told_apart():
    zoo = {"bicubic": (0.0, 0.0), "edsr": (1.0, 0.2), "twin": (1.0, 0.2)}
    per_image, configs, timings = runs(zoo=zoo)
    per_image["twin"] = {s: f.copy() for s, f in per_image["edsr"].items()}  # the very same outputs
    result = build_comparison(per_image, configs, timings, scale=2)
    summary = result.summaries["test"]
    assert ranking_line(summary) == "edsr ≈ twin > bicubic"
    first = summary.iloc[0]
    assert first["psnr_y_vs_next"] == 0 and (first["psnr_y_vs_next_ci_low"], first["psnr_y_vs_next_ci_high"]) == (0, 0)
    assert "edsr and twin cannot be told apart: the 95% interval of the per-image difference, [0.00, 0.00] dB, " \
           "includes 0" in to_markdown(result, published_table(2), "t")


def test_decimals_follow_the_spread_and_the_rule_is_written_down():
    result = comparison()
    shown = display_table(result).set_index("architecture")
    row = result.table.set_index("architecture").loc["edsr"]
    std = row["test/psnr_y_std"]
    decimals = 1 - math.floor(math.log10(std))  # two significant digits of the std
    assert shown.loc["edsr", "PSNR-Y (dB)"] == f"{row['test/psnr_y']:.{decimals}f} ± {std:.{decimals}f}"
    assert shown.loc["vdsr", "vs next (dB)"].endswith("> bicubic") and "[" in shown.loc["vdsr", "vs next (dB)"]
    one = display_table(comparison(seeds=(0,))).set_index("architecture")
    assert "±" not in one.loc["edsr", "PSNR-Y (dB)"] and len(one.loc["edsr", "PSNR-Y (dB)"].split(".")[1]) == 2
    assert "Decimals follow the uncertainty" in READING and "significant digits" in READING
    assert READING in to_markdown(result, published_table(2), "t")


def test_few_test_images_are_said_plainly_with_the_count():
    result = comparison(images=IMAGES[:4])
    text = to_markdown(result, published_table(2), "t")
    assert "The test split has only 4 images (fewer than 10)" in text and "more seeds" in text
    assert "has only" not in to_markdown(comparison(), published_table(2), "t")  # 12 images: no warning
    page = html_report(result, published_table(2), {}, [], profile="p", crop_size=16)
    assert "The test split has only 4 images" in page


@pytest.mark.parametrize("n", [1, 2])
def test_one_or_two_test_images_give_no_interval_and_nothing_told_apart(n):
    result = comparison(images=IMAGES[:n])
    summary = result.summaries["test"]
    assert summary["psnr_y_vs_next_ci_low"].isna().all() and not summary["told_apart_from_next"].fillna(False).any()
    text = to_markdown(result, published_table(2), "t")
    assert f"The test split has only {n} image" in text and "no interval can be computed" in text
    assert f"no interval: {n} image(s), a bootstrap needs at least 3" in text
    assert "≈" in ranking_line(summary) and ">" not in ranking_line(summary)


def test_one_seed_is_said_and_the_ranking_rests_on_the_images():
    result = comparison(seeds=(0,))
    assert result.table["test/psnr_y_std"].isna().all()
    text = to_markdown(result, published_table(2), "t")
    assert "One seed per architecture: the spread over seeds is unknown" in text
    assert "the spread over seeds is unknown (one seed)" in text  # in the verdicts too
    assert "One seed" not in to_markdown(comparison(), published_table(2), "t")


def test_gan_rows_stay_and_say_they_are_judged_by_psnr():
    result = comparison()
    table = result.table.set_index("architecture")
    assert "srgan" in table.index
    assert table.loc["srgan", "notes"] == f"perceptual loss off: no VGG19 weights; {GAN_NOTE}"
    assert table.loc["edsr", "notes"] == ""
    text = to_markdown(result, published_table(2), "t")
    assert "srgan: a GAN, judged here by PSNR-Y, which it is not trained for" in text


def test_a_note_of_some_seeds_names_them():
    per_image, configs, timings = runs()
    configs["edsr"][1]["notes"] = ["resumed from the checkpoint of iteration 200"]
    result = build_comparison(per_image, configs, timings, scale=2)
    notes = result.table.set_index("architecture").loc["edsr", "notes"]
    assert notes == "seed 1: resumed from the checkpoint of iteration 200"


def test_the_machines_are_shown_when_recorded():
    result = comparison()
    machines = result.machines
    assert list(machines["cpu"]) == ["Test CPU 9000"] and machines.loc[0, "torch"] == "2.13.0+cpu"
    assert "edsr seeds 0, 1, 2 (train, evaluate)" in machines.loc[0, "runs"]
    assert "Test CPU 9000" in to_markdown(result, published_table(2), "t")
    per_image, configs, timings = runs()
    for by_seed in (*configs.values(), *timings.values()):
        for record in by_seed.values():
            record.pop("machine")
    unrecorded = build_comparison(per_image, configs, timings, scale=2)
    assert unrecorded.machines.empty
    assert "The machine is not recorded" in to_markdown(unrecorded, published_table(2), "t")
    configs["edsr"][2]["machine"] = {"cpu": "Other CPU"}
    mixed = build_comparison(per_image, configs, timings, scale=2).machines
    assert set(mixed["cpu"]) == {"Other CPU", "not recorded"}
    assert mixed.set_index("cpu").loc["Other CPU", "runs"] == "edsr seed 2 (train)"


def test_published_rows_are_the_papers_numbers():
    x2 = published_table(2).set_index("architecture")
    assert x2.loc["edsr", "set5"] == 38.11 and x2.loc["bicubic", "urban100"] == 26.88
    assert "Lim et al." in x2.loc["edsr", "source"]
    assert published_table(4).set_index("architecture").loc["esrgan_rrdb", "set14"] == 28.99
    assert published_table(3).empty
    text = to_markdown(comparison(), published_table(2), "title")
    assert "reference rows from the papers, not measured here" in text and "38.11" in text


def test_figures_have_error_bars_and_the_page_is_self_contained():
    result = comparison()
    histories = {a: {s: pd.DataFrame({"step": [10, 20], "val_psnr_y": [29.0 + s / 10, 31.0 - s / 10]})
                     for s in (0, 1, 2)} for a in ZOO}
    histories["bicubic"] = {s: pd.DataFrame({"step": [0], "val_psnr_y": [30.0]}) for s in (0, 1, 2)}
    figures = report_figures(result, histories)
    assert set(figures) == {"psnr_vs_parameters.png", "psnr_vs_latency.png", "validation_curves.png",
                            "gain_over_bicubic.png", "difference_vs_bicubic.png"}
    for name in ("psnr_vs_parameters.png", "psnr_vs_latency.png"):
        bars = [c for c in figures[name].axes[0].containers if isinstance(c, ErrorbarContainer)]
        assert bars and bars[0].has_yerr
        vertical = [s for lines in bars[0].lines[2] for s in lines.get_segments() if s[0][0] == s[1][0]]
        assert max(abs(s[1][1] - s[0][1]) for s in vertical) > 0  # the spread over seeds, drawn
    assert figures["validation_curves.png"].axes[0].collections  # the band of the seeds
    differences = figures["difference_vs_bicubic.png"].axes[0].containers
    assert any(isinstance(c, ErrorbarContainer) and c.has_xerr for c in differences)
    hr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    crops = crop_rows({"a": hr}, {"a": hr[::2, ::2]}, {"edsr": {"a": hr}}, scale=2, crop_size=16)
    assert [t[0] for t in crops[0].tiles] == ["LR input", "edsr", "HR"] and crops[0].tiles[1][1] == "inf dB"
    page = html_report(result, published_table(2), figures, crops, profile="test<", crop_size=16, crop_seed=1)
    assert page.count("data:image/png;base64,") == len(figures) + 3
    assert "test&lt;" in page and "src=\"http" not in page
    assert "output is that of seed 1" in page and "lapsrn &gt; edsr ≈ vdsr" in page
    assert "edsr and vdsr cannot be told apart" in page and "Test CPU 9000" in page


# --- the benchmark sets ----------------------------------------------------------------------------


def measured(rows, seed=0, images=("a", "b", "c", "d")):
    """Per-image benchmark metrics as the evaluate node writes them: (benchmark, scale, psnr_y,
    ssim_y) for each image, a little different per seed."""
    return pd.DataFrame(
        [{"dataset": f"{b}_x{s}", "benchmark": b, "scale": s, "image": image, "psnr_y": p + k / 4 + seed / 100,
          "ssim_y": q - k / 100, "psnr_rgb": p - 1, "mae": 0.02, "mse": 0.001}
         for b, s, p, q in rows for k, image in enumerate(images)],
        columns=["dataset", "benchmark", "scale", "image", "psnr_y", "ssim_y", "psnr_rgb", "mae", "mse"])


BICUBIC = [("mine", 2, 30.0, 0.80), ("set14", 2, 29.0, 0.70), ("set5", 2, 33.0, 0.90), ("set5", 3, 31.0, 0.85)]
EDSR = [("mine", 2, 32.0, 0.85), ("set14", 2, 31.0, 0.80), ("set5", 2, 36.0, 0.95)]


def per_benchmark(seeds=(0,)):
    """bicubic at x2 and x3, edsr at x2 only; an own set ("mine") listed first, set14 before set5."""
    return {"bicubic": {s: measured(BICUBIC, 0) for s in seeds}, "edsr": {s: measured(EDSR, s) for s in seeds}}


def bench_comparison(seeds=(0,), benchmarks=None):
    zoo = {"bicubic": (0.0, 0.0), "edsr": (1.0, 0.2)}
    return comparison(seeds, zoo, benchmarks=benchmarks or per_benchmark(seeds))


def test_benchmark_table_orders_sets_then_measured_rows_by_psnr_then_the_published_ones():
    table = bench_comparison().benchmarks
    groups = list(dict.fromkeys(zip(table["benchmark"], table["scale"], strict=True)))
    assert groups == [("set5", 2), ("set5", 3), ("set14", 2), ("mine", 2)]
    for _, group in table.groupby(["benchmark", "scale"], sort=False):
        ours = group["source"] == MEASURED
        assert list(ours) == sorted(ours, reverse=True)  # measured rows first
        assert list(group.loc[ours, "psnr_y"]) == sorted(group.loc[ours, "psnr_y"], reverse=True)
    edsr = table[(table["source"] == MEASURED) & (table["architecture"] == "edsr")].set_index("benchmark")
    assert edsr.loc["set5", "psnr_y"] == pytest.approx(36.375) and edsr.loc["set5", "ssim_y"] == pytest.approx(0.935)
    assert edsr.loc["set5", "images"] == 4 and edsr.loc["set5", "seeds"] == 1
    assert edsr.loc["set5", "psnr_y_vs_bicubic"] == pytest.approx(3.0)
    assert edsr.loc["set5", "psnr_y_vs_bicubic_ci_low"] == pytest.approx(3.0)  # the same gain on every image
    assert edsr.loc["set5", "parameters"] == 1000 and edsr.loc["set5", "latency_ms"] == 20.0
    assert set(edsr.index) == {"set5", "set14", "mine"}  # as measured: no x3 row
    published = table[table["source"] != MEASURED]
    assert set(zip(published["benchmark"], published["scale"], strict=True)) == {("set5", 2), ("set14", 2)}
    reference = published_table(2).set_index("architecture")
    for row in published.itertuples():
        assert row.psnr_y == reference.loc[row.architecture, row.benchmark]
        assert row.source == reference.loc[row.architecture, "source"] and "et al." in row.source
        assert pd.isna(row.ssim_y) and pd.isna(row.images)


def test_benchmarks_get_the_mean_and_spread_over_seeds_and_a_ranking_each():
    result = bench_comparison(seeds=(0, 1, 2))
    edsr = result.benchmarks.query("architecture == 'edsr' and benchmark == 'set5'").iloc[0]
    assert edsr["seeds"] == 3 and edsr["psnr_y"] == pytest.approx(36.375 + 0.01)
    assert edsr["psnr_y_std"] == pytest.approx(0.01)
    matrix = benchmark_matrix(result.benchmarks).set_index("architecture")
    assert matrix.loc["edsr", "set5 x2"] == "36.385 ± 0.010 / 0.9350 ± 0.0000"
    text = benchmark_markdown(result)
    assert "### Ranking on set5 x2 (PSNR-Y)" in text and "### Ranking on mine x2 (PSNR-Y)" in text
    assert "edsr ranks above bicubic" in text
    assert "Fewer than 10 images in set5 x2 (4), set5 x3 (4), set14 x2 (4), mine x2 (4)" in "\n".join(result.notes)


def test_benchmark_table_survives_a_csv_round_trip():
    table = bench_comparison().benchmarks
    back = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    pd.testing.assert_frame_equal(benchmark_matrix(back), benchmark_matrix(table))
    assert "| edsr (published)" in benchmark_markdown(bench_comparison())


def test_benchmark_matrix_has_a_column_per_benchmark_and_scale_and_the_published_rows_last():
    matrix = benchmark_matrix(bench_comparison().benchmarks)
    assert list(matrix.columns) == ["architecture", "seeds", "parameters", "latency_ms", "train_seconds", "iterations",
                                    "set5 x2", "set5 x3", "set14 x2", "mine x2", "source"]
    rows = list(matrix["architecture"])
    assert rows[:2] == ["edsr", "bicubic"] and all(r.endswith(" (published)") for r in rows[2:])
    cells = matrix.set_index("architecture")
    assert cells.loc["edsr", "set5 x2"] == "36.38 / 0.9350" and cells.loc["edsr", "set5 x3"] == ""
    assert cells.loc["bicubic", "set5 x3"] == "31.38 / 0.8350"
    assert cells.loc["edsr", "parameters"] == "1,000" and cells.loc["edsr", "source"] == MEASURED
    reference = published_table(2).set_index("architecture")
    assert cells.loc["edsr (published)", "set5 x2"] == f"{reference.loc['edsr', 'set5']:.2f}"
    assert cells.loc["edsr (published)", "mine x2"] == "" and cells.loc["edsr (published)", "parameters"] == ""


def test_no_benchmark_gives_no_section_and_no_plot():
    written = pd.read_csv(io.StringIO(measured([]).to_csv(index=False)))  # no benchmark set: a header only
    result = bench_comparison(benchmarks={"edsr": {0: written}, "bicubic": {0: written}})
    assert result.benchmarks.empty and benchmark_markdown(result) == "" and benchmark_matrix(result.benchmarks).empty
    assert set(result.summaries) == {"test"}
    figures = report_figures(result, {})
    assert "psnr_on_benchmarks.png" not in figures
    page = html_report(result, published_table(2), figures, [], profile="p", crop_size=16)
    assert "<h2>Benchmarks</h2>" not in page


def test_page_and_figures_show_the_benchmarks_with_error_bars():
    benchmarks = {"my<arch>": {s: measured(EDSR, s) for s in (0, 1)}, "bicubic": {s: measured(BICUBIC) for s in (0, 1)}}
    zoo = {"bicubic": (0.0, 0.0), "my<arch>": (1.0, 0.2)}
    result = comparison((0, 1), zoo, benchmarks=benchmarks)
    figures = report_figures(result, {})
    assert "psnr_on_benchmarks.png" in figures
    assert any(isinstance(c, ErrorbarContainer) for c in figures["psnr_on_benchmarks.png"].axes[0].containers)
    page = html_report(result, published_table(2), figures, [], profile="p", crop_size=16)
    section = page[page.index("<h2>Benchmarks</h2>"):]
    assert "my&lt;arch&gt;" in section and "my<arch>" not in page  # names are escaped
    assert "bicubic (published)" in section and "Ranking on set5 x2" in section
    assert page.count("data:image/png;base64,") == len(figures)


def test_an_image_reproduced_exactly_reads_inf_in_the_benchmark_table_and_plot():
    exact = pd.DataFrame({"dataset": ["mine_x2"] * 2, "benchmark": ["mine"] * 2, "scale": [2, 2], "image": ["a", "b"],
                          "psnr_y": [np.inf, 40.0], "ssim_y": [1.0, 0.99]})
    result = build_comparison({"bicubic": {0: frame(0, 0, 0)}}, {"bicubic": {0: {}}}, {}, {"bicubic": {0: exact}},
                              scale=2)
    assert benchmark_matrix(result.benchmarks).loc[0, "mine x2"] == "inf / 0.9950"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bar of infinite height: matplotlib would warn, then draw nothing
        figure = benchmark_plot(result.benchmarks)
        figure.savefig(io.BytesIO(), format="png")
    assert any(text.get_text() == "inf" for text in figure.axes[0].texts)


# --- MLflow -----------------------------------------------------------------------------------------


def test_mlflow_keys_hold_the_same_figures():
    result = bench_comparison(seeds=(0, 1, 2))
    metrics = report_metrics(result)
    edsr = result.table.set_index("architecture").loc["edsr"]
    for suffix in ("psnr_y", "psnr_y_std", "ssim_y_std", "mse", "psnr_y_vs_bicubic", "psnr_y_vs_bicubic_ci_low",
                   "psnr_y_vs_bicubic_ci_high", "psnr_y_vs_next", "psnr_y_vs_next_ci_low", "psnr_y_vs_next_ci_high",
                   "images"):
        assert metrics[f"edsr.test/{suffix}"] == pytest.approx(float(edsr[f"test/{suffix}"]))
    assert metrics["edsr.test/told_apart_from_next"] == 1.0 and metrics["edsr.seeds"] == 3
    assert metrics["edsr.set5_x2/psnr_y"] == pytest.approx(36.385)
    assert metrics["edsr.set5_x2/psnr_y_std"] == pytest.approx(0.01)
    assert {"edsr.set5_x2/psnr_y_vs_bicubic_ci_low", "edsr.mine_x2/psnr_y_vs_next"} <= set(metrics)
    assert "bicubic.test/psnr_y_vs_bicubic" not in metrics and "bicubic.test/psnr_y_vs_next" not in metrics  # NaN
    assert not any(math.isnan(v) for v in metrics.values())
    assert report_tags(result)["superres.ranking.test"] == "edsr > bicubic"


# --- the pipeline on per-seed files ----------------------------------------------------------------


def write_project(root: Path, seeds=(0, 1), zoo=None, stale_seed: int | None = None) -> None:
    """The per-seed files training and evaluation write, for ``zoo`` and ``seeds`` (and a stale seed
    folder whose numbers would show if it were read), plus a test split of PNGs."""
    from PIL import Image

    zoo = zoo or {"bicubic": (0.0, 0.0), "edsr": (1.0, 0.2), "srgan": (-0.5, 0.2)}
    per_image, configs, timings = runs(seeds, zoo, IMAGES[:5])
    rng = np.random.default_rng(0)
    for split in ("hr", "lr"):
        (root / f"data/05_model_input/test/{split}").mkdir(parents=True)
    for name in IMAGES[:5]:
        hr = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(hr).save(root / f"data/05_model_input/test/hr/{name}.png")
        Image.fromarray(hr[::2, ::2]).save(root / f"data/05_model_input/test/lr/{name}.png")
    for arch in zoo:
        for seed in [*seeds, *([stale_seed] if stale_seed is not None else [])]:
            stale = seed not in seeds
            out = root / f"data/07_model_output/{arch}/seed{seed}"
            model = root / f"data/06_models/{arch}/seed{seed}"
            (out / "images").mkdir(parents=True)
            model.mkdir(parents=True)
            frame_ = per_image[arch][seeds[0]].assign(psnr_y=99.0) if stale else per_image[arch][seed]
            frame_.to_csv(out / "per_image.csv", index=False)
            measured(EDSR if arch == "edsr" else BICUBIC, seed).to_csv(out / "benchmarks.csv", index=False)
            (out / "timing.json").write_text(json.dumps(timings[arch][seeds[0] if stale else seed]))
            (model / "config.json").write_text(json.dumps(configs[arch][seeds[0] if stale else seed]))
            pd.DataFrame({"step": [10, 20], "train_loss": [0.1, 0.05], "lr": [1e-3, 1e-3],
                          "val_psnr_y": [30.0 + seed / 10, 31.0]}).to_csv(model / "history.csv", index=False)
            for name in IMAGES[:5]:
                Image.open(root / f"data/05_model_input/test/hr/{name}.png").save(out / f"images/{name}.png")


def run_report(root: Path, monkeypatch, seeds, architectures=("bicubic", "edsr", "srgan")):
    """The report pipeline through Kedro's SequentialRunner, with the project's catalog, in ``root``."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from superres.pipelines.report import create_pipeline

    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    loader = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="local")
    catalog = DataCatalog.from_config(loader["catalog"])
    params = {"architectures": list(architectures), "seeds": list(seeds), "prepare": {"scale": 2},
              "report": {"crop_size": 16, "crops": 2}, "profile": "tiny", "tracking": {"experiment": "superres"},
              "pretrained": {}}
    for key, value in params.items():
        catalog[f"params:{key}"] = MemoryDataset(value)
    SequentialRunner().run(create_pipeline(), catalog)


def test_the_report_pipeline_reads_the_per_seed_files_of_the_seeds_asked_for(tmp_path, monkeypatch):
    write_project(tmp_path, seeds=(0, 1), stale_seed=7)
    run_report(tmp_path, monkeypatch, seeds=[0, 1])
    reports = tmp_path / "data/08_reporting"
    table = pd.read_csv(reports / "comparison.csv")
    assert list(table["architecture"]) == ["edsr", "bicubic", "srgan"]
    assert (table["seeds"] == 2).all() and (table["test/psnr_y"] < 50).all()  # the stale seed7 is not read
    assert {"test/psnr_y_std", "test/psnr_y_vs_bicubic_ci_low", "test/told_apart_from_next"} <= set(table.columns)
    markdown = (reports / "comparison.md").read_text()
    assert "The test split has only 5 images (fewer than 10)" in markdown and "## Ranking on the test split" in markdown
    assert "srgan: a GAN" in markdown and "Test CPU 9000" in markdown
    benchmarks = pd.read_csv(reports / "benchmarks.csv")
    assert {"psnr_y_std", "psnr_y_vs_next_ci_high"} <= set(benchmarks.columns)
    page = (reports / "report.html").read_text()
    assert "output is that of seed 0" in page and page.count("<h3>img0") == 2  # report.crops
    plots = {p.name for p in (reports / "plots").iterdir()}
    assert {"psnr_vs_parameters.png", "difference_vs_bicubic.png", "psnr_on_benchmarks.png"} <= plots

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("superres").experiment_id])[0]
    assert run.info.run_name == "report" and run.info.status == "FINISHED" and run.data.params["seeds"] == "0,1"
    edsr = table.set_index("architecture").loc["edsr"]
    for key in ("psnr_y", "psnr_y_std", "psnr_y_vs_bicubic", "psnr_y_vs_bicubic_ci_low", "psnr_y_vs_bicubic_ci_high"):
        assert run.data.metrics[f"edsr.test/{key}"] == pytest.approx(edsr[f"test/{key}"])
    assert "edsr.set5_x2/psnr_y_std" in run.data.metrics
    assert run.data.tags["superres.ranking.test"].startswith("edsr")


def test_a_missing_seed_is_an_error_naming_it_and_the_command(tmp_path, monkeypatch):
    write_project(tmp_path, seeds=(0,))
    with pytest.raises(Exception) as raised:
        run_report(tmp_path, monkeypatch, seeds=[0, 1])
    error = raised.value
    while not isinstance(error, SuperresError) and error.__cause__ is not None:
        error = error.__cause__
    assert isinstance(error, SuperresError)
    message = str(error)
    assert "bicubic/seed1/per_image.csv" in message and "edsr/seed1/per_image.csv" in message
    assert "`dvc repro evaluate@bicubic-1`" in message and "--namespaces=bicubic.seed1" in message


@pytest.mark.parametrize("seeds", [[], [0, 0], [-1], [1.5], "0"])
def test_bad_seeds_are_refused_naming_the_key(seeds):
    from superres.pipelines.report.nodes import check_seeds

    with pytest.raises(ConfigError, match="seeds"):
        check_seeds(seeds)
