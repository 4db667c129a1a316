"""The ``evaluate`` section of ``params.yaml``: what the evaluate stage writes."""

from __future__ import annotations

from typing import ClassVar, Literal

from superres.params import Section


class EvaluateParams(Section):
    """``evaluate``: what the evaluate stage writes."""

    SECTION: ClassVar[str] = "evaluate"
    save_images: bool = True  # the SR images of the test split
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # of inference: auto = as superres upscale (superres.precision)
