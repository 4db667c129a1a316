"""The typed sections of params.yaml: strict, closed, checked, one line naming the key; one set of defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from superres.errors import ConfigError
from superres.params.benchmarks import BenchmarksParams
from superres.params.data import DataParams
from superres.params.evaluate import EvaluateParams
from superres.params.prepare import PrepareParams
from superres.profiles import available, with_profile
from superres.training.config import TrainConfig

SECTIONS = {"data": DataParams, "prepare": PrepareParams, "benchmarks": BenchmarksParams, "evaluate": EvaluateParams}


def params_yaml() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def refused(section: type, params: dict) -> str:
    with pytest.raises(ConfigError) as info:
        section.from_params(params)
    message = str(info.value)
    assert "\n" not in message, "one line"
    return message


@pytest.mark.parametrize(("section", "params", "message"), [
    (PrepareParams, {"scale": 4.5}, "prepare.scale: input should be a valid integer, got 4.5"),
    (PrepareParams, {"scale": True}, "prepare.scale: input should be a valid integer, got True"),
    (PrepareParams, {"scale": 5}, "prepare.scale: must be 2, 3, 4 or 8, got 5"),
    (BenchmarksParams, {"scales": [2, 4.5]}, r"benchmarks.scales\[1\]: input should be a valid integer, got 4.5"),
    (BenchmarksParams, {"scales": [5]}, r"benchmarks.scales must be null or a list of 2, 3, 4 and 8, got \[5\]"),
])
def test_a_scale_that_is_not_an_integer_or_not_supported_is_refused(section, params, message):
    assert refused(section, params) == message.replace("\\", "")


@pytest.mark.parametrize(("section", "params", "message"), [
    (PrepareParams, {"patch_size": -3}, r"prepare.patch_size must be a positive multiple of prepare.scale \(2\), "
                                        "got -3"),
    (PrepareParams, {"patch_size": 33}, r"prepare.patch_size must be a positive multiple of prepare.scale \(2\)"),
    (PrepareParams, {"scale": 4, "stride": 6}, r"prepare.stride must be a positive multiple of prepare.scale \(4\)"),
    (PrepareParams, {"seed": -1}, "prepare.seed: input should be greater than or equal to 0, got -1"),
    (PrepareParams, {"degradation": {"blur_sigma": -1.0}}, "prepare.degradation.blur_sigma: input should be greater"),
    (PrepareParams, {"degradation": {"jpeg_quality": 96}}, "prepare.degradation.jpeg_quality: input should be less"),
    (PrepareParams, {"split": {"train": -0.1, "val": 0.5, "test": 0.6}},
     "prepare.split.train: input should be greater"),
    (DataParams, {"max_pixels": -1}, "data.max_pixels: input should be greater than 0, got -1"),
    (DataParams, {"max_pixels": 4e7}, "data.max_pixels: input should be a valid integer, got 40000000.0"),
])
def test_negative_and_out_of_range_values_are_refused(section, params, message):
    assert re.match(message, refused(section, params))


@pytest.mark.parametrize(("section", "params", "message"), [
    (PrepareParams, {"scael": 2}, "prepare.scael: unknown key; known keys are scale, patch_size, stride, split, "
                                  "val_folder, seed, degradation"),
    (PrepareParams, {"split": {"train": 0.8, "valid": 0.2}}, "prepare.split.valid: unknown key; known keys are "
                                                             "train, val, test"),
    (PrepareParams, {"degradation": {"blur": 1.0}}, "prepare.degradation.blur: unknown key; known keys are "
                                                    "blur_sigma, noise_sigma, grayscale, jpeg_quality"),
    (DataParams, {"sorce": "folder"}, "data.sorce: unknown key; known keys are source, path, sha256, names, "
                                      "max_pixels, cache_dir"),
    (BenchmarksParams, {"scale": [2]}, "benchmarks.scale: unknown key; known keys are sets, folders, scales"),
    (EvaluateParams, {"save_image": True}, "evaluate.save_image: unknown key; known keys are save_images, precision"),
])
def test_an_unknown_key_is_refused_by_its_name_with_the_known_ones(section, params, message):
    assert refused(section, params) == message


@pytest.mark.parametrize(("section", "params", "message"), [
    (PrepareParams, {"split": {"train": 0.8, "val": 0.19, "test": 0.1}}, "prepare.split: the fractions sum to 1.09"),
    (PrepareParams, {"split": {"train": 0.9, "val": 0.0, "test": 0.1}},
     "prepare.split.val is 0 and prepare.val_folder"),
    (PrepareParams, {"split": {"train": 0.9, "val": 0.1, "test": 0.0}}, "prepare.split.test is 0"),
    (PrepareParams, {"split": {"train": 0.0, "val": 0.5, "test": 0.5}}, "prepare.split.train is 0"),
    (PrepareParams, {"split": [0.8, 0.1, 0.1]}, "prepare.split: must be a mapping of keys"),
    (PrepareParams, {"split": {"train": "0.8", "val": 0.1, "test": 0.1}}, "prepare.split.train: input should be a"),
    (DataParams, {"source": "ftp"}, "data.source: 'ftp' is not a known source; choose one of embedded, folder, "
                                    "paired_folder, url"),
    (DataParams, {"source": "folder"}, "data.path is required for the 'folder' source"),
    (BenchmarksParams, {"sets": ["set6"]}, "benchmarks.sets: 'set6' is not a known benchmark"),
    (BenchmarksParams, {"sets": "set5"}, "benchmarks.sets: input should be a valid list, got 'set5'"),
    (BenchmarksParams, {"folders": {"My Photos": "p"}}, "benchmarks.folders: 'My Photos' is not a usable"),
    (BenchmarksParams, {"sets": ["set5"], "folders": {"set5": "p"}}, "benchmarks: set5 named twice"),
    (EvaluateParams, {"save_images": "yes"}, "evaluate.save_images: input should be a valid boolean, got 'yes'"),
    (EvaluateParams, {"precision": "fp16"}, "evaluate.precision: 'fp16' is not a known precision; choose one of "
                                            "auto, bf16, fp32"),
])
def test_the_rules_of_each_section_name_the_key(section, params, message):
    assert refused(section, params).startswith(message)


def test_every_error_is_reported_on_one_line():
    message = refused(PrepareParams, {"scale": 4.5, "stride": -1, "extra": 1})
    assert message.count("; ") >= 2 and "prepare.scale" in message and "prepare.extra" in message


def test_values_are_read_as_typed_attributes():
    prepare = PrepareParams.from_params({"scale": 4, "patch_size": 96, "stride": 48, "degradation": None,
                                         "split": {"train": 0.9, "val": 0, "test": 0.1}, "val_folder": Path("v")})
    assert (prepare.scale, prepare.patch_size, prepare.stride, prepare.val_folder) == (4, 96, 48, "v")
    assert prepare.split.model_dump() == {"train": 0.9, "val": 0.0, "test": 0.1}
    assert isinstance(prepare.split.val, float)  # an integer fraction is read as a float
    assert PrepareParams.from_params(prepare) is prepare
    benchmarks = BenchmarksParams.from_params({"sets": None, "folders": {"mine": Path("~/p")}, "scales": 4})
    plan, scales = benchmarks.plan(2)
    assert [b.name for b in plan] == ["mine"] and scales == [4]
    assert BenchmarksParams.from_params({}).plan(3)[1] == [3]
    assert DataParams.from_params({"source": "embedded", "names": "camera"}).names == ["camera"]


def test_the_defaults_are_the_default_profile_params_yaml():
    """One set of defaults: each class's defaults are what params.yaml, as committed, holds."""
    params = params_yaml()
    assert params["profile"] == "default"
    for key, section in SECTIONS.items():
        assert section().model_dump() == params[key], key
        assert section.from_params(params[key]) == section()
    train = TrainConfig()
    assert {key: getattr(train, key) for key in params["train"]} == params["train"]


@pytest.mark.parametrize("profile", available(ROOT / "conf" / "profiles"))
def test_every_profile_validates(profile):
    params = with_profile(params_yaml(), profile, ROOT / "conf" / "profiles")
    for key, section in SECTIONS.items():
        section.from_params(params[key])
    for arch in params["architectures"]:
        TrainConfig.from_params(params["train"], **(params[arch].get("train") or {}))
