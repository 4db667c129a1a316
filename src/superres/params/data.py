"""The ``data`` section of ``params.yaml``: where the images come from."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import Field, field_validator, model_validator

from superres.params import Section, error, path_text

Source = Literal["embedded", "folder", "paired_folder", "url"]
SOURCES = get_args(Source)

class DataParams(Section):
    """``data``: where the images come from."""

    SECTION: ClassVar[str] = "data"
    source: Source = "embedded"
    path: str | None = None  # folder / paired_folder: a folder; url: an archive URL or a known name
    sha256: str | None = None  # url: the archive's expected checksum
    names: list[str] | None = None  # embedded: a subset of the photographs (None = all)
    max_pixels: int = Field(40_000_000, gt=0)  # larger images are refused
    cache_dir: str | None = None  # url: where archives are kept (None = ~/.cache/superres)

    _paths = field_validator("path", "cache_dir", mode="before")(path_text)

    @field_validator("names", mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _path_when_needed(self) -> DataParams:
        if self.source != "embedded" and not self.path:
            raise error(f"data.path is required for the {self.source!r} source: set it in params.yaml")
        return self
