"""prepare: validated HR images, LR images, the split, training patches and val/test pairs."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from superres.pipelines.prepare.nodes import (
    make_lr_images,
    make_training_patches,
    select_images,
    select_split,
    split_dataset,
)


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(select_images, ["raw_images", "ingest_report", "params:data", "params:prepare"],
                 ["hr_images", "given_lr_images", "prepare_report"], name="select_images"),
            Node(split_dataset, ["hr_images", "params:data", "params:prepare"], "split", name="split_dataset"),
            Node(make_lr_images, ["hr_images", "given_lr_images", "params:prepare"], "lr_images",
                 name="make_lr_images"),
            Node(make_training_patches, ["hr_images", "lr_images", "split", "params:prepare"], "train_patches",
                 name="make_training_patches"),
            Node(select_split, ["hr_images", "lr_images", "split", "params:data", "params:prepare"],
                 ["val_hr", "val_lr", "test_hr", "test_lr"], name="select_split"),
        ],
        tags=["prepare"],
    )
