# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""UNet configs: the paper's models (paper Table 5), a small CPU model for the digits, and one sized for any
resolution. The training settings of each preset are in `diffusers_act.training.config`."""

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
    # scikit-learn's 8x8 handwritten digits resized to 16x16, class-conditional: a CPU-sized model (~1M parameters).
    "digits": {
        "sample_size": 16,
        "in_channels": 1,
        "out_channels": 1,
        "layers_per_block": 1,
        "block_out_channels": (32, 64, 64),
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": 8,
        "norm_num_groups": 8,
        "num_class_embeds": 10,
    },
}


def auto_unet_config(resolution: int) -> dict:
    """
    A CPU-friendly UNet sized for `resolution`, for your own data without a preset: one level per halving down to
    4x4 (2 to 5 levels), widths (32, 64, 64, 128, 128), one attention level at 16x16 or below (the digits preset's
    model at 16x16). Channels and classes come from the data.
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
            f"halve the image {int(math.log2(factor))} times, so the resolution must be a multiple of {factor} "
            f"(e.g. {max(lower, factor)} or {upper})."
        )
    return config


def unet_from_preset(name: str, **overrides) -> UNet2DModel:
    """Builds a randomly initialised `UNet2DModel` from a preset of `UNET_PRESETS`, with config overrides."""
    if name not in UNET_PRESETS:
        raise ValueError(f"Unknown UNet preset {name!r}; choose one of {sorted(UNET_PRESETS)}.")
    return UNet2DModel(**{**deepcopy(UNET_PRESETS[name]), **overrides})
