"""report: compare the evaluated architectures over the seeds of ``params:seeds``."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from superres.pipelines.report.nodes import compare, log_report, plot, render_html, save_plots


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(
                compare,
                inputs=["all_per_image_metrics", "all_model_configs", "all_timings", "params:architectures",
                        "params:seeds", "params:prepare", "params:pretrained"],
                outputs=["comparison_table", "benchmark_table", "comparison_markdown", "comparison"],
                name="compare",
            ),
            Node(plot, ["comparison", "all_histories", "params:architectures", "params:seeds"],
                 "comparison_figures", name="plot"),
            Node(save_plots, "comparison_figures", "comparison_plots", name="save_plots"),
            Node(
                render_html,
                inputs=["comparison", "comparison_figures", "all_sr_images", "test_hr", "test_lr",
                        "params:architectures", "params:seeds", "params:report", "params:profile"],
                outputs="report_html",
                name="render_html",
            ),
            Node(
                log_report,
                inputs=["comparison", "comparison_markdown", "report_html", "comparison_figures", "all_model_configs",
                        "params:architectures", "params:seeds", "params:tracking", "tracking_uri", "params:profile"],
                outputs="report_mlflow_run",
                name="log_report",
            ),
        ],
        tags=["report"],
    )
