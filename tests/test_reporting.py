"""The comparison: table, published reference rows, plots and the self-contained page."""

from __future__ import annotations

import numpy as np
import pandas as pd

from superres.reporting import comparison_table, crop_rows, html_report, published_table, report_figures, to_markdown


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
