# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Latent-space ACT: a diffusers `AutoencoderKL` maps images to the latents the consistency model works on and back,
with the scaling (and shift) of diffusers' latent pipelines, and carries pixel-space edits to the latents. Training
encodes its data with the same [`encode_images`], so training and sampling share one definition of the latents."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from .editing import KnownCoordinates, replace_known


def vae_scale_factor(vae: AutoencoderKL) -> int:
    """How many pixels one latent covers along each side: 2 per down block after the first (8 for Stable
    Diffusion's VAE)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def encode_images(
    vae: AutoencoderKL, images: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
) -> torch.Tensor:
    """
    `[-1, 1]` images to latents: the mean of the encoder's Gaussian (or a draw from it with `sample=True`), minus the
    VAE's `shift_factor` where it has one, times its `scaling_factor`, as diffusers' latent pipelines do.
    """
    distribution = vae.encode(images.to(vae.dtype)).latent_dist
    latents = distribution.sample(generator) if sample else distribution.mode()
    return (latents - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Latents (as [`encode_images`] makes them) to `[-1, 1]` images (not clipped)."""
    latents = latents / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    return vae.decode(latents.to(vae.dtype)).sample


def latent_repaint_mask(repaint: torch.Tensor, factor: int) -> torch.Tensor:
    """A pixel repaint mask `(B, C, H, W)` (True = repaint) on the latent grid `(B, 1, H / factor, W / factor)`: a
    latent is repainted when any pixel it covers is, so every pixel to repaint is regenerated."""
    return F.max_pool2d(repaint[:, :1].float(), factor) > 0


@dataclass
class PixelKnownCoordinates:
    """
    A pixel-space edit ([`KnownCoordinates`] of images) applied to latents through the autoencoder: each denoised
    latent is decoded, its known coordinates replaced (Consistency Models, Algorithm 4), and encoded again; the
    sample is re-noised with the step's noise. The constraint then holds up to the autoencoder's reconstruction error,
    not exactly as in pixel space.
    """

    keep: KnownCoordinates
    vae: AutoencoderKL

    def __call__(self, latents: torch.Tensor, denoised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = latents - denoised  # what the scheduler's step added (zero after the last step)
        pixels = decode_latents(self.vae, denoised).to(self.keep.reference.dtype)
        pixels = replace_known(pixels, self.keep.reference, self.keep.known, self.keep.transform)
        denoised = encode_images(self.vae, pixels).to(latents.dtype)
        return denoised + noise, denoised
