#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Trains a small diffusers `AutoencoderKL` on scikit-learn's 8x8 digits, for latent ACT on a CPU (docs/latent.md).

    python scripts/train_digits_vae.py --output_dir digits-vae          # about 4 minutes on one CPU thread
    python benchmarks/digits_act_vs_ct.py --vae digits-vae               # latent ACT vs latent CT

The VAE maps a 1 x 8 x 8 digit to 4 x 4 x 4 latents (two levels, downsampling factor 2), trained on the 1,347 training
digits (`--max_train_samples 1347` of the training script) with a mean squared reconstruction error plus a small KL
term (weight `--kl_weight`) to the standard Gaussian, Adam, a fixed seed. Its `scaling_factor` is then set so that the
training latents' means have the standard deviation `--latent_std`, as Stable Diffusion's VAE was scaled to unit
variance (Rombach et al. 2022); the default 0.5 is the preconditioning's `sigma_data` (on these digits, latents of unit
spread trained with sigma_data 0.5 scored a 4x worse FID, docs/latent.md). Beside the weights (safetensors),
`vae_metrics.json` holds the reconstruction error on the 450 held-out digits and the FID (digits-classifier features)
of the reconstructed training digits against the training digits: the lowest FID a latent model with this VAE can reach
on that reference."""

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from diffusers_act.evaluation import compute_metrics, train_digits_classifier
from diffusers_act.sklearn_digits import digits_tensors


def digits_vae(seed: int) -> AutoencoderKL:
    """A 1-channel AutoencoderKL for 8x8 digits: widths (32, 64), one layer per block, 4 latent channels."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), layers_per_block=1, latent_channels=4,
        norm_num_groups=8, sample_size=8, scaling_factor=1.0,
    )  # fmt: skip


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """`[0, 1]` images through the encoder's mean and the decoder, clipped to `[0, 1]`."""
    latents = vae.encode(images * 2 - 1).latent_dist.mode()
    return (vae.decode(latents).sample / 2 + 0.5).clamp(0, 1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="digits-vae", help="where the VAE (save_pretrained) goes")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps at batch 64")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--kl_weight", type=float, default=1e-4, help="weight of the KL term per latent value")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latent_std",
        type=float,
        default=0.5,
        help="standard deviation of the scaled training latents: the scheduler's sigma_data (0.5) by default",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    train, _ = digits_tensors(8, "train")
    test, _ = digits_tensors(8, "test")
    vae = digits_vae(args.seed).train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=args.learning_rate)
    generator = torch.Generator().manual_seed(args.seed)
    for step in range(args.steps):
        batch = train[torch.randint(0, len(train), (64,), generator=generator)] * 2 - 1
        distribution = vae.encode(batch).latent_dist
        reconstruction = vae.decode(distribution.sample(generator)).sample
        kl = distribution.kl().mean() / distribution.mean[0].numel()  # per latent value
        loss = torch.nn.functional.mse_loss(reconstruction, batch) + args.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.5f} (KL per value {kl.item():.3f})")
    vae.eval()
    with torch.no_grad():
        means = vae.encode(train * 2 - 1).latent_dist.mode()
    vae.register_to_config(scaling_factor=float(args.latent_std / means.std()))
    classifier, accuracy = train_digits_classifier(8, seed=0)
    floor = compute_metrics(reconstruct(vae, train), train, classifier, inception_score_splits=None)
    metrics = {
        "parameters": sum(p.numel() for p in vae.parameters()),
        "steps": args.steps,
        "kl_weight": args.kl_weight,
        "scaling_factor": vae.config.scaling_factor,
        "latent_std": args.latent_std,
        "held_out_mse": torch.nn.functional.mse_loss(reconstruct(vae, test), test).item(),  # in [0, 1] units
        "reconstruction_fid": floor["fid"],  # reconstructed training digits against the training digits
        "classifier_accuracy": accuracy,
        "seconds": time.perf_counter() - started,
    }
    output = Path(args.output_dir)
    vae.save_pretrained(output)
    (output / "vae_metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
