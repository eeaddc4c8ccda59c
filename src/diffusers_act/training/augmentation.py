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


def _affine(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """A batch of matrices from rows of per-image tensors or constants."""
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device).expand_as(like)
                                     for v in row], -1) for row in rows], -2)  # fmt: skip


class DifferentiableAugment(nn.Module):
    """
    StyleGAN2-ADA's augmentation pipeline (its `bgc` set: blit, geometric, colour), differentiable w.r.t. the images,
    so the generator's gradient flows through it. Each op fires for each image independently with probability `p`
    (the two arbitrary rotations with `1 - sqrt(1 - p)`, so that one of them fires with probability `p`); parameters
    are drawn on the images' device, independently per image, so one call augments fakes and reals together.

    Geometric ops, composed into one affine map and applied with one bilinear resampling with reflection padding:
    `xflip` (horizontal flip), `rotate90` (k * 90 degrees, k uniform in 0..3), `xint` (integer translation, uniform
    in +-0.125 of the size), `scale` (isotropic, 2^N(0, 0.2^2)), `rotate` (uniform in +-180 degrees), `aniso`
    (scale (s, 1/s), s = 2^N(0, 0.2^2)), `xfrac` (translation N(0, 0.125^2) of the size). Colour ops, one 4x4 colour
    matrix on values in `[-1, 1]`: `brightness` (add N(0, 0.2^2)), `contrast` (scale by 2^N(0, 0.5^2) around 0, the
    middle of the range), `lumaflip` (reflect along the luma axis (1, 1, 1)), `hue` (rotate around the luma axis,
    uniform in +-180 degrees), `saturation` (scale off the luma axis by 2^N(0, 1)). Grey images use the matrix
    averaged over its colour rows, as ADA does (luma flip negates; hue and saturation leave grey unchanged).
    ADA resamples with a wavelet filter at 2x; this uses bilinear `grid_sample`, exact for flips, 90-degree
    rotations and integer translations.

    Args:
        channels (`int`): Image channels; colour ops need 1 or 3 and are left out otherwise.
        p (`float` or `torch.Tensor`, defaults to 0): Probability; change it with `augment.p = ...`.
        ops (`tuple[str]`, *optional*): The ops to use (all by default).
    """

    def __init__(
        self,
        channels: int = 3,
        p: float | torch.Tensor = 0.0,
        ops: tuple[str, ...] | None = None,
        resample: str = "ada",
    ):
        super().__init__()
        if resample not in ("ada", "bilinear"):
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
        if any(op in params for op in GEOMETRIC_OPS):
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
