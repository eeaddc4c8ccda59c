# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Losses of ACT: the consistency distance d, the GAN losses and the R1 penalty (ACT, arXiv 2311.14097, Algorithm 1;
docs/algorithm.md)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

DISTANCES = ("l2", "pseudo_huber", "lpips")
GAN_LOSSES = ("non_saturating", "saturating")


def default_huber_c(sample_shape: tuple[int, ...]) -> float:
    """Improved CT's pseudo-Huber constant for images of shape `(C, H, W)`: `0.00054 * sqrt(C * H * W)`."""
    return 0.00054 * math.sqrt(math.prod(sample_shape))


class L2Distance(nn.Module):
    """Squared error, mean over pixels, one value per sample."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).square().flatten(1).mean(dim=1)


class PseudoHuberDistance(nn.Module):
    """`sqrt(||a - b||^2 + c^2) - c` over the whole image, one value per sample; `c=None` uses [`default_huber_c`]."""

    def __init__(self, c: float | None = None):
        super().__init__()
        self.c = c

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        c = self.c if self.c is not None else default_huber_c(a.shape[1:])
        return torch.sqrt((a - b).square().flatten(1).sum(dim=1) + c**2) - c


class LPIPSDistance(nn.Module):
    """
    LPIPS (VGG16) as in the authors' code: both images resized to 224x224 (bilinear), the target clipped to
    `[-1, 1]`, grey images repeated to 3 channels. Needs the `lpips` extra (its linear layers ship with it) and
    torchvision's ImageNet VGG16 weights (`vgg16-397923af.pth`), downloaded by torchvision unless `vgg_weights`
    names a local copy; or `network` (any module taking two image batches in `[-1, 1]` and returning one distance
    per pair) replaces it all.
    """

    def __init__(self, net: str = "vgg", network: nn.Module | None = None, vgg_weights: str | None = None):
        super().__init__()
        if network is not None:
            self.lpips = network
            return
        try:
            import lpips
        except ImportError as error:
            raise ImportError(
                "The 'lpips' distance needs the lpips package: `pip install -e '.[lpips]'` in a clone of "
                "diffusers-act (it pulls torchvision), or choose another distance: --loss_type pseudo_huber (or l2)."
            ) from error
        if vgg_weights is not None:  # a local copy: no download
            self.lpips = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
            load_vgg16_features(self.lpips.net, vgg_weights)
        else:
            try:
                self.lpips = lpips.LPIPS(net=net, verbose=False)
            except OSError as error:  # urllib's URLError is an OSError
                raise OSError(
                    f"LPIPS needs torchvision's ImageNet VGG16 weights (vgg16-397923af.pth, 528 MB), which could not "
                    f"be downloaded ({error}). Download them where there is internet (torchvision.models.vgg16("
                    "weights='IMAGENET1K_V1') saves them under ~/.cache/torch/hub/checkpoints) and pass "
                    "--lpips_weights PATH."
                ) from error
        self.lpips = self.lpips.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        b = b.clamp(-1, 1)
        if a.shape[1] == 1:
            a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
        a = F.interpolate(a, size=(224, 224), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(224, 224), mode="bilinear", align_corners=False)
        return self.lpips(a, b).flatten()


def load_vgg16_features(vgg: nn.Module, path: str) -> None:
    """
    Loads torchvision's VGG16 state dict (`features.N.*` keys; read with `torch.load(weights_only=True)`) into LPIPS's
    VGG16, whose `sliceK` modules keep torchvision's layer numbers (`slice2.5.weight` is `features.5.weight`).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"--lpips_weights {path}: cannot read it as a weights-only torch file ({error}).") from error
    own = vgg.state_dict()
    wanted = {key: "features." + key.split(".", 1)[1] for key in own}  # slice2.5.weight -> features.5.weight
    missing = [name for key, name in wanted.items() if name not in state or state[name].shape != own[key].shape]
    if missing:
        raise ValueError(
            f"--lpips_weights {path} is not torchvision's VGG16 (vgg16-397923af.pth): {missing[:3]} are missing or of "
            "another shape."
        )
    vgg.load_state_dict({key: state[name] for key, name in wanted.items()})


def make_distance(loss_type: str, huber_c: float | None = None, lpips_weights: str | None = None) -> nn.Module:
    """The consistency distance named `loss_type`: `"l2"`, `"pseudo_huber"` or `"lpips"` (with `lpips_weights`, a
    local copy of torchvision's VGG16 weights)."""
    if loss_type == "l2":
        return L2Distance()
    if loss_type == "pseudo_huber":
        return PseudoHuberDistance(huber_c)
    if loss_type == "lpips":
        return LPIPSDistance(vgg_weights=lpips_weights)
    raise ValueError(f"Unknown `loss_type` {loss_type!r}; choose one of {DISTANCES}.")


def generator_adversarial_loss(fake_logits: torch.Tensor, form: str = "non_saturating") -> torch.Tensor:
    """
    Per-sample generator loss g(l) on the discriminator's logits for generated images.

    `"non_saturating"` (authors' code, default): `softplus(-l) = -log D`; `"saturating"` (the paper's minimax form):
    `log(1 - D) = -softplus(l)`.
    """
    if form == "non_saturating":
        return F.softplus(-fake_logits)
    if form == "saturating":
        return -F.softplus(fake_logits)
    raise ValueError(f"Unknown GAN loss {form!r}; choose one of {GAN_LOSSES}.")


def discriminator_adversarial_loss(
    fake_logits: torch.Tensor,
    real_logits: torch.Tensor,
    fake_weight: torch.Tensor | float = 1.0,
    real_weight: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Per-pair discriminator loss `w_fake softplus(l_fake) + w_real softplus(-l_real)` (= -log(1 - D(fake)) -
    log D(real) with unit weights); the weights are lambda of each image's noise level."""
    return fake_weight * F.softplus(fake_logits) + real_weight * F.softplus(-real_logits)


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """
    Per-sample R1 penalty `||grad_x D(x)||^2`, the gradient taken w.r.t. `real_inputs` (which must require grad
    and be what the discriminator saw, i.e. the augmented reals), with a graph so that it can be minimised.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return grad.square().flatten(1).sum(dim=1)
