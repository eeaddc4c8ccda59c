# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Zero-shot editing with consistency models: the one known-coordinate replacement that every editing task uses.

Consistency Models (Song et al. 2023), Algorithm 4: given an orthogonal transform `A`, a mask `Omega` of the
coordinates that are known in `A`'s basis and a reference image `y`, each denoised estimate `x` is replaced by
`A^-1(Omega * A(y) + (1 - Omega) * A(x))` before it is re-noised to the next level. Inpainting is `A = identity`;
colorization keeps the luminance axis of an orthogonal colour transform; super-resolution keeps the block averages
of an orthogonal block basis. See docs/editing.md.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler

# Rec. 601 luma weights (the weights of PIL's "L" conversion): luminance = 0.299 R + 0.587 G + 0.114 B
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _orthogonal_with_first_column(first: np.ndarray) -> np.ndarray:
    """An orthogonal float64 matrix whose first column is `first / |first|` (the rest completes the basis)."""
    n = len(first)
    q, _ = np.linalg.qr(np.column_stack([first, np.eye(n)[:, 1:]]))
    return q * np.sign(q[0, 0] * first[0])  # QR fixes columns only up to sign; make the first point along `first`


class OrthogonalTransform:
    """
    An orthogonal linear map `A` of images (so `A^-1 = A^T`), and the coordinates it keeps when editing.

    Subclasses implement `forward` (`A(x)`), `inverse` (`A^-1(c)`) and `known_mask` (`Omega`: a boolean tensor that
    broadcasts against `forward(x)`, True where the reference's coordinates are kept).
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def known_mask(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward(images)


class IdentityTransform(OrthogonalTransform):
    """`A = identity`: editing in pixel space, i.e. inpainting; the known mask is given per pixel."""

    def __init__(self, known: torch.Tensor):
        self.known = known.bool()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        return coefficients

    def known_mask(self, images: torch.Tensor) -> torch.Tensor:
        return self.known


class LuminanceTransform(OrthogonalTransform):
    """
    An orthogonal 3x3 colour transform of RGB images whose first axis is luminance: `A(x)[:, 0] = (w . x) / |w|`
    with `w` the Rec. 601 luma weights. Keeping that axis keeps each pixel's luminance `w . x` exactly.
    """

    def __init__(self, weights: tuple[float, float, float] = LUMA_WEIGHTS):
        self.weights = tuple(weights)
        self.matrix = torch.from_numpy(_orthogonal_with_first_column(np.asarray(weights, dtype=np.float64)).T)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != 3:
            raise ValueError(f"`LuminanceTransform` needs RGB images (3 channels), got {images.shape[1]}.")
        return torch.einsum("oc,bchw->bohw", self.matrix.to(images), images)

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,bohw->bchw", self.matrix.to(coefficients), coefficients)

    def known_mask(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tensor([True, False, False], device=images.device).view(1, 3, 1, 1)

    def luminance(self, images: torch.Tensor) -> torch.Tensor:
        """`w . x` per pixel, shape `(batch, 1, height, width)`."""
        weights = torch.tensor(self.weights, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)


class BlockAverageTransform(OrthogonalTransform):
    """
    An orthogonal basis of each `factor_h x factor_w` block of pixels (per channel) whose first vector is the
    normalised all-ones vector, so that the first coordinate is `sqrt(factor_h * factor_w)` times the block average.
    Keeping it keeps the image's average-pooling by the factor. `forward` returns shape
    `(batch, channels, height // factor_h, width // factor_w, factor_h * factor_w)`.
    """

    def __init__(self, factor: int | tuple[int, int]):
        self.factor_h, self.factor_w = (factor, factor) if isinstance(factor, int) else tuple(factor)
        if self.factor_h < 1 or self.factor_w < 1:
            raise ValueError(f"The block factor must be positive, got {factor!r}.")
        n = self.factor_h * self.factor_w
        self.matrix = torch.from_numpy(_orthogonal_with_first_column(np.ones(n)))  # columns are the basis vectors

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c, h, w = images.shape
        fh, fw = self.factor_h, self.factor_w
        if h % fh or w % fw:
            raise ValueError(f"Image size {h}x{w} is not divisible by the block factor {fh}x{fw}.")
        blocks = images.reshape(b, c, h // fh, fh, w // fw, fw).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // fh, -1)
        blocks = blocks.reshape(b, c, h // fh, w // fw, fh * fw)
        return blocks @ self.matrix.to(images)

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        b, c, hb, wb, _ = coefficients.shape
        fh, fw = self.factor_h, self.factor_w
        blocks = coefficients @ self.matrix.to(coefficients).T
        return blocks.reshape(b, c, hb, wb, fh, fw).permute(0, 1, 2, 4, 3, 5).reshape(b, c, hb * fh, wb * fw)

    def known_mask(self, images: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(self.factor_h * self.factor_w, dtype=torch.bool, device=images.device)
        mask[0] = True
        return mask


def replace_known(
    sample: torch.Tensor, reference: torch.Tensor, known: torch.Tensor, transform: OrthogonalTransform
) -> torch.Tensor:
    """
    The known-coordinate replacement of Consistency Models, Algorithm 4: `A^-1(Omega * A(y) + (1 - Omega) * A(x))`.

    Args:
        sample (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
            The current estimate `x`.
        reference (`torch.Tensor`, broadcastable to `sample`):
            The reference image `y`; only its known coordinates matter.
        known (`torch.Tensor` of booleans):
            `Omega`, True where `A(y)` is kept; broadcasts against `transform(sample)`.
        transform ([`OrthogonalTransform`]):
            `A`. For an [`IdentityTransform`] the replacement is a plain per-pixel selection.
    """
    if isinstance(transform, IdentityTransform):
        return torch.where(known, reference, sample)
    reference = reference.expand_as(sample)
    return transform.inverse(torch.where(known, transform(reference), transform(sample)))


@dataclass
class KnownCoordinates:
    """
    What an editing task keeps: the reference `y` (in `[-1, 1]`), the transform `A` and its known mask `Omega`.
    Calling it on one sampling step's `(latents, denoised)` applies [`replace_known`] to the denoised estimate and
    to the re-noised sample, whose known coordinates become those of `y` carrying the same noise (by linearity,
    `replace(x0 + n) = replace(x0) + n` when `y + n` is the reference), as Algorithm 4 re-noises the replaced
    estimate.
    """

    reference: torch.Tensor
    transform: OrthogonalTransform
    known: torch.Tensor

    @classmethod
    def from_transform(cls, reference: torch.Tensor, transform: OrthogonalTransform) -> "KnownCoordinates":
        return cls(reference=reference, transform=transform, known=transform.known_mask(reference))

    def __call__(self, latents: torch.Tensor, denoised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = latents - denoised  # what the scheduler's step added (zero after the last step)
        latents = replace_known(latents, self.reference + noise, self.known, self.transform)
        denoised = replace_known(denoised, self.reference, self.known, self.transform)
        return latents, denoised


# ---------------------------------------------------------------------------------------------------------------
# Noise levels of guided editing (SDEdit) and denoising
# ---------------------------------------------------------------------------------------------------------------
def strength_to_sigma(strength: float, scheduler: ConsistencyACTScheduler) -> float:
    """
    The noise level at position `strength` on the scheduler's Karras ramp,
    `sigma = (sigma_min^(1/rho) + strength * (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho`: `strength = 0` is
    `sigma_min` (the guide comes back unchanged), `strength = 1` is `sigma_max` (the guide is drowned in noise). With
    the default `sigma_min = 0.002, sigma_max = 80, rho = 7`: 0.25 -> 0.17, 0.5 -> 2.5, 0.75 -> 17.5.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise ValueError(f"`strength` must be a number in [0, 1], got {strength!r}.")
    _check_ramp(scheduler)
    sigma = float(scheduler._karras(1.0 - strength))
    return min(max(sigma, scheduler.config.sigma_min), scheduler.config.sigma_max)


def sigma_to_strength(sigma: float, scheduler: ConsistencyACTScheduler) -> float:
    """
    The inverse of [`strength_to_sigma`]: the position of `sigma` on the scheduler's Karras ramp, clipped to `[0, 1]`
    ([`ConsistencyACTScheduler.sigma_to_ramp`] counts from `sigma_max`, strength from `sigma_min`).
    """
    _check_ramp(scheduler)
    return min(max(1.0 - float(scheduler.sigma_to_ramp(sigma)), 0.0), 1.0)


def _check_ramp(scheduler) -> None:
    """Editing by strength needs the Karras ramp that only [`ConsistencyACTScheduler`] exposes."""
    if not hasattr(scheduler, "sigma_to_ramp"):
        raise ValueError(
            f"Editing needs the denoised estimate of each step and free noise levels, which "
            f"{type(scheduler).__name__} does not give. Use ConsistencyACTScheduler: "
            "`pipe.scheduler = ConsistencyACTScheduler.from_config(pipe.scheduler.config)`."
        )


def editing_sigmas(sigma: float, num_inference_steps: int, scheduler: ConsistencyACTScheduler) -> list[float]:
    """
    Noise levels of `num_inference_steps` steps that start at `sigma`: `sigma` itself, then levels that divide its
    position `s` on the Karras ramp evenly, `s * (K - i) / K` for `i = 1 .. K-1` (steps that would fall to
    `sigma_min` or repeat a level are dropped).
    """
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
    start, steps = sigma_to_strength(sigma, scheduler), num_inference_steps
    sigmas = [float(sigma)]
    for i in range(1, steps):
        level = strength_to_sigma(start * (steps - i) / steps, scheduler)
        if scheduler.config.sigma_min < level < sigmas[-1]:
            sigmas.append(level)
    return sigmas


# ---------------------------------------------------------------------------------------------------------------
# Interpolation
# ---------------------------------------------------------------------------------------------------------------
def slerp(start: torch.Tensor, end: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """
    Spherical interpolation `sin((1 - a) theta) / sin(theta) * start + sin(a theta) / sin(theta) * end`, with
    `theta` the angle between the flattened tensors (linear interpolation when they are parallel). `alphas = 0` and
    `1` return `start` and `end` exactly. Returns shape `(len(alphas), *start.shape)`.
    """
    a, b = start.double().flatten(), end.double().flatten()
    cos = (a @ b / (a.norm() * b.norm())).clamp(-1, 1)
    theta = torch.arccos(cos).item()
    alphas = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    if math.sin(theta) < 1e-6:
        w_start, w_end = 1 - alphas, alphas
    else:
        w_start = torch.sin((1 - alphas) * theta) / math.sin(theta)
        w_end = torch.sin(alphas * theta) / math.sin(theta)
    w_start = torch.where(alphas == 0, 1.0, torch.where(alphas == 1, 0.0, w_start))
    w_end = torch.where(alphas == 0, 0.0, torch.where(alphas == 1, 1.0, w_end))
    shape = (-1,) + (1,) * start.ndim
    out = w_start.view(shape) * start.double() + w_end.view(shape) * end.double()
    return out.to(start.dtype)
