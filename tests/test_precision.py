"""The precision policy: bf16 and channels_last where the device does them natively, fp32 NCHW on demand."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch

from superres import precision
from superres.errors import ConfigError
from superres.inference import Inference, for_inference, super_resolve
from superres.models import create_model
from superres.precision import (
    BF16_INFERENCE,
    FP32_TRAINING,
    inference_precision,
    native_bf16_isa,
    training_precision,
)

CPU = torch.device("cpu")


@pytest.fixture
def isa(monkeypatch):
    """Pretend the CPU has (a string) or lacks (None) native bf16."""

    def pretend(value):
        monkeypatch.setattr(precision, "native_bf16_isa", lambda: value)

    return pretend


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the x86 instruction flags")
def test_native_bf16_is_what_torch_reports_about_the_cpu(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    expected = ("AMX" if torch.cpu._is_amx_tile_supported()
                else "AVX512-BF16" if torch.cpu._is_avx512_bf16_supported() else None)
    assert native_bf16_isa() == (expected if torch.backends.mkldnn.is_available() else None)


@pytest.mark.parametrize("cap", ["avx2", "AVX512_CORE", "AVX512_CORE_VNNI"])
def test_a_onednn_isa_cap_below_bf16_means_no_native_bf16(monkeypatch, cap):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert native_bf16_isa() is None
    assert training_precision("auto", "auto", CPU).bf16 is False


def test_training_auto_is_bf16_and_channels_last_with_native_bf16(isa):
    isa("AMX")
    chosen = training_precision("auto", "auto", CPU)
    assert (chosen.bf16, chosen.channels_last) == (True, True)
    assert "AMX" in chosen.reason and chosen.record()["amp"] == "bf16"


def test_training_auto_keeps_the_architectures_that_lose_quality_in_bf16_in_fp32(isa):
    isa("AMX")
    for architecture in FP32_TRAINING:
        kept = training_precision("auto", "auto", CPU, architecture)
        assert (kept.bf16, kept.channels_last) == (False, True) and architecture in kept.reason
        assert training_precision("bf16", "auto", CPU, architecture).bf16 is True  # forced, it still can
    assert training_precision("auto", "auto", CPU, "edsr").bf16 is True


def test_training_auto_without_native_bf16_is_fp32_channels_last(isa):
    isa(None)
    chosen = training_precision("auto", "auto", CPU)
    assert (chosen.bf16, chosen.channels_last) == (False, torch.backends.mkldnn.is_available())
    assert "no native bf16" in chosen.reason


def test_off_and_false_force_fp32_nchw_and_bf16_forces_bf16(isa):
    isa("AMX")
    assert training_precision("off", False, CPU).describe() == "fp32, NCHW"
    isa(None)
    assert training_precision("bf16", "auto", CPU).bf16 is True


@pytest.mark.parametrize(("amp", "layout", "key"),
                         [("fp16", "auto", "train.amp"), ("auto", "yes", "train.channels_last")])
def test_unknown_training_choices_are_refused(amp, layout, key):
    with pytest.raises(ConfigError, match=key):
        training_precision(amp, layout, CPU)


def test_inference_bf16_only_for_the_architectures_measured_within_tolerance(isa):
    isa("AVX512-BF16")
    kept = next(iter(sorted(BF16_INFERENCE)))
    assert inference_precision(kept, CPU).bf16 is True
    refused = inference_precision("srcnn", CPU)
    assert refused.bf16 is False and "0.01 dB" in refused.reason
    assert inference_precision(None, CPU).bf16 is False  # an unknown model stays fp32
    assert inference_precision("srcnn", CPU, "bf16").bf16 is True
    assert inference_precision(kept, CPU, "fp32").bf16 is False
    isa(None)
    assert inference_precision(kept, CPU).bf16 is False
    with pytest.raises(ConfigError, match="fp16"):
        inference_precision(kept, CPU, "fp16")


def test_inference_wrapper_returns_fp32_nchw_and_fp32_matches_the_plain_model():
    torch.manual_seed(0)
    model = create_model("edsr", scale=2, n_resblocks=2, n_feats=16)
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    plain = super_resolve(model.eval(), image)
    fp32 = for_inference(model, "edsr", CPU, "fp32")
    assert isinstance(fp32, Inference) and fp32.precision.bf16 is False
    y = fp32(torch.rand(1, 3, 8, 8))
    assert y.dtype == torch.float32 and y.is_contiguous()
    assert np.abs(super_resolve(fp32, image).astype(int) - plain).max() <= 1  # layout only: rounding at most
    bf16 = for_inference(model, "edsr", CPU, "bf16")
    assert bf16(torch.rand(1, 3, 8, 8)).dtype == torch.float32
    assert np.abs(super_resolve(bf16, image).astype(int) - plain).mean() < 2  # close, not equal
