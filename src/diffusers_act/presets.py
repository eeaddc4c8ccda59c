# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The presets: UNet configs (the paper's models, paper Table 5, a small CPU model for the digits, and one sized for
any resolution) and each preset's training settings as a row of flag overrides ([`PRESETS`]), read by `--preset`,
the benchmarks and the docs. The defaults the rows override are in `diffusers_act.training.config`."""

import math
from copy import deepcopy

from diffusers import UNet2DModel

UNET_PRESETS: dict[str, dict] = {
    # CIFAR-10 32x32, unconditional: 4 levels, attention at 16x16 (27.5M parameters).
    "cifar10": {
        "sample_size": 32,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 2,
        "block_out_channels": (128, 128, 256, 256),
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": 8,
    },
    # ImageNet 64x64, class-conditional: 5 levels, attention at 16x16 (107.6M parameters).
    "imagenet64": {
        "sample_size": 64,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 2,
        "block_out_channels": (128, 256, 256, 512, 512),
        "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "attention_head_dim": 16,
        "num_class_embeds": 1000,
    },
    # scikit-learn's 8x8 handwritten digits at their native 8x8, class-conditional: a CPU-sized model (~0.5M
    # parameters), two levels (8x8 and 4x4) with attention at 4x4.
    "digits": {
        "sample_size": 8,
        "in_channels": 1,
        "out_channels": 1,
        "layers_per_block": 1,
        "block_out_channels": (32, 64),
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
        "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": 8,
        "norm_num_groups": 8,
        "num_class_embeds": 10,
    },
}


# 256x256 images in the latent space of Stable Diffusion's VAE (sd-vae-ft-mse: 4 x 32 x 32 latents): the CIFAR-10 UNet
# on latents (27.5M parameters), a starting point, not a measured recipe (docs/latent.md); a run gives it the channels
# and size of the VAE it loads.
UNET_PRESETS["latent256"] = {**UNET_PRESETS["cifar10"], "in_channels": 4, "out_channels": 4}


def auto_unet_config(resolution: int) -> dict:
    """
    A CPU-friendly UNet sized for `resolution`, for your own data without a preset: one level per halving down to
    4x4 (2 to 5 levels), widths (32, 64, 64, 128, 128), one attention level at 16x16 or below (at 8x8, the digits
    preset's model). Channels and classes come from the data.
    """
    levels = min(5, max(2, int(math.log2(max(resolution, 1))) - 1))
    attention = next(i for i in range(1, levels) if resolution / 2**i <= 16 or i == levels - 1)
    return {
        "sample_size": resolution,
        "layers_per_block": 1,
        "block_out_channels": (32, 64, 64, 128, 128)[:levels],
        "down_block_types": tuple("AttnDownBlock2D" if i == attention else "DownBlock2D" for i in range(levels)),
        "up_block_types": tuple(
            "AttnUpBlock2D" if i == levels - 1 - attention else "UpBlock2D" for i in range(levels)
        ),
        "attention_head_dim": 8,
        "norm_num_groups": 8,
    }


def unet_config(
    preset: str | None,
    resolution: int,
    channels: int,
    num_classes: int | None,
    model_config_name_or_path: str | None = None,
) -> dict:
    """
    The generator's config for a run: a UNet config file, folder or Hub id if given, else the preset's UNet, else
    [`auto_unet_config`]; with the run's resolution, channels and classes. A resolution the UNet cannot halve often
    enough is an error that names the nearest ones that fit.
    """
    if model_config_name_or_path:
        config = dict(UNet2DModel.load_config(model_config_name_or_path))
        config = {k: v for k, v in config.items() if not k.startswith("_")}
    else:
        config = deepcopy(UNET_PRESETS[preset]) if preset else auto_unet_config(resolution)
    config.update(sample_size=resolution, in_channels=channels, out_channels=channels, num_class_embeds=num_classes)
    factor = 2 ** (len(config["block_out_channels"]) - 1)
    if resolution < 1 or resolution % factor:
        lower, upper = (resolution // factor) * factor, (resolution // factor + 1) * factor
        raise ValueError(
            f"--resolution {resolution} does not fit this UNet: its {len(config['block_out_channels'])} levels "
            f"halve the image {'once' if factor == 2 else f'{int(math.log2(factor))} times'}, so the resolution "
            f"must be a multiple of {factor} "
            f"(e.g. {max(lower, factor)} or {upper})."
        )
    return config


def unet_from_preset(name: str, **overrides) -> UNet2DModel:
    """Builds a randomly initialised `UNet2DModel` from a preset of `UNET_PRESETS`, with config overrides."""
    if name not in UNET_PRESETS:
        raise ValueError(f"Unknown UNet preset {name!r}; choose one of {sorted(UNET_PRESETS)}.")
    return UNet2DModel(**{**deepcopy(UNET_PRESETS[name]), **overrides})


# Hub-dataset settings of a preset: they apply only to the preset's own dataset, not to data the user passes.
DATA_KEYS = ("dataset_name", "dataset_config_name", "image_column", "label_column")

# The improved consistency-training options (Song & Dhariwal 2023; docs/training.md) that make short CPU runs learn,
# with an evaluation EMA: the recipe for your own data when no --preset is given.
IMPROVED_RECIPE = {
    "train_batch_size": 32,
    "max_train_steps": 2000,
    "learning_rate": 5e-4,
    "num_timesteps_schedule": "doubling",
    "s0": 10,
    "s1": 160,
    "mu0": 0.0,
    "index_distribution": "lognormal",
    "loss_weighting": "inverse_delta",
    "use_ema": True,
    "ema_decay": 0.999,
    "checkpointing_steps": 500,
    "validation_steps": 500,
}

# Each preset is a row of overrides, keyed by flag name. A derived value (adv_weight_mid, discr_learning_rate) appears
# only where it differs from its derivation.
PRESETS: dict[str, dict] = {
    # Paper Tables 5/6 and the authors' code: FID 6.0 (ACT-Aug) after 300k iterations at batch 80 on one GPU.
    "cifar10": {
        "dataset_name": "cifar10",
        "image_column": "img",
        "resolution": 32,
        "random_flip": True,
        "class_conditional": False,
        "train_batch_size": 80,
        "max_train_steps": 300_000,
        "loss_type": "lpips",
        "use_augment": True,
        "noise_conditioning": "sigma",
        # the authors' code, where the paper is silent: their discriminator and its betas (0, 0.99 * 16 / 17)
        "discriminator_head": "pool2x2",
        "discriminator_block_out_channels": (128, 256, 256, 256),
        "discr_adam_beta2": 0.99 * 16 / 17,
        # the authors' code where it differs from the paper, since it produced the paper's FIDs (docs/algorithm.md):
        # N(k) rounded (final N 150), mu(k) over N - 1, ADA's step of p, independent noise levels in the D step
        "num_timesteps_schedule": "official",
        "target_ema_schedule": "official",
        "aug_rate": None,
        "discriminator_noise_levels": "independent",
    },
    # Paper: FID 10.6 after 400k iterations at batch 320 per GPU on 4 A100s (1,280 in all) in fp16; class-conditional,
    # no augmentation.
    # ImageNet is gated on the Hub: pass --dataset_name with a 64x64 copy you can access, or --train_data_dir.
    "imagenet64": {
        "resolution": 64,
        "random_flip": True,
        "class_conditional": True,
        "train_batch_size": 320,
        "max_train_steps": 400_000,
        "learning_rate": 5e-5,
        "mixed_precision": "fp16",
        "loss_type": "lpips",
        "s1": 200,
        "mu0": 0.95,
        "adv_weight": 0.6,
        "adv_weight_mid": 0.2,
        "noise_conditioning": "sigma",
        "discriminator_head": "pool2x2",
        "discriminator_final_norm": False,
        "discr_adam_beta2": 0.99 * 16 / 17,
        # as for cifar10: the authors' curricula (final N 200) and D noise levels
        "num_timesteps_schedule": "official",
        "target_ema_schedule": "official",
        "discriminator_noise_levels": "independent",
    },
    # scikit-learn's 8x8 digits at 8x8 on a laptop CPU (the default with no data given): the improved recipe, with
    # the consistency weight normalised so that lambda keeps the paper's scale (as benchmarks/digits_act_vs_ct.py runs
    # it: the benchmark runs this preset).
    "digits": {
        **IMPROVED_RECIPE,
        "normalize_loss_weight": True,
        # R1 at 5 (the paper's CIFAR-10 weight) flattens D on digits (docs/benchmarks.md, "Investigation"); 0.1
        # keeps it informative, measured over seeds in docs/benchmarks.md
        "gp_weight": 0.1,
        "resolution": 8,
        "class_conditional": True,
        "fid_feature_extractor": "digits",
    },
    # Your own 256x256 images (--train_data_dir or --dataset_name) in the latent space of Stable Diffusion's VAE
    # (4 x 32 x 32 latents): the improved-CT curricula, iLCT's Cauchy distance and minibatch OT pairing (Dao et al.
    # 2025), ACT's discriminator. Not measured: batch, iterations, learning rate and the iLCT options are a starting
    # point taken from the papers, not tuned here (docs/latent.md).
    "latent256": {
        **IMPROVED_RECIPE,
        "resolution": 256,
        "vae_name_or_path": "stabilityai/sd-vae-ft-mse",
        "random_flip": True,
        "train_batch_size": 64,
        "max_train_steps": 200_000,
        "learning_rate": 1e-4,
        "s1": 1280,
        "normalize_loss_weight": True,
        "loss_type": "cauchy",
        "ot_pairing": True,
        # sd-vae-ft-mse's scaling_factor (0.18215) gives latents of about unit spread; half of it gives the 0.5 of
        # images in [-1, 1] that ACT's noise levels suit (on digits, unit-spread latents scored FID 75 against 17)
        "vae_scaling_factor": 0.18215 / 2,
        "mixed_precision": "bf16",
        "ema_decay": 0.9999,
        "checkpointing_steps": 5000,
        "validation_steps": 5000,
    },
}

# Presets without a dataset of their own: --train_data_dir or --dataset_name is required.
PRESETS_WITHOUT_DATA = ("latent256",)

# The global batch (train_batch_size x processes x gradient accumulation) of the paper's runs that a preset follows.
PAPER_GLOBAL_BATCH = {"cifar10": 80, "imagenet64": 1280}


def paper_batch_note(preset: str | None, batch_size: int, num_processes: int, accumulation: int = 1) -> str | None:
    """A warning when a run of a paper preset has another global batch than the paper's (its FID is not the paper's
    to expect then), else None."""
    paper, used = PAPER_GLOBAL_BATCH.get(preset), batch_size * num_processes * accumulation
    if paper is None or used == paper:
        return None
    return (
        f"The {preset} preset follows the paper's global batch of {paper} images per iteration; this run has {used} "
        f"(--train_batch_size {batch_size} x {num_processes} process(es) x {accumulation} accumulation step(s)). The "
        "paper's FID is measured at its batch: match it with more processes or --gradient_accumulation_steps."
    )
