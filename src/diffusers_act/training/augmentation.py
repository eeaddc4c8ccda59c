# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Differentiable adaptive augmentation A(x; p) and the R1-driven controller of p (ACT-Aug: ACT, arXiv 2311.14097,
Algorithm 2; docs/algorithm.md). The augmentations are StyleGAN2-ADA's (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", section 2.3 and appendix B), the paper's choice."""

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

GEOMETRIC_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)  # ADA's luma axis in homogeneous RGB
_LUMA_CROSS = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3)  # [luma]_x
# PyWavelets' `sym6` decomposition low-pass filter (dec_lo), ADA's geometric resampling filter
_SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
    0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
    0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip


def _affine(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """A batch of matrices from rows of per-image tensors or constants."""
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device).expand_as(like)
                                     for v in row], -1) for row in rows], -2)  # fmt: skip


def _fir_matrix(length: int, taps: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)):
    """
    The `(length, out)` matrix of 1-D "upfirdn" resampling: insert `up - 1` zeros after each sample, pad by `pad`
    (before, after) zeros (negative crops), correlate with `taps`, keep every `down`-th sample. Applied as a matrix
    product (a banded matrix, but on CPU far faster than a depthwise convolution, and trivially twice differentiable).
    """
    out = (length * up + pad[0] + pad[1] - len(taps)) // down + 1
    inputs, outputs = torch.arange(length, device=taps.device), torch.arange(out, device=taps.device)
    index = inputs[:, None] * up + pad[0] - outputs * down  # the tap joining each input to each output sample
    tap = index.clamp(0, len(taps) - 1)
    return torch.where(index == tap, taps[tap], 0.0)


def _within(size: int, before: torch.Tensor, after: torch.Tensor, up: int = 1) -> torch.Tensor:
    """
    1 on the samples of an axis of `size` pixels, reflect-padded by `size - 1` on both sides and upsampled `up`
    times, that lie at most `before` pixels before the image and `after` pixels after it; 0 beyond.
    """
    pixel = torch.arange(up * (3 * size - 2), device=before.device) // up - (size - 1)
    return ((pixel >= -before) & (pixel <= size - 1 + after)).to(before.dtype)


def _upsample_matrix(size: int, taps: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """
    The `(size, 2 * (3 * size - 2))` matrix of reflection padding by `size - 1` (mirrored about the edge pixels) then
    ADA's 2x upsampling (`taps` as a convolution, gain 2), with what lies beyond `before` / `after` pixels of padding
    zeroed before and after the upsampling: the same as padding by `before` / `after` only, as ADA does, without
    reading these sizes back from the device.
    """
    index = torch.arange(1 - size, 2 * size - 1, device=taps.device).abs()
    reflect = F.one_hot(torch.where(index > size - 1, 2 * (size - 1) - index, index), size).T.to(taps.dtype)
    up = _fir_matrix(3 * size - 2, taps.flip(0) * 2, up=2, pad=((len(taps) + 1) // 2, (len(taps) - 2) // 2))
    return reflect @ (_within(size, before, after)[:, None] * up * _within(size, before, after, 2))


def _resample_ada(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """
    StyleGAN2-ADA's filtered geometric resampling (appendix B.4) of `x` with the `(batch, 3, 3)` output-to-input map
    `matrix` (pixel coordinates, origin at the centre): reflection padding as far as the transformed corners reach
    (the batch's largest reach, plus the filter's support), 2x upsampling with the `sym6` low-pass, bilinear sampling
    at 2x (zeros outside), 2x downsampling with the same (flipped) filter. The filter is orthogonal, so integer
    translations come back to float precision; it is not symmetric, so flips and 90-degree rotations filter slightly,
    as in ADA. Images whose map is the identity are returned as they are.
    """
    batch, channels, height, width = x.shape
    images, dtype = x, matrix.dtype
    taps = torch.tensor(_SYM6, dtype=dtype, device=x.device)
    taps = taps / taps.sum()
    support = len(_SYM6) // 4  # 1x pixels of filter support, added around the output before the 2x downsampling
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0] * 4], dtype=dtype, device=x.device)
    reach = (matrix @ corners)[:, :2].transpose(0, 1).flatten(1)  # (xy, batch * corners)
    reach = torch.cat([(-reach).amax(1), reach.amax(1)])  # left, top, right, bottom
    margin = reach + torch.tensor([2 * support - cx, 2 * support - cy] * 2, dtype=dtype, device=x.device)
    limit = torch.tensor([width - 1, height - 1] * 2, dtype=dtype, device=x.device)
    left, top, right, bottom = torch.minimum(margin.clamp(min=0), limit).ceil()
    # padded by the most the margin can be, then what lies beyond the margin zeroed
    rows, cols = _upsample_matrix(height, taps, top, bottom), _upsample_matrix(width, taps, left, right)
    x = rows.T.to(x.dtype) @ x @ cols.to(x.dtype)
    # 2x: a 1x pixel at coordinate u is the 2x sample at 2u - 1/2 (the first of its two, as upsampled above)
    eye = torch.eye(3, dtype=dtype, device=x.device)
    to_2x = eye.clone()
    to_2x[0, 0] = to_2x[1, 1] = 2.0
    to_2x[:2, 2] = -0.5
    out_height, out_width = (height + 2 * support) * 2, (width + 2 * support) * 2
    # output pixel coordinates -> input ones at 2x -> grid_sample's [-1, 1] (align_corners=False)
    to_unit = torch.diag(torch.tensor([2 / x.shape[3], 2 / x.shape[2], 1.0], dtype=dtype, device=x.device))
    from_unit = torch.diag(torch.tensor([out_width / 2, out_height / 2, 1.0], dtype=dtype, device=x.device))
    theta = (to_unit @ to_2x @ matrix @ torch.linalg.inv(to_2x) @ from_unit)[:, :2].to(x.dtype)
    grid = F.affine_grid(theta, [batch, channels, out_height, out_width], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # downsampling: the filter's centring less the 2 * support 2x samples of border
    crop = ((len(_SYM6) - 1) // 2 - 2 * support, (len(_SYM6) - 2) // 2 - 2 * support)
    rows, cols = _fir_matrix(out_height, taps, down=2, pad=crop), _fir_matrix(out_width, taps, down=2, pad=crop)
    x = rows.T.to(x.dtype) @ x @ cols.to(x.dtype)
    identity = (matrix == eye).flatten(1).all(1)
    return torch.where(identity[:, None, None, None], images, x)


class DifferentiableAugment(nn.Module):
    """
    StyleGAN2-ADA's augmentation pipeline (its `bgc` set: blit, geometric, colour), differentiable w.r.t. the images,
    so the generator's gradient flows through it. Each op fires for each image independently with probability `p`
    (the two arbitrary rotations with `1 - sqrt(1 - p)`, so that one of them fires with probability `p`); parameters
    are drawn on the images' device, independently per image, so one call augments fakes and reals together.

    Geometric ops, composed into one affine map and applied with one resampling (see `resample`):
    `xflip` (horizontal flip), `rotate90` (k * 90 degrees, k uniform in 0..3), `xint` (integer translation, uniform
    in +-0.125 of the size), `scale` (isotropic, 2^N(0, 0.2^2)), `rotate` (uniform in +-180 degrees), `aniso`
    (scale (s, 1/s), s = 2^N(0, 0.2^2)), `xfrac` (translation N(0, 0.125^2) of the size). Colour ops, one 4x4 colour
    matrix on values in `[-1, 1]`: `brightness` (add N(0, 0.2^2)), `contrast` (scale by 2^N(0, 0.5^2) around 0, the
    middle of the range), `lumaflip` (reflect along the luma axis (1, 1, 1)), `hue` (rotate around the luma axis,
    uniform in +-180 degrees), `saturation` (scale off the luma axis by 2^N(0, 1)). Grey images use the matrix
    averaged over its colour rows, as ADA does (luma flip negates; hue and saturation leave grey unchanged).

    Args:
        channels (`int`): Image channels; colour ops need 1 or 3 and are left out otherwise.
        p (`float` or `torch.Tensor`, defaults to 0): Probability; change it with `augment.p = ...`.
        ops (`tuple[str]`, *optional*): The ops to use (all by default).
        resample (`str`, defaults to `"ada"`): `"ada"`, ADA's filtered path (appendix B.4): reflection padding as far
            as the transformed corners reach, 2x upsampling with the `sym6` wavelet low-pass, bilinear sampling at 2x,
            2x downsampling with the same filter; it keeps more high frequencies, and integer translations exactly,
            but flips and 90-degree rotations pass the (asymmetric) filter too, as in ADA. `"bilinear"`, one bilinear
            `grid_sample` at 1x with reflection padding: faster, blurrier, exact for flips, 90-degree rotations and
            integer translations.
    """

    def __init__(
        self,
        channels: int = 3,
        p: float | torch.Tensor = 0.0,
        ops: tuple[str, ...] | None = None,
        resample: str = "ada",
    ):
        super().__init__()
        if resample not in AUG_RESAMPLERS:
            raise ValueError(f"`resample` must be 'ada' or 'bilinear', got {resample!r}.")
        self.resample = resample
        ops = tuple(GEOMETRIC_OPS + COLOUR_OPS if ops is None else ops)
        unknown = sorted(set(ops) - set(GEOMETRIC_OPS + COLOUR_OPS))
        if unknown:
            raise ValueError(f"Unknown augmentation op(s) {unknown}; choose from {GEOMETRIC_OPS + COLOUR_OPS}.")
        if channels not in (1, 3):
            ops = tuple(op for op in ops if op in GEOMETRIC_OPS)
        self.channels, self.ops, self.p = channels, ops, p

    def sample_params(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> dict:
        """
        Draws every op's parameter for `batch` images, the identity value where the op does not fire: `xflip`,
        `rotate90`, `lumaflip` integers; `xint`, `xfrac` translations as fractions of the size (`(batch, 2)`);
        `scale`, `aniso`, `contrast`, `saturation` factors; `rotate` (the product of the two rotations' angles as one
        sum), `hue` angles in radians; `brightness` offsets.
        """
        p = torch.as_tensor(self.p, dtype=torch.float32, device=device)

        def fires(prob, shape=()):
            return torch.rand(batch, *shape, device=device, generator=generator) < prob

        def rand(*shape):
            return torch.rand(batch, *shape, device=device, generator=generator)

        def randn(*shape):
            return torch.randn(batch, *shape, device=device, generator=generator)

        zero, params = torch.zeros(batch, device=device), {}
        for op in self.ops:
            if op == "xflip":
                params[op] = torch.where(fires(p), torch.floor(rand() * 2), zero)
            elif op == "rotate90":
                params[op] = torch.where(fires(p), torch.floor(rand() * 4), zero)
            elif op in ("xint", "xfrac"):
                shift = (rand(2) * 2 - 1) * 0.125 if op == "xint" else randn(2) * 0.125
                params[op] = torch.where(fires(p, (1,)), shift, 0.0)
            elif op in ("scale", "aniso"):
                params[op] = torch.where(fires(p), torch.exp2(randn() * 0.2), zero + 1)
            elif op == "rotate":  # two rotations around the anisotropic scaling, each with 1 - sqrt(1 - p)
                p_rot = 1 - torch.sqrt(torch.clamp(1 - p, min=0))
                params[op] = torch.stack([torch.where(fires(p_rot), (rand() * 2 - 1) * math.pi, zero)
                                          for _ in range(2)], -1)  # fmt: skip
            elif op == "brightness":
                params[op] = torch.where(fires(p), randn() * 0.2, zero)
            elif op == "contrast":
                params[op] = torch.where(fires(p), torch.exp2(randn() * 0.5), zero + 1)
            elif op == "lumaflip":
                params[op] = torch.where(fires(p), torch.floor(rand() * 2), zero)
            elif op == "hue":
                params[op] = torch.where(fires(p), (rand() * 2 - 1) * math.pi, zero)
            elif op == "saturation":
                params[op] = torch.where(fires(p), torch.exp2(randn()), zero + 1)
        return params

    @staticmethod
    def geometric_matrix(params: dict, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """The `(batch, 3, 3)` map from output to input pixel coordinates (origin at the image centre), ADA's order."""
        one, zero = torch.ones_like(like), torch.zeros_like(like)
        matrix = torch.eye(3, dtype=like.dtype, device=like.device).expand(len(like), 3, 3)

        def then(m):  # the inverse of each forward transform, right-multiplied as ADA composes them
            nonlocal matrix
            matrix = matrix @ m

        def rotation(angle):
            cos, sin = torch.cos(angle), torch.sin(angle)
            return _affine([[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]], like)

        def translation(tx, ty):
            return _affine([[one, zero, tx], [zero, one, ty], [zero, zero, one]], like)

        def scaling(sx, sy):
            return _affine([[sx, zero, zero], [zero, sy, zero], [zero, zero, one]], like)

        if "xflip" in params:
            then(scaling(1 - 2 * params["xflip"], one))
        if "rotate90" in params:
            then(rotation(-math.pi / 2 * params["rotate90"]))
        if "xint" in params:
            shift = params["xint"]
            then(translation(-torch.round(shift[:, 0] * width), -torch.round(shift[:, 1] * height)))
        if "scale" in params:
            then(scaling(1 / params["scale"], 1 / params["scale"]))
        if "rotate" in params:
            then(rotation(params["rotate"][:, 0]))
        if "aniso" in params:
            then(scaling(1 / params["aniso"], params["aniso"]))
        if "rotate" in params:
            then(rotation(params["rotate"][:, 1]))
        if "xfrac" in params:
            then(translation(-params["xfrac"][:, 0] * width, -params["xfrac"][:, 1] * height))
        return matrix

    @staticmethod
    def colour_matrix(params: dict, like: torch.Tensor) -> torch.Tensor:
        """The `(batch, 4, 4)` homogeneous colour matrix on RGB values in `[-1, 1]`, ADA's order."""
        eye = torch.eye(4, dtype=like.dtype, device=like.device)
        matrix = eye.expand(len(like), 4, 4)
        luma = _LUMA.to(like)
        outer = torch.outer(luma, luma)
        if "brightness" in params:
            offset = eye.clone().expand(len(like), 4, 4).clone()
            offset[:, :3, 3] = params["brightness"][:, None]
            matrix = offset @ matrix
        if "contrast" in params:
            c = params["contrast"][:, None]
            matrix = torch.diag_embed(torch.cat([c.expand(-1, 3), torch.ones_like(c)], 1)) @ matrix
        if "lumaflip" in params:
            matrix = (eye - 2 * outer * params["lumaflip"][:, None, None]) @ matrix
        if "hue" in params:  # Rodrigues' rotation about the luma axis
            angle = params["hue"][:, None, None]
            axis, cross = luma[:3], _LUMA_CROSS.to(like)
            rot = torch.cos(angle) * torch.eye(3).to(like) + torch.sin(angle) * cross
            rot = rot + (1 - torch.cos(angle)) * torch.outer(axis, axis)
            hue = eye.expand(len(like), 4, 4).clone()
            hue[:, :3, :3] = rot
            matrix = hue @ matrix
        if "saturation" in params:
            matrix = (outer + (eye - outer) * params["saturation"][:, None, None]) @ matrix
        return matrix

    def forward(self, images: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """Augments `images` in `[-1, 1]` (float `p == 0`: the same tensor, untouched) with `params` or new draws."""
        if params is None:
            if not torch.is_tensor(self.p) and self.p <= 0:
                return images
            params = self.sample_params(images.shape[0], images.device)
        batch, channels, height, width = images.shape
        dtype = torch.float64 if images.dtype == torch.float64 else torch.float32  # matrices in fp32 under autocast
        like = torch.zeros(batch, dtype=dtype, device=images.device)
        params = {key: value.to(like) for key, value in params.items()}
        x = images
        if any(op in params for op in GEOMETRIC_OPS) and self.resample == "ada":
            with torch.autocast(x.device.type, enabled=False):  # in fp32 (fp64), also under autocast
                matrix = self.geometric_matrix(params, height, width, like)
                x = _resample_ada(x.to(dtype), matrix).to(x.dtype)
        elif any(op in params for op in GEOMETRIC_OPS):
            matrix = self.geometric_matrix(params, height, width, like)
            # pixel coordinates (origin at the centre) -> grid_sample's [-1, 1] (align_corners=False)
            to_unit = torch.diag(torch.tensor([2 / width, 2 / height, 1.0], dtype=dtype, device=images.device))
            theta = (to_unit @ matrix @ torch.linalg.inv(to_unit))[:, :2]
            grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if any(op in params for op in COLOUR_OPS):
            matrix = self.colour_matrix(params, like).to(x.dtype)
            if channels == 3:
                x = torch.einsum("bij,bjhw->bihw", matrix[:, :3, :3], x) + matrix[:, :3, 3, None, None]
            else:  # grey: the colour rows averaged (ADA)
                rows = matrix[:, :3, :].mean(1)
                x = x * rows[:, :3].sum(1)[:, None, None, None] + rows[:, 3, None, None, None]
        return x


# ACT-Aug's controller (paper Appendix, Algorithm 2): target tau, step p_r and EMA rate mu_p of the R1 penalty
AUG_TARGET, AUG_RATE, AUG_EMA = 0.55, 0.05, 0.93
AUG_UPDATE_ORDERS = ("official", "paper")
AUG_RESAMPLERS = ("ada", "bilinear")


class AugmentController:
    """
    Adapts the augmentation probability from the R1 penalty (ACT-Aug, paper Algorithm 2 lines 14-19): each time R1 is
    computed, `r1_ema = ema * r1_ema + (1 - ema) * L_gp` and `p = clip(p + 2 ([r1_ema >= target] - 0.5) * rate, 0, 1)`,
    where `L_gp = w_gp * mean ||grad D||^2` is the penalty without the adversarial weight lambda.

    `p` and `r1_ema` are 0-d tensors on the device of the values fed, so an update does not wait for the device. The
    R1 value is averaged over processes first (when `torch.distributed` is initialised), so every rank keeps the same
    `p` and `r1_ema`. Its state is a `state_dict` of floats for checkpoints.

    Args:
        target (`float`, defaults to 0.55): tau, the R1 level above which augmentation increases.
        rate (`float`, defaults to 0.05): p_r, the change of p per update (the paper's value; [`ada_rate`] gives
            the authors' code's). None until it is set, e.g. by the trainer from its batch.
        ema (`float`, defaults to 0.93): mu_p, the EMA rate of R1.
        p (`float`, defaults to 0): Initial probability.
        r1_ema (`float`, *optional*): Initial R1 EMA; defaults to `target`, as the authors' code.
        order (`str`, defaults to `"official"`): `"official"` (the authors' code) updates the EMA and then moves p
            by the new EMA; `"paper"` (Algorithm 2, lines 18-19) moves p by the EMA so far, then updates the EMA.
    """

    def __init__(
        self,
        target: float = AUG_TARGET,
        rate: float | None = AUG_RATE,
        ema: float = AUG_EMA,
        p: float = 0.0,
        r1_ema: float | None = None,
        order: str = "official",
    ):
        if order not in AUG_UPDATE_ORDERS:
            raise ValueError(f"`order` must be 'official' or 'paper', got {order!r}.")
        self.target, self.rate, self.ema, self.order = target, rate, ema, order
        self.p = torch.tensor(float(p), dtype=torch.float64)
        self.r1_ema = torch.tensor(float(target if r1_ema is None else r1_ema), dtype=torch.float64)

    def update(self, r1: torch.Tensor | float) -> torch.Tensor:
        """Feeds one `L_gp` value (this process's; averaged over processes here) and returns the new `p` (0-d)."""
        value = torch.as_tensor(r1).detach().to(torch.float64)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
            value = value.to(backend_device).clone()
            dist.all_reduce(value)
            value = value / dist.get_world_size()
        self.p, self.r1_ema = self.p.to(value.device), self.r1_ema.to(value.device)
        if self.order == "paper":
            self._move_p()
        self.r1_ema = self.ema * self.r1_ema + (1 - self.ema) * value
        if self.order == "official":
            self._move_p()
        return self.p

    def _move_p(self) -> None:
        direction = torch.where(self.r1_ema >= self.target, 1.0, -1.0).to(self.p)
        self.p = torch.clamp(self.p + direction * self.rate, 0.0, 1.0)

    def state_dict(self) -> dict:
        return {"p": float(self.p), "r1_ema": float(self.r1_ema)}

    def load_state_dict(self, state: dict) -> None:
        self.p = torch.tensor(float(state["p"]), dtype=torch.float64, device=self.p.device)
        self.r1_ema = torch.tensor(float(state["r1_ema"]), dtype=torch.float64, device=self.r1_ema.device)


def ada_rate(images_per_iteration: int, gp_interval: int, ada_images: int = 500_000) -> float:
    """
    StyleGAN2-ADA's step of p per controller update, as the ACT authors' code sets it: p can cross [0, 1] once every
    `ada_images` images shown to D (ADA's "ada_kimg" 500), updated every `gp_interval` iterations of
    `images_per_iteration` images (all processes and accumulated micro-batches; ACT loads 2B per iteration). CIFAR-10
    at B = 80 on one GPU: 160 x 16 / 500,000 = 0.00512.
    """
    return images_per_iteration * gp_interval / ada_images
