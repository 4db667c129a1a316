"""The ``prepare`` section of ``params.yaml``: LR/HR pairs, training patches and the split."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from superres.data.degrade import SCALES, Degradation
from superres.data.split import check_fractions
from superres.errors import ConfigError
from superres.params import Section, error, path_text


class DegradationParams(Section):
    """``prepare.degradation``: applied to the bicubic LR, in this order."""

    SECTION: ClassVar[str] = "prepare.degradation"
    blur_sigma: float = Field(0.0, ge=0)  # Gaussian blur, in LR pixels (0 = off)
    noise_sigma: float = Field(0.0, ge=0)  # Gaussian noise, in 8-bit levels (0 = off)
    grayscale: bool = False  # LR made grayscale (kept on 3 channels)
    jpeg_quality: int | None = Field(None, ge=1, le=95)  # JPEG compression of the LR (None = off)

    def to_degradation(self) -> Degradation:
        return Degradation(**self.model_dump())


class SplitParams(Section):
    """``prepare.split``: the fractions of the images in each split (a split left out has none)."""

    SECTION: ClassVar[str] = "prepare.split"
    train: float = Field(0.0, ge=0)
    val: float = Field(0.0, ge=0)
    test: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _usable(self) -> SplitParams:
        try:
            check_fractions(self.model_dump())
        except ConfigError as exc:
            raise error(str(exc)) from None
        if self.train == 0:
            raise error("prepare.split.train is 0: nothing to train on; give train a fraction above 0")
        if self.test == 0:
            raise error("prepare.split.test is 0: the evaluate stage measures the test split; "
                         "give test a fraction above 0")
        return self


class PrepareParams(Section):
    """``prepare``: LR/HR pairs, training patches and the split."""

    SECTION: ClassVar[str] = "prepare"
    scale: int = 2  # 2, 3, 4 or 8
    patch_size: int = 48  # HR training patch, a positive multiple of the scale
    stride: int = 48  # between training patches, in HR pixels, a positive multiple of the scale
    split: SplitParams = SplitParams(train=0.7, val=0.15, test=0.15)
    val_folder: str | None = None  # a folder of HR images to validate on instead of the val share
    seed: int = Field(0, ge=0)
    degradation: DegradationParams = DegradationParams()

    _paths = field_validator("val_folder", mode="before")(path_text)

    @field_validator("degradation", mode="before")
    @classmethod
    def _no_degradation(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("scale")
    @classmethod
    def _known_scale(cls, value: int) -> int:
        if value not in SCALES:
            raise error(f"prepare.scale: must be {', '.join(map(str, SCALES[:-1]))} or {SCALES[-1]}, got {value!r}")
        return value

    @field_validator("patch_size", "stride")
    @classmethod
    def _multiple_of_scale(cls, value: int, info) -> int:
        scale = info.data.get("scale")
        if scale is not None and (value < scale or value % scale):
            raise error(f"prepare.{info.field_name} must be a positive multiple of prepare.scale ({scale}), "
                         f"got {value!r}")
        return value

    @model_validator(mode="after")
    def _validation_images(self) -> PrepareParams:
        if self.split.val == 0 and not self.val_folder:
            raise error("prepare.split.val is 0 and prepare.val_folder is not set: training validates on the val "
                         "split; give val a fraction above 0, or set prepare.val_folder to a folder of HR images")
        return self
