"""Adversarial losses: vanilla (non-saturating), least squares and hinge, optionally relativistic.

The discriminator gives raw logits ``C(x)``. Without ``relativistic`` the terms are the classic
ones (``real`` pushed towards "real", ``fake`` towards "fake"; the generator's loss looks only at
the fake logits). With ``relativistic`` each logit is replaced by the relativistic average
``D_ra(a, b) = C(a) - mean(C(b))`` (Jolicoeur-Martineau 2018, as used by ESRGAN), and the
generator's loss is the discriminator's with the roles of real and fake swapped, so that both
real and fake images give it a gradient. Each loss is the sum of its real and fake terms.

Whether the real logits are detached in the generator's step is the caller's choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.errors import ConfigError

GAN_KINDS: tuple[str, ...] = ("vanilla", "lsgan", "hinge")


def _towards_real(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """The loss that is small when ``logits`` say "real"."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    if kind == "lsgan":
        return F.mse_loss(logits, torch.ones_like(logits))
    return F.relu(1.0 - logits).mean()


def _towards_fake(kind: str, logits: torch.Tensor, relativistic: bool) -> torch.Tensor:
    """The loss that is small when ``logits`` say "fake" (least squares: the label is 0, or -1 when
    relativistic, where "fake" is the mirror image of "real")."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    if kind == "lsgan":
        label = -1.0 if relativistic else 0.0
        return F.mse_loss(logits, torch.full_like(logits, label))
    return F.relu(1.0 + logits).mean()


class GANLoss(nn.Module):
    """``kind`` is one of ``vanilla``, ``lsgan``, ``hinge``; ``relativistic`` makes it the
    relativistic average GAN of ESRGAN."""

    def __init__(self, kind: str = "vanilla", relativistic: bool = False) -> None:
        super().__init__()
        if kind not in GAN_KINDS:
            raise ConfigError(f"train.gan_type: unknown GAN loss {kind!r}; choose one of {', '.join(GAN_KINDS)}")
        self.kind = kind
        self.relativistic = bool(relativistic)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, relativistic={self.relativistic}"

    def _relative(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D_ra(real, fake), D_ra(fake, real))``, or the logits as they are when not relativistic."""
        if not self.relativistic:
            return real_logits, fake_logits
        return real_logits - fake_logits.mean(), fake_logits - real_logits.mean()

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real, fake = self._relative(real_logits, fake_logits)
        return _towards_real(self.kind, real) + _towards_fake(self.kind, fake, self.relativistic)

    def generator_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        if not self.relativistic:
            if self.kind == "hinge":
                return -fake_logits.mean()
            return _towards_real(self.kind, fake_logits)
        if real_logits is None:
            raise ValueError("the relativistic generator loss needs the discriminator's logits of real images")
        real, fake = self._relative(real_logits, fake_logits)
        return _towards_real(self.kind, fake) + _towards_fake(self.kind, real, self.relativistic)
