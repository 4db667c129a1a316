"""The comparison: table, published reference rows, plots and the self-contained page; the
benchmark x scale table, its readable matrix, its plot and its section of the page."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd

from superres.reporting import MEASURED, benchmark_markdown, benchmark_matrix, benchmark_plot, benchmark_table, comparison_table
from superres.reporting import crop_rows, html_report, published_table, report_figures, to_markdown


def per_image():
    return {
        "bicubic": pd.DataFrame({"image": ["a", "b"], "psnr_y": [30.0, 32.0], "ssim_y": [0.8, 0.9]}),
        "edsr": pd.DataFrame({"image": ["a", "b"], "psnr_y": [31.0, 34.0], "ssim_y": [0.85, 0.95]}),
    }


def test_table_ranks_by_psnr_and_measures_the_gain_over_bicubic():
    configs = {"edsr": {"parameters": 1000, "iterations": 10, "train_seconds": 2.5,
                        "notes": ["perceptual loss off: VGG19 ImageNet weights not found"]}, "bicubic": {}}
    timings = {"edsr": {"latency_ms": 12.0}, "bicubic": {"latency_ms": 1.0}}
    table = comparison_table(per_image(), configs, timings)
    assert list(table["architecture"]) == ["edsr", "bicubic"]
    assert table.loc[0, "test/psnr_y"] == 32.5 and table.loc[0, "test/psnr_y_gain"] == 1.5
    assert table.loc[0, "latency_ms"] == 12.0 and table.loc[1, "parameters"] == 0
    assert table.loc[0, "notes"].startswith("perceptual loss off") and table.loc[1, "notes"] == ""
    assert "perceptual loss off" in to_markdown(table, published_table(2), "title", 2)  # the report says so plainly


def test_published_rows_are_the_papers_numbers():
    x2 = published_table(2).set_index("architecture")
    assert x2.loc["edsr", "set5"] == 38.11 and x2.loc["bicubic", "urban100"] == 26.88
    assert "Lim et al." in x2.loc["edsr", "source"]
    assert published_table(4).set_index("architecture").loc["esrgan_rrdb", "set14"] == 28.99
    assert published_table(3).empty


def test_markdown_marks_the_published_rows_as_reference():
    table = comparison_table(per_image(), {}, {})
    text = to_markdown(table, published_table(2), "title", 2)
    assert "reference rows from the papers, not measured here" in text and "38.11" in text


def test_figures_and_page_are_self_contained():
    frames = per_image()
    table = comparison_table(frames, {"edsr": {"parameters": 10}}, {"edsr": {"latency_ms": 5.0}, "bicubic": {"latency_ms": 1.0}})
    histories = {"bicubic": pd.DataFrame({"step": [0], "val_psnr_y": [30.0]}),
                 "edsr": pd.DataFrame({"step": [10, 20], "val_psnr_y": [29.0, 31.0]})}
    figures = report_figures(table, frames, histories)
    assert set(figures) == {"psnr_vs_parameters.png", "psnr_vs_latency.png", "validation_curves.png", "gain_over_bicubic.png"}
    hr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    crops = crop_rows({"a": hr}, {"a": hr[::2, ::2]}, {"edsr": {"a": hr}}, scale=2, crop_size=16)
    assert [t[0] for t in crops[0].tiles] == ["LR input", "edsr", "HR"] and crops[0].tiles[1][1] == "inf dB"
    page = html_report(table, published_table(2), figures, crops, profile="test<", scale=2, n_test=2, crop_size=16)
    assert page.count("data:image/png;base64,") == len(figures) + 3
    assert "test&lt;" in page and "src=\"http" not in page


# --- the benchmark sets ----------------------------------------------------------------------


def measured(rows):
    """Per-image benchmark metrics as the evaluate node writes them: (benchmark, scale, psnr_y, ssim_y) for
    images a and b."""
    return pd.DataFrame(
        [{"dataset": f"{b}_x{s}", "benchmark": b, "scale": s, "image": image, "psnr_y": p + k, "ssim_y": q - k / 100}
         for b, s, p, q in rows for k, image in enumerate(["a", "b"])],
        columns=["dataset", "benchmark", "scale", "image", "psnr_y", "ssim_y"])


def per_benchmark():
    """bicubic at x2 and x3, edsr at x2 only; an own set ("mine") listed first, set14 before set5."""
    return {
        "bicubic": measured([("mine", 2, 30.0, 0.80), ("set14", 2, 29.0, 0.70), ("set5", 2, 33.0, 0.90),
                             ("set5", 3, 31.0, 0.85)]),
        "edsr": measured([("mine", 2, 32.0, 0.85), ("set14", 2, 31.0, 0.80), ("set5", 2, 36.0, 0.95)]),
    }


CONFIGS = {"edsr": {"parameters": 1234, "iterations": 10, "train_seconds": 3.0}, "bicubic": {"parameters": 0}}
TIMINGS = {"edsr": {"latency_ms": 5.0}, "bicubic": {"latency_ms": 1.0}}
HISTORIES = {"edsr": pd.DataFrame({"step": [10, 20], "val_psnr_y": [29.0, 31.0]})}


def test_benchmark_table_orders_sets_then_measured_rows_by_psnr_then_the_published_ones():
    table = benchmark_table(per_benchmark(), CONFIGS, TIMINGS)
    groups = list(dict.fromkeys(zip(table["benchmark"], table["scale"])))
    assert groups == [("set5", 2), ("set5", 3), ("set14", 2), ("mine", 2)]
    for (benchmark, scale), group in table.groupby(["benchmark", "scale"], sort=False):
        ours = group["source"] == MEASURED
        assert list(ours) == sorted(ours, reverse=True)  # measured rows first
        assert list(group.loc[ours, "psnr_y"]) == sorted(group.loc[ours, "psnr_y"], reverse=True)
    edsr = table[(table["source"] == MEASURED) & (table["architecture"] == "edsr")].set_index("benchmark")
    assert edsr.loc["set5", "psnr_y"] == 36.5 and edsr.loc["set5", "ssim_y"] == 0.945
    assert edsr.loc["set5", "images"] == 2
    assert edsr.loc["set5", "parameters"] == 1234 and edsr.loc["set5", "latency_ms"] == 5.0
    assert set(edsr.index) == {"set5", "set14", "mine"}  # as measured: no x3 row
    # the papers' numbers, cited, for the benchmarks and scales measured here only (none at x3, nor for an own set)
    published = table[table["source"] != MEASURED]
    assert set(zip(published["benchmark"], published["scale"])) == {("set5", 2), ("set14", 2)}
    reference = published_table(2).set_index("architecture")
    for row in published.itertuples():
        assert row.psnr_y == reference.loc[row.architecture, row.benchmark]
        assert row.source == reference.loc[row.architecture, "source"] and "et al." in row.source
        assert pd.isna(row.ssim_y) and pd.isna(row.images)
    assert {"bicubic", "edsr"} <= set(published["architecture"])


def test_benchmark_table_survives_a_csv_round_trip():
    frames = {arch: pd.read_csv(io.StringIO(frame.to_csv(index=False))) for arch, frame in per_benchmark().items()}
    table = benchmark_table(frames, CONFIGS, TIMINGS)
    pd.testing.assert_frame_equal(table, benchmark_table(per_benchmark(), CONFIGS, TIMINGS))
    back = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    pd.testing.assert_frame_equal(benchmark_matrix(back), benchmark_matrix(table))
    assert benchmark_markdown(back) == benchmark_markdown(table)
    assert "| edsr (published)" in benchmark_markdown(table)


def test_benchmark_matrix_has_a_column_per_benchmark_and_scale_and_the_published_rows_last():
    matrix = benchmark_matrix(benchmark_table(per_benchmark(), CONFIGS, TIMINGS))
    assert list(matrix.columns) == ["architecture", "parameters", "latency_ms", "train_seconds", "iterations",
                                    "set5 x2", "set5 x3", "set14 x2", "mine x2", "source"]
    rows = list(matrix["architecture"])
    assert rows[:2] == ["edsr", "bicubic"] and all(r.endswith(" (published)") for r in rows[2:])
    assert {"edsr (published)", "bicubic (published)"} <= set(rows[2:])
    cells = matrix.set_index("architecture")
    assert cells.loc["edsr", "set5 x2"] == "36.50 / 0.9450" and cells.loc["edsr", "set5 x3"] == ""
    assert cells.loc["bicubic", "set5 x3"] == "31.50 / 0.8450"
    assert cells.loc["edsr", "parameters"] == "1,234" and cells.loc["edsr", "source"] == MEASURED
    reference = published_table(2).set_index("architecture")
    assert cells.loc["edsr (published)", "set5 x2"] == f"{reference.loc['edsr', 'set5']:.2f}"
    assert cells.loc["edsr (published)", "mine x2"] == "" and cells.loc["edsr (published)", "parameters"] == ""
    assert cells.loc["edsr (published)", "source"] == reference.loc["edsr", "source"]


def test_no_benchmark_gives_no_section_and_no_plot():
    written = pd.read_csv(io.StringIO(measured([]).to_csv(index=False)))  # no benchmark set: a header only
    empty = benchmark_table({"edsr": written, "bicubic": written}, CONFIGS, TIMINGS)
    assert empty.empty and benchmark_markdown(empty) == "" and benchmark_matrix(empty).empty
    back = pd.read_csv(io.StringIO(empty.to_csv(index=False)))
    assert benchmark_markdown(back) == ""
    frames = per_image()
    table = comparison_table(frames, CONFIGS, TIMINGS)
    figures = report_figures(table, frames, HISTORIES, back)
    assert "psnr_on_benchmarks.png" not in figures
    page = html_report(table, published_table(2), figures, [], profile="p", scale=2, n_test=2, crop_size=16,
                       benchmarks=back)
    assert "<h2>Benchmarks</h2>" not in page


def test_page_and_figures_show_the_benchmarks():
    frames = {"my<arch>": per_benchmark()["edsr"], "bicubic": per_benchmark()["bicubic"]}
    benchmarks = benchmark_table(frames, CONFIGS, TIMINGS)
    table = comparison_table(per_image(), CONFIGS, TIMINGS)
    figures = report_figures(table, per_image(), HISTORIES, benchmarks)
    assert "psnr_on_benchmarks.png" in figures
    assert "psnr_on_benchmarks.png" not in report_figures(table, per_image(), HISTORIES)
    page = html_report(table, published_table(2), figures, [], profile="p", scale=2, n_test=2, crop_size=16,
                       benchmarks=benchmarks)
    section = page[page.index("<h2>Benchmarks</h2>"):]
    assert "my&lt;arch&gt;" in section and "my<arch>" not in page  # names are escaped
    assert "36.50 / 0.9450" in section and "bicubic (published)" in section
    assert published_table(2).set_index("architecture").loc["edsr", "source"] in section
    assert page.count("data:image/png;base64,") == len(figures)


def test_an_image_reproduced_exactly_reads_inf_in_the_benchmark_table_and_plot():
    exact = pd.DataFrame({"dataset": ["mine_x2"] * 2, "benchmark": ["mine"] * 2, "scale": [2, 2], "image": ["a", "b"],
                          "psnr_y": [np.inf, 40.0], "ssim_y": [1.0, 0.99]})
    table = benchmark_table({"bicubic": exact}, {}, {})
    assert benchmark_matrix(table).loc[0, "mine x2"] == "inf / 0.9950"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bar of infinite height: matplotlib would warn, then draw nothing
        figure = benchmark_plot(table)
        figure.savefig(io.BytesIO(), format="png")
    assert any(text.get_text() == "inf" for text in figure.axes[0].texts)
