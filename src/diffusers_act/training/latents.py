# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Training in a VAE's latent space (`--vae_name_or_path`): the autoencoder, the training set encoded once and cached
next to the datasets cache (keyed by the VAE's weights and the data), and the UNet sized for the latents. The latents
are defined once, by `diffusers_act.pipelines.act.autoencoder.encode_images`, which sampling decodes with. See
docs/latent.md."""

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from safetensors.torch import load_file, save_file

from ..pipelines.act.autoencoder import encode_images, vae_scale_factor
from .batches import collate

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)
CACHE_FOLDER = "diffusers_act_latents"  # inside the datasets cache (--cache_dir, or datasets' default)


def load_vae(run) -> AutoencoderKL | None:
    """The run's `AutoencoderKL`, frozen and in eval mode: `--vae_name_or_path` (`--vae_subfolder`), or else the
    `vae/` of a latent pipeline being fine-tuned (`--pretrained_model_name_or_path`; the run then records it as its
    VAE); None for a pixel-space run. A clear error when it cannot be loaded."""
    if run.vae_name_or_path is None and run.pretrained_model_name_or_path:
        try:
            index = DiffusionPipeline.load_config(run.pretrained_model_name_or_path, revision=run.revision)
        except OSError:  # no model_index.json: not a saved pipeline, so no VAE either
            index = {}
        if (index.get("vae") or [None])[0] is not None:
            run.vae_name_or_path, run.vae_subfolder = run.pretrained_model_name_or_path, "vae"
    if run.vae_name_or_path is None:
        return None
    try:
        vae = AutoencoderKL.from_pretrained(run.vae_name_or_path, subfolder=run.vae_subfolder, cache_dir=run.cache_dir)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"--vae_name_or_path {run.vae_name_or_path!r}"
            + (f" (--vae_subfolder {run.vae_subfolder!r})" if run.vae_subfolder else "")
            + f" is not a diffusers AutoencoderKL that could be loaded: {error}. Pass a folder with config.json and "
            "diffusion_pytorch_model.safetensors, or a Hub id such as stabilityai/sd-vae-ft-mse (online)."
        ) from error
    if run.vae_scaling_factor is not None:  # the saved VAE carries it, so sampling decodes as training encoded
        vae.register_to_config(scaling_factor=run.vae_scaling_factor)
    return vae.eval().requires_grad_(False)


def check_latent_run(run, config, vae: AutoencoderKL) -> None:
    """What a latent run cannot do, said before any work: a resolution the VAE cannot divide, pixel-space options."""
    factor = vae_scale_factor(vae)
    if run.resolution % factor:
        raise ValueError(
            f"--resolution {run.resolution} is not a multiple of the VAE's downsampling factor {factor}: use e.g. "
            f"{max(factor, run.resolution // factor * factor)} or {(run.resolution // factor + 1) * factor}."
        )
    if config.loss_type == "lpips" or config.augment:
        raise ValueError(
            "--loss_type lpips and --use_augment act on pixels, and a latent run (--vae_name_or_path) trains on "
            "latents: use --loss_type pseudo_huber (or cauchy, or l2) and leave out --use_augment."
        )


def vae_fingerprint(vae: AutoencoderKL) -> str:
    """A hash of the VAE's config and weights: the part of the cache key that changes with the autoencoder."""
    digest = hashlib.sha256(json.dumps(dict(vae.config), sort_keys=True, default=str).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def latent_cache_file(run, dataset: "datasets.Dataset", vae: AutoencoderKL) -> Path:
    """Where the encoded training set is cached: `<datasets cache>/diffusers_act_latents/<key>.safetensors`, the key
    a hash of the VAE (weights and config), the dataset's fingerprint and every setting that changes the latents."""
    import datasets

    settings = {
        "vae": vae_fingerprint(vae),
        "data": getattr(dataset, "_fingerprint", None) or len(dataset),
        "resolution": run.resolution,
        "center_crop": run.center_crop,
        "random_flip": run.random_flip,
        "vae_sample": run.vae_sample,
        "seed": run.seed if run.vae_sample else None,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]
    root = Path(run.cache_dir) if run.cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
    return root / CACHE_FOLDER / f"{key}.safetensors"


@torch.no_grad()
def encode_dataset(
    dataset: "datasets.Dataset", vae: AutoencoderKL, device: torch.device, sample: bool = False, seed: int = 0,
    flips: bool = False, batch_size: int = 64,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """
    The latents of every image of a dataset whose transform gives `pixel_values` in [-1, 1] (center-cropped, not
    flipped): `{"latents": (N, C, h, w), "labels": ...}`, with `"flipped_latents"` (of the mirrored images, for
    `--random_flip`: a flipped latent is not the latent of the flipped image) when `flips`. On the CPU.
    """
    vae = vae.to(device)
    generator = torch.Generator(device).manual_seed(seed) if sample else None
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        images = batch["pixel_values"].to(device)
        parts.setdefault("latents", []).append(encode_images(vae, images, sample, generator).float().cpu())
        if flips:
            flipped = encode_images(vae, images.flip(-1), sample, generator).float().cpu()
            parts.setdefault("flipped_latents", []).append(flipped)
        if "labels" in batch:
            parts.setdefault("labels", []).append(batch["labels"])
    return {key: torch.cat(values) for key, values in parts.items()}


def cached_latents(run, dataset: "datasets.Dataset", vae: AutoencoderKL, accelerator) -> dict[str, torch.Tensor]:
    """[`encode_dataset`]'s output, read from the cache ([`latent_cache_file`]) or encoded by the main process and
    written there atomically (a stopped run leaves no half-written file) before the other processes read it."""
    path = latent_cache_file(run, dataset, vae)
    with accelerator.main_process_first():
        if not path.is_file():
            logger.info(f"Encoding {len(dataset)} images with the VAE into {path} (once per VAE and data)")
            encoded = encode_dataset(
                dataset, vae, accelerator.device, run.vae_sample, run.seed, run.random_flip
            )  # fmt: skip
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            save_file({k: v.contiguous() for k, v in encoded.items()}, str(partial))
            os.replace(partial, path)
        else:
            logger.info(f"Latents of the training set read from the cache {path}")
        return load_file(str(path))


def check_latent_scale(data: dict, vae: AutoencoderKL | None, target: float = 0.5) -> float | None:
    """Warns when the encoded training latents' standard deviation is far (over 1.5x either way) from `target`, the
    spread of images in [-1, 1] that ACT's noise levels, their distribution and the preconditioning were set for: on
    the digits, latents of unit spread scored FID 75 against 17 for latents of spread 0.5, and `--sigma_data 1.0` did
    not close the gap (docs/latent.md). Returns the spread (None for pixel data)."""
    if vae is None or "latents" not in data:
        return None
    spread = data["latents"].float().std().item()
    if not 1 / 1.5 <= spread / target <= 1.5:
        factor = vae.config.scaling_factor * target / spread
        logger.warning(
            f"The training latents have a standard deviation of {spread:.3g}; ACT's noise schedule suits a spread of "
            f"about {target:g} (images in [-1, 1]). Pass --vae_scaling_factor {factor:.4g} to scale them to "
            f"{target:g} (the VAE's is {vae.config.scaling_factor:.4g}; docs/latent.md)."
        )
    return spread
