#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Convert a checkpoint of the authors' ACT code (PyTorch Lightning) into an `ACTPipeline`.

    python scripts/convert_act_original_to_diffusers.py --checkpoint_path cifar10.ckpt --dataset cifar10 \
        --output_dir act-cifar10-original [--push_to_hub --hub_model_id your-name/act-cifar10-original]

What the checkpoints hold (from the authors' training code): a Lightning `state_dict` with the trained generator
under `model.unet.`, the discriminator under `model._discriminator.`, and the network they sample, the EMA target,
under `model_ema.unet.` (its discriminator copy under `model_ema._discriminator.`); runs with compilation add
`_orig_mod.` after `unet.`. The network is a diffusers `UNet2DModel` whose keys match today's layout, fed the raw
noise level as its time input (scheduler `noise_conditioning="sigma"`). The CIFAR-10 network has 6 output channels
of which the sampler uses channels 3-5; LSUN Cat 256 uses 6 levels, `flip_sin_to_cos=False`, `freq_shift=1`, and
stores a wrong `sample_size` (it is 256).

The file is read with `torch.load(weights_only=True)`: no code from a downloaded file runs. Every generator key
must be used; a discriminator that does not fit `ACTDiscriminator` is reported and skipped.
"""

import argparse
from copy import deepcopy
from pathlib import Path

import torch
from diffusers import UNet2DModel

from diffusers_act import ACTDiscriminator, ACTPipeline, ConsistencyACTScheduler
from diffusers_act.presets import PRESETS, UNET_PRESETS
from diffusers_act.training.config import ACTConfig, resolve_configs
from diffusers_act.training.curricula import num_timesteps

ORIGINAL_CONFIGS = {
    "cifar10": {**UNET_PRESETS["cifar10"], "out_channels": 6},
    "imagenet64": UNET_PRESETS["imagenet64"],
    "lsun_cat256": {
        "sample_size": 256,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 2,
        "block_out_channels": (128, 128, 256, 256, 512, 512),
        "down_block_types": ("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
        "flip_sin_to_cos": False,
        "freq_shift": 1,
    },
}
# the channels of the network's output that the authors' sampler uses
OUTPUT_CHANNELS = {"cifar10": slice(3, 6)}
# iterations K of the authors' LSUN Cat 256 run, which has no preset; its s0 = 2 and s1 = 150 are ACTConfig's defaults
LSUN_CAT256_TOTAL_STEPS = 800_000
# the authors' discriminators (docs/converter.md): a 2x2-pool head; CIFAR-10's widens the first levels, ImageNet 64's
# has no GroupNorm before its head
DISCRIMINATOR_OVERRIDES = {
    "cifar10": {"block_out_channels": (128, 256, 256, 256), "head_type": "pool2x2"},
    "imagenet64": {"head_type": "pool2x2", "final_norm": False},
}


def final_num_timesteps(dataset: str) -> int:
    """
    N(K), the grid the authors' run ended on and so the scheduler's `num_train_timesteps`: their curriculum rounds,
    `N(k) = round(sqrt(k/K (s1^2 - s0^2) + s0^2))` (`num_timesteps(..., "official")`), so N(K) = s1, with the s0, s1
    and K of the dataset's preset (LSUN Cat 256 has none: `ACTConfig`'s defaults). CIFAR-10 and LSUN Cat 256: 150,
    ImageNet 64: 200.
    """
    if dataset in PRESETS:
        config = resolve_configs({"preset": dataset})[1]
    else:
        config = ACTConfig(total_steps=LSUN_CAT256_TOTAL_STEPS)
    return num_timesteps(config.total_steps, config.total_steps, config.s0, config.s1, "official")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"Could not read {path} with torch.load(weights_only=True): {error}. The converter only reads tensors "
            "and plain containers, never code; if the file holds other Python objects, load it yourself in a "
            "trusted environment and save `checkpoint['state_dict']` alone with torch.save."
        ) from error
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state_dict (found {type(checkpoint).__name__}).")
    return state


def submodule_state(state: dict, prefix: str) -> dict[str, torch.Tensor]:
    """The entries under `prefix`, with the prefix and torch.compile's `_orig_mod.` removed."""
    out = {}
    for key, value in state.items():
        if key.startswith(prefix):
            name = key[len(prefix) :]
            out[name.removeprefix("_orig_mod.")] = value
    return out


def describe_mismatch(model: torch.nn.Module, state: dict) -> str:
    expected, found = set(model.state_dict()), set(state)
    missing, unused = sorted(expected - found), sorted(found - expected)
    shapes = sorted(k for k in expected & found if model.state_dict()[k].shape != state[k].shape)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
    if unused:
        parts.append(f"{len(unused)} unused (e.g. {unused[:3]})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape (e.g. {shapes[:3]})")
    return "; ".join(parts)


def convert(
    checkpoint_path: str | Path,
    dataset: str,
    output_dir: str | Path,
    use_online_weights: bool = False,
    unet_overrides: dict | None = None,
    discriminator_overrides: dict | None = None,
) -> tuple[ACTPipeline, ACTDiscriminator | None]:
    """
    Converts a checkpoint and saves the pipeline (and the discriminator, when it fits) in `output_dir`.

    Args:
        use_online_weights: Convert `model.unet.` (the trained weights) instead of the EMA target `model_ema.unet.`.
        unet_overrides, discriminator_overrides: Config changes, for tests with small networks of the same structure.
    """
    if dataset not in ORIGINAL_CONFIGS:
        raise ValueError(f"--dataset must be one of {sorted(ORIGINAL_CONFIGS)}, got {dataset!r}.")
    state = load_state_dict(checkpoint_path)
    prefix = "model.unet." if use_online_weights else "model_ema.unet."
    unet_state = submodule_state(state, prefix)
    if not unet_state:
        prefixes = sorted({".".join(k.split(".")[:2]) for k in state})
        raise ValueError(f"No '{prefix}' weights in {checkpoint_path}; it holds {prefixes}.")

    config = {**deepcopy(ORIGINAL_CONFIGS[dataset]), **(unet_overrides or {})}
    channels = OUTPUT_CHANNELS.get(dataset)
    if channels is not None:  # keep the output channels the sampler uses
        for key in ("conv_out.weight", "conv_out.bias"):
            if key in unet_state:  # a missing one is named by the check below
                unet_state[key] = unet_state[key][channels]
        config["out_channels"] = channels.stop - channels.start
    unet = UNet2DModel(**config)
    mismatch = describe_mismatch(unet, unet_state)
    if mismatch:
        raise ValueError(f"The checkpoint's '{prefix}' weights do not fit the {dataset} network: {mismatch}.")
    unet.load_state_dict(unet_state, strict=True)

    scheduler = ConsistencyACTScheduler(num_train_timesteps=final_num_timesteps(dataset), noise_conditioning="sigma")
    pipe = ACTPipeline(unet=unet.eval(), scheduler=scheduler)
    output_dir = Path(output_dir)
    pipe.save_pretrained(output_dir)

    disc_prefix = "model._discriminator." if use_online_weights else "model_ema._discriminator."
    disc_state = submodule_state(state, disc_prefix) or submodule_state(state, "model._discriminator.")
    discriminator = None
    if disc_state:
        overrides = {**DISCRIMINATOR_OVERRIDES.get(dataset, {}), **(discriminator_overrides or {})}
        candidate = ACTDiscriminator.from_unet_config(unet.config, **overrides)
        mismatch = describe_mismatch(candidate, disc_state)
        if mismatch:
            print(f"The discriminator was not converted: ACTDiscriminator does not have its structure ({mismatch}).")
        else:
            candidate.load_state_dict(disc_state, strict=True)
            discriminator = candidate
            discriminator.save_pretrained(output_dir / "discriminator")
    return pipe, discriminator


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint_path", required=True)
    parser.add_argument("--dataset", required=True, choices=sorted(ORIGINAL_CONFIGS))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--use_online_weights", action="store_true", help="model.unet. instead of the EMA target")
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_model_id")
    parser.add_argument("--hub_token")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    pipe, discriminator = convert(args.checkpoint_path, args.dataset, args.output_dir, args.use_online_weights)
    print(
        f"Saved the {args.dataset} ACTPipeline to {args.output_dir}"
        + (" with its discriminator" if discriminator else "")
    )
    if args.push_to_hub:
        from diffusers_act.training import push_to_hub

        repo_id = push_to_hub(
            args.output_dir,
            args.hub_model_id or Path(args.output_dir).name,
            args.hub_token,
            commit_message=f"Upload the ACT authors' {args.dataset} checkpoint, converted by diffusers-act",
        )
        print(f"Pushed to https://huggingface.co/{repo_id}")
    return pipe


if __name__ == "__main__":
    main()
