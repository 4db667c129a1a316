"""The ``benchmarks`` section of ``params.yaml``: the test sets of the literature and folders of your own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from superres.data.benchmarks import Benchmark, benchmark_plan
from superres.data.degrade import SCALES
from superres.errors import ConfigError
from superres.params import Section, error, path_text


class BenchmarksParams(Section):
    """``benchmarks``: the test sets of the literature and folders of your own, at which scales."""

    SECTION: ClassVar[str] = "benchmarks"
    sets: list[str] = Field(default_factory=list)  # known by name: set5 set14 bsd100 urban100 manga109
    folders: dict[str, str] = Field(default_factory=dict)  # your own folders of HR images, by name
    scales: list[int] | None = None  # None = [prepare.scale]

    @field_validator("sets", "folders", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info) -> Any:
        if value is None:
            return [] if info.field_name == "sets" else {}
        if info.field_name == "folders" and isinstance(value, Mapping):
            return {name: path_text(folder) for name, folder in value.items()}
        return value

    @field_validator("scales", mode="before")
    @classmethod
    def _one_scale(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("scales")
    @classmethod
    def _known_scales(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(s not in SCALES for s in value)):
            raise error(f"benchmarks.scales must be null or a list of 2, 3, 4 and 8, got {value!r}")
        return value

    @model_validator(mode="after")
    def _plan(self) -> BenchmarksParams:
        try:
            self.plan(SCALES[0])  # the names: known sets, usable folder names, none twice
        except ConfigError as exc:
            raise error(str(exc)) from None
        return self

    def plan(self, default_scale: int) -> tuple[list[Benchmark], list[int]]:
        """The benchmarks to make and the sorted scales (``default_scale`` when ``scales`` is None)."""
        return benchmark_plan(self.model_dump(), default_scale)
