# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Losses of ACT: the consistency distance d and its scale, the GAN losses and the R1 penalty (ACT, arXiv 2311.14097,
Algorithm 1; docs/algorithm.md); the Cauchy distance and the denoising term of iLCT (arXiv 2502.01441)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

DISTANCES = ("l2", "pseudo_huber", "lpips", "cauchy")
ROBUST_DISTANCES = ("pseudo_huber", "cauchy")  # the distances with a scale c
LOSS_SCALES = ("constant", "adaptive")
GAN_LOSSES = ("non_saturating", "saturating")
ADAPTIVE_SCALE_EMA = 0.99  # rate of the EMA of `--loss_scale adaptive` (ours, see [`AdaptiveScale`])
# default S of iLCT's denoising term (ours, unmeasured): the student levels sigma_{n+1} <= 0.1 are about the lowest
# fifth of a Karras grid (rho = 7, sigma in [0.002, 80]), where the consistency function is close to the denoiser
DIFFUSION_LOSS_MAX_SIGMA = 0.1


def default_huber_c(sample_shape: tuple[int, ...]) -> float:
    """Improved CT's pseudo-Huber constant for images of shape `(C, H, W)`: `0.00054 * sqrt(C * H * W)`; also the
    default scale of the Cauchy distance and the floor of [`AdaptiveScale`]."""
    return 0.00054 * math.sqrt(math.prod(sample_shape))


class L2Distance(nn.Module):
    """Squared error, mean over pixels, one value per sample."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).square().flatten(1).mean(dim=1)


class _RobustDistance(nn.Module):
    """A distance with a scale c: the constant `c` (None: [`default_huber_c`]), or `forward`'s `c` for one call (a
    number or a 0-d tensor); with `adaptive`, `adaptive_scale` is an [`AdaptiveScale`] floored at the constant, whose
    c the trainer passes to `forward`."""

    def __init__(self, c: float | None = None, adaptive: bool = False):
        super().__init__()
        self.c, self.adaptive_scale = c, AdaptiveScale(c) if adaptive else None

    def scale(self, a: torch.Tensor, c: torch.Tensor | float | None) -> torch.Tensor | float:
        return c if c is not None else self.c if self.c is not None else default_huber_c(a.shape[1:])


class PseudoHuberDistance(_RobustDistance):
    """`sqrt(||a - b||^2 + c^2) - c` over the whole image, one value per sample; `c=None` uses [`default_huber_c`],
    and `forward`'s `c` replaces the constant for one call; `adaptive` keeps an [`AdaptiveScale`] as
    `adaptive_scale` (`--loss_scale adaptive`)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | float | None = None) -> torch.Tensor:
        c = self.scale(a, c)
        return torch.sqrt((a - b).square().flatten(1).sum(dim=1) + c**2) - c


class CauchyDistance(_RobustDistance):
    """
    iLCT's Cauchy distance (Dao et al. 2025, arXiv 2502.01441) `log(1 + ||a - b||^2 / c^2)` over the whole image,
    one value per sample. Its scale c is the pseudo-Huber one (`--huber_c`; None: [`default_huber_c`], the same
    improved-CT formula, as iLCT gives no other default); `forward`'s `c` replaces it for one call; `adaptive` keeps
    an [`AdaptiveScale`] as `adaptive_scale`.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | float | None = None) -> torch.Tensor:
        return torch.log1p((a - b).square().flatten(1).sum(dim=1) / self.scale(a, c) ** 2)


class AdaptiveScale:
    """
    `--loss_scale adaptive`, a rule of ours: iLCT (arXiv 2502.01441, Fig. 4) changes c over training, but its rule is
    in no text we could read. Here c_k = max(m_k, c0), with m_k an EMA of the batch median of the per-sample residual
    norm ||student - target||_2: m_1 = the first median, m_k = rate m_{k-1} + (1 - rate) median_k (rate:
    [`ADAPTIVE_SCALE_EMA`]; torch's median, the lower middle value of an even batch), and c0 the constant scale `c`
    (None: [`default_huber_c`]). m stays a device tensor (no host read per iteration); `state_dict` reads it for
    checkpoints, so that a resumed run goes on with the same c.
    """

    def __init__(self, c: float | None = None, rate: float = ADAPTIVE_SCALE_EMA):
        self.c, self.rate, self.ema = c, rate, None

    def update(self, residual_norms: torch.Tensor, sample_shape: tuple[int, ...]) -> torch.Tensor:
        """Updates m with the median of `residual_norms` (one per sample, detached) and returns c (a 0-d tensor)."""
        median = residual_norms.detach().float().median()
        self.ema = median if self.ema is None else torch.lerp(median, self.ema.to(median), self.rate)
        floor = self.c if self.c is not None else default_huber_c(sample_shape)
        return self.ema.clamp(min=floor)

    def state_dict(self) -> dict:
        return {"ema": None if self.ema is None else float(self.ema)}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.ema = None if state["ema"] is None else torch.tensor(state["ema"], dtype=torch.float32, device=device)


def check_loss_scale(loss_scale: str, loss_type: str) -> None:
    """`--loss_scale adaptive` scales c, which only the robust distances have."""
    if loss_scale not in LOSS_SCALES:
        raise ValueError(f"Unknown `loss_scale` {loss_scale!r}; choose one of {LOSS_SCALES}.")
    if loss_scale == "adaptive" and loss_type not in ROBUST_DISTANCES:
        raise ValueError(
            f"--loss_scale adaptive adapts the scale c of a robust distance, and --loss_type {loss_type} has none: "
            "use --loss_type pseudo_huber or cauchy, or leave out --loss_scale (constant)."
        )


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of `values` where `mask` holds; 0 where it holds nowhere (no host read)."""
    mask = mask.to(values)
    return (values * mask).sum() / mask.sum().clamp(min=1)


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


def make_distance(
    loss_type: str, huber_c: float | None = None, lpips_weights: str | None = None, loss_scale: str = "constant"
) -> nn.Module:
    """The consistency distance named `loss_type`: `"l2"`, `"pseudo_huber"`, `"cauchy"` (both with the scale
    `huber_c`, and with `loss_scale="adaptive"` an [`AdaptiveScale`] as `adaptive_scale`) or `"lpips"` (with
    `lpips_weights`, a local copy of torchvision's VGG16 weights)."""
    check_loss_scale(loss_scale, loss_type)
    if loss_type == "l2":
        return L2Distance()
    if loss_type == "pseudo_huber":
        return PseudoHuberDistance(huber_c, loss_scale == "adaptive")
    if loss_type == "cauchy":
        return CauchyDistance(huber_c, loss_scale == "adaptive")
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
