"""The prepare pipeline through Kedro's runner: the accepted pictures of a download become the
split, the LR images, the training patches and the whole val/test pairs."""

from __future__ import annotations

import numpy as np
from pipeline_runs import params_entries, project_params, run, write_photos

from superres.data.degrade import bicubic_resize
from superres.data.imageio import read_image
from superres.pipelines.datasets import DirectoryDataset
from superres.pipelines.download.nodes import fetch_images, ingest_images
from superres.pipelines.prepare import create_pipeline


def test_the_accepted_pictures_become_patches_and_split_pairs(tmp_path):
    params = project_params()
    photos = tmp_path / "photos"
    write_photos(photos, count=8, height=48, width=64)
    write_photos(photos / "small", count=1, height=12, width=12)  # smaller than one training patch
    params["data"].update(source="folder", path=str(photos))
    params["prepare"].update(scale=2, patch_size=16, stride=16)
    raw = DirectoryDataset(path=str(tmp_path / "01_raw"))
    raw.save(fetch_images(params["data"]))
    ingest_report = ingest_images(raw.load(), params["data"])

    out = run(create_pipeline(), {"raw_images": raw, "ingest_report": ingest_report,
                                  **params_entries(params, "data", "prepare")})

    report = out["prepare_report"].set_index("name")
    assert report.loc["small__photo0", "status"] == "rejected"
    assert "smaller than one training patch" in report.loc["small__photo0", "reason"]
    assert (report.drop(index="small__photo0")["status"] == "kept").all()
    split = out["split"]
    assert split["split"].value_counts().to_dict() == {"train": 6, "val": 1, "test": 1}
    assert "small__photo0" not in set(split["image"])

    def picture(name: str) -> np.ndarray:
        return read_image(photos / f"{name}.png", max_pixels=params["data"]["max_pixels"])[0]

    # 6 pictures of 64 x 48 on a grid of 16 HR pixels: 4 x 3 patches each, channels first
    patches = out["train_patches"]
    assert patches["hr"].shape == (72, 3, 16, 16) and patches["lr"].shape == (72, 3, 8, 8)
    assert patches["hr"].dtype == patches["lr"].dtype == np.uint8
    first = sorted(split.loc[split["split"] == "train", "image"])[0]
    hr_first = np.broadcast_to(picture(first), (48, 64, 3))  # a gray picture on three channels
    np.testing.assert_array_equal(patches["hr"][0], hr_first[:16, :16].transpose(2, 0, 1))
    np.testing.assert_array_equal(patches["lr"][0], bicubic_resize(hr_first, 1 / 2)[:8, :8].transpose(2, 0, 1))

    for which in ("val", "test"):
        (name,) = split.loc[split["split"] == which, "image"]
        assert set(out[f"{which}_hr"]) == set(out[f"{which}_lr"]) == {name}
        hr, lr = out[f"{which}_hr"][name](), out[f"{which}_lr"][name]()
        np.testing.assert_array_equal(hr, picture(name))
        np.testing.assert_array_equal(lr, bicubic_resize(hr, 1 / 2))
