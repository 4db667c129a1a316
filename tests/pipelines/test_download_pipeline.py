"""The download pipeline through Kedro's runner: a folder of pictures, one of them not an image,
becomes the raw folder and the ingest report."""

from __future__ import annotations

from pipeline_runs import params_entries, project_params, run, write_photos

from superres.pipelines.datasets import DirectoryDataset
from superres.pipelines.download import create_pipeline


def test_a_folder_becomes_the_raw_images_and_the_ingest_report(tmp_path):
    source = tmp_path / "photos"
    stems = write_photos(source, count=3, height=40, width=56)
    (source / "notes").mkdir()
    (source / "notes" / "readme.png").write_text("not an image")
    params = project_params()
    params["data"].update(source="folder", path=str(source))
    raw = DirectoryDataset(path=str(tmp_path / "01_raw"))

    outputs = run(create_pipeline(), {"raw_images": raw, **params_entries(params, "data")})

    assert sorted(p.name for p in (raw.load() / "folder").iterdir()) == ["notes", *(f"{s}.png" for s in stems)]
    report = outputs["ingest_report"].set_index("name")
    assert sorted(report.index) == ["notes__readme.png", *(f"{s}.png" for s in stems)]
    assert (report.loc[[f"{s}.png" for s in stems], "status"] == "accepted").all()
    assert report.loc["notes__readme.png", "status"] == "rejected"
    assert report.loc["notes__readme.png", "reason"]
    assert report.loc["photo0.png", ["width", "height", "channels"]].tolist() == [56, 40, 3]
    assert report.loc["photo1.png", "channels"] == 1
