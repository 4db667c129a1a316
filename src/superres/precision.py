"""Which precision and memory layout a model computes in: the fastest correct choice for the device.

``auto`` means bf16 autocast and channels_last where the device computes bf16 natively: CUDA GPUs
with bf16, and CPUs with AVX512-BF16 or AMX (Intel Cooper Lake and Sapphire Rapids on, AMD Zen 4
on) or the Arm BF16 extension. On other CPUs oneDNN emulates bf16, which is slower than fp32, so
they stay fp32; channels_last alone still pays off there (oneDNN's convolutions are NHWC-native)
and is kept. The answer comes from what PyTorch and oneDNN report about the CPU, never from its
model name, and ``ONEDNN_MAX_CPU_ISA`` set below bf16 (oneDNN then uses no bf16 instructions) is
honoured.

What autocast leaves in fp32 stays there: the weights and the optimiser state (autocast casts
copies), the losses (computed on ``.float()`` outputs), the metrics (on uint8 images) and the
bicubic resize matrices (:func:`superres.data.resize.imresize` turns autocast off).

Inference follows the same rule, per architecture: an architecture infers in bf16 only where its
bf16 output was measured within :data:`INFERENCE_TOLERANCE_DB` of fp32 on Set5 and Set14
(:data:`BF16_INFERENCE`); the others infer in fp32, in channels_last where that is the layout.
"""

from __future__ import annotations

import os
import platform
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from superres.errors import ConfigError

AMP_CHOICES = ("auto", "bf16", "off")
INFERENCE_CHOICES = ("auto", "bf16", "fp32")
INFERENCE_TOLERANCE_DB = 0.01  # PSNR-Y that bf16 inference may lose against fp32, on Set5 and on Set14

# Architectures whose bf16 output (autocast, channels_last) stays within INFERENCE_TOLERANCE_DB of fp32 on
# Set5 x2 and Set14 x2 for the default-profile models (BENCHMARKS.md, "bf16 inference"). SRCNN, SRResNet,
# SRGAN and ESRGAN lost 0.016 to 0.05 dB there, so they infer in fp32.
BF16_INFERENCE = frozenset({"autoencoder", "edsr", "lapsrn", "unet", "vdsr"})

# Architectures that train in fp32 under ``amp: auto`` even where bf16 is native: trained in bf16, the
# default-profile LapSRN's Set5 and Set14 PSNR-Y fell 0.16 and 0.11 dB on average (BENCHMARKS.md, "bf16 on
# the CPU"), more than the 0.05 dB a faster precision may cost. ``amp: bf16`` still trains it in bf16.
FP32_TRAINING = frozenset({"lapsrn"})

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which oneDNN executes no native bf16 instruction.
_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                                "AVX512_CORE_VNNI"})


@dataclass(frozen=True)
class Precision:
    """How a model computes: bf16 autocast or fp32, channels_last or NCHW, and why."""

    bf16: bool
    channels_last: bool
    reason: str

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device) -> AbstractContextManager[None]:
        """bf16 autocast on ``device`` when this precision is bf16; a no-op context otherwise."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def describe(self) -> str:
        """``bf16 autocast, channels_last`` or ``fp32, NCHW``: the choice in a few words."""
        return f"{'bf16 autocast' if self.bf16 else 'fp32'}, {'channels_last' if self.channels_last else 'NCHW'}"

    def record(self) -> dict[str, object]:
        """What a run and a model's ``config.json`` record: ``amp`` (bf16 | off), ``channels_last``, ``reason``."""
        return {"amp": "bf16" if self.bf16 else "off", "channels_last": self.channels_last, "reason": self.reason}


def native_bf16_isa() -> str | None:
    """The CPU's native bf16 instructions as oneDNN would use them (``AMX``, ``AVX512-BF16``, ``Arm BF16``),
    or None where there are none, oneDNN is missing, or ``ONEDNN_MAX_CPU_ISA`` keeps oneDNN below them."""
    if not torch.backends.mkldnn.is_available():
        return None
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap in _ISAS_WITHOUT_BF16:
        return None
    if platform.machine().lower() in ("aarch64", "arm64"):
        # on Arm, oneDNN's bf16 check is the BF16 extension itself
        return "Arm BF16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512-BF16"
    return None


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA with bf16, or a CPU per :func:`native_bf16_isa`)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and native_bf16_isa() is not None


def _why_auto(device: torch.device) -> str:
    if device.type == "cuda":
        return "CUDA"
    if device.type != "cpu":
        return f"{device.type}: no bf16 autocast here"
    isa = native_bf16_isa()
    return f"the CPU computes bf16 natively ({isa})" if isa else "the CPU has no native bf16"


def _channels_last_auto(device: torch.device) -> bool:
    # oneDNN's convolutions on the CPU and cuDNN's on CUDA are fastest in NHWC (BENCHMARKS.md, fp32 and bf16 alike)
    return device.type == "cuda" or (device.type == "cpu" and torch.backends.mkldnn.is_available())


def training_precision(amp: str, channels_last: str | bool, device: torch.device,
                       architecture: str | None = None) -> Precision:
    """The precision of a training run from ``train.amp`` (auto | bf16 | off) and ``train.channels_last``
    (auto | true | false): ``auto`` is the fastest correct choice on ``device`` for ``architecture`` (the
    ones in :data:`FP32_TRAINING` stay fp32); ``off``/``false`` force fp32 NCHW."""
    if amp not in AMP_CHOICES:
        raise ConfigError(f"train.amp: {amp!r} is not a precision; choose one of {', '.join(AMP_CHOICES)}")
    if channels_last not in ("auto", True, False):
        raise ConfigError(f"train.channels_last: use auto, true or false, got {channels_last!r}")
    why = _why_auto(device)
    bf16 = amp == "bf16" or (amp == "auto" and native_bf16(device))
    if amp == "auto" and bf16 and architecture in FP32_TRAINING:
        bf16, why = False, f"{why}; {architecture} trains in fp32: it loses benchmark PSNR-Y in bf16"
    layout = channels_last is True or (channels_last == "auto" and _channels_last_auto(device))
    reasons = [f"amp: {amp}" + (f" ({why})" if amp == "auto" else ""),
               f"channels_last: {str(channels_last).lower()}"]
    return Precision(bf16, layout, "; ".join(reasons))


def inference_precision(architecture: str | None, device: torch.device, precision: str = "auto") -> Precision:
    """The precision ``architecture`` infers in on ``device``: ``auto`` is bf16 where the device computes it
    natively and the architecture is in :data:`BF16_INFERENCE`, else fp32; channels_last wherever training
    uses it by default. ``bf16``/``fp32`` force the precision (the layout still follows the device)."""
    if precision not in INFERENCE_CHOICES:
        raise ConfigError(f"precision: {precision!r} is not known; choose one of {', '.join(INFERENCE_CHOICES)}")
    layout = _channels_last_auto(device)
    if precision != "auto":
        return Precision(precision == "bf16", layout, f"precision: {precision}")
    if not native_bf16(device):
        return Precision(False, layout, f"precision: auto ({_why_auto(device)})")
    if architecture not in BF16_INFERENCE:
        return Precision(False, layout, f"precision: auto ({architecture or 'this model'} loses more than "
                                        f"{INFERENCE_TOLERANCE_DB} dB PSNR-Y in bf16, so it infers in fp32)")
    return Precision(True, layout, f"precision: auto ({_why_auto(device)})")
