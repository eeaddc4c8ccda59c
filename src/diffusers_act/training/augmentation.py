# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Differentiable adaptive augmentation A(x; p) and the R1-driven controller of p (ACT-Aug: ACT, arXiv 2311.14097,
Algorithm 2; docs/algorithm.md)."""

import kornia.augmentation as K
import torch
import torch.distributed as dist
from torch import nn


class DifferentiableAugment(nn.Module):
    """
    StyleGAN2-ADA-style augmentation built from kornia ops, each applied to each image independently with
    probability `p`; differentiable w.r.t. the images, so the generator's gradient flows through it.

    Geometric ops (any channel count): horizontal flip, 90-degree rotations, integer translation (nearest
    resampling), isotropic scaling, arbitrary rotation, anisotropic scaling, fractional translation, all with
    reflection padding. Colour ops (on `[0, 1]`-mapped values, without clipping): brightness and contrast, plus hue
    and saturation for 3-channel images. ADA's luma flip has no kornia counterpart and is left out.

    Args:
        channels (`int`): Image channels (colour ops on hue and saturation need 3).
        p (`float`, defaults to 0): Initial probability; change it with `augment.p = ...`.
    """

    def __init__(self, channels: int = 3, p: float = 0.0):
        super().__init__()
        self.p = p
        reflect = {"padding_mode": "reflection"}
        geometric = [
            K.RandomHorizontalFlip(),
            K.RandomRotation90(times=(0, 3)),
            K.RandomAffine(degrees=0, translate=(0.125, 0.125), resample="nearest", **reflect),
            K.RandomAffine(degrees=0, scale=(0.8, 1.25), **reflect),
            K.RandomAffine(degrees=180, **reflect),
            K.RandomAffine(degrees=0, scale=(0.8, 1.25, 0.8, 1.25), **reflect),
            K.RandomAffine(degrees=0, translate=(0.125, 0.125), **reflect),
        ]
        colour = [K.RandomBrightness((0.8, 1.2), clip_output=False), K.RandomContrast((0.6, 1.6), clip_output=False)]
        if channels == 3:
            colour += [K.RandomHue((-0.5, 0.5)), K.RandomSaturation((0.5, 2.0))]
        self.geometric = nn.ModuleList(geometric)
        self.colour = nn.ModuleList(colour)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augments `images` in `[-1, 1]`; the identity (the same tensor) when `p == 0`."""
        if self.p <= 0:
            return images
        x = images
        for op in self.geometric:
            op.p = self.p
            x = op(x)
        x = (x + 1) / 2
        for op in self.colour:
            op.p = self.p
            x = op(x)
        return x * 2 - 1


class AugmentController:
    """
    Adapts the augmentation probability from the R1 penalty (ACT-Aug, paper Algorithm 2 lines 14-19): each time R1 is
    computed, `r1_ema = ema * r1_ema + (1 - ema) * L_gp` and `p = clip(p + 2 ([r1_ema >= target] - 0.5) * rate, 0, 1)`,
    where `L_gp = w_gp * mean ||grad D||^2` is the penalty without the adversarial weight lambda.

    The R1 value is averaged over processes first (when `torch.distributed` is initialised), so every rank keeps the
    same `p` and `r1_ema`. Its state is a `state_dict` for checkpoints.

    Args:
        target (`float`, defaults to 0.55): tau, the R1 level above which augmentation increases.
        rate (`float`, defaults to 0.05): p_r, the change of p per update.
        ema (`float`, defaults to 0.93): mu_p, the EMA rate of R1.
        p (`float`, defaults to 0): Initial probability.
        r1_ema (`float`, *optional*): Initial R1 EMA; defaults to `target`, as the authors' code.
        order (`str`, defaults to `"official"`): `"official"` (the authors' code) updates the EMA and then moves p
            by the new EMA; `"paper"` (Algorithm 2, lines 18-19) moves p by the EMA so far, then updates the EMA.
    """

    def __init__(
        self,
        target: float = 0.55,
        rate: float = 0.05,
        ema: float = 0.93,
        p: float = 0.0,
        r1_ema: float | None = None,
        order: str = "official",
    ):
        if order not in ("official", "paper"):
            raise ValueError(f"`order` must be 'official' or 'paper', got {order!r}.")
        self.target, self.rate, self.ema, self.order = target, rate, ema, order
        self.p = p
        self.r1_ema = target if r1_ema is None else r1_ema

    def update(self, r1: torch.Tensor | float) -> float:
        """Feeds one `L_gp` value (this process's; averaged over processes here) and returns the new `p`."""
        value = torch.as_tensor(r1, dtype=torch.float64).detach().clone()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
            value = value.to(backend_device)
            dist.all_reduce(value)
            value /= dist.get_world_size()
        if self.order == "paper":
            self._move_p()
        self.r1_ema = self.ema * self.r1_ema + (1 - self.ema) * value.item()
        if self.order == "official":
            self._move_p()
        return self.p

    def _move_p(self) -> None:
        direction = 1.0 if self.r1_ema >= self.target else -1.0
        self.p = min(max(self.p + direction * self.rate, 0.0), 1.0)

    def state_dict(self) -> dict:
        return {"p": self.p, "r1_ema": self.r1_ema}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.r1_ema = float(state["p"]), float(state["r1_ema"])
