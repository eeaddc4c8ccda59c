# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""How a config field becomes a flag: its help text and flag name ([`option`]), the interval its value must lie in
([`BOUNDS`], checked by [`check_bounds`]) and its type on the command line. The fields themselves are in
`diffusers_act.training.config`."""

import dataclasses
import math
import typing
from dataclasses import field


def option(
    default: object, help: str, flag: str | None = None, choices: tuple | None = None, nargs: str | None = None
) -> dataclasses.Field:
    """A config field with its help text; `flag` names the command-line flag where it differs from the field, `nargs`
    makes a flag take several values (a tuple of the annotation's element type)."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "nargs": nargs})


# The interval each number must lie in, by field of ACTConfig and RunConfig ([`check_bounds`]); every other number
# must be finite.
BOUNDS = {
    "(0, inf)": ("sigma_min", "sigma_max", "sigma_data", "rho", "p_std", "huber_c", "learning_rate",
                 "discr_learning_rate", "adam_epsilon", "max_grad_norm", "diffusion_loss_max_sigma",
                 "vae_scaling_factor"),
    "[0, inf)": ("gp_weight", "aug_target", "adam_weight_decay", "lr_warmup_steps", "dataloader_num_workers",
                 "class_label", "diffusion_loss_weight"),
    "[0, 1)": ("mu0", "aug_ema", "adam_beta1", "adam_beta2", "discr_adam_beta1", "discr_adam_beta2"),
    "[0, 1]": ("adv_weight", "adv_weight_mid", "aug_rate", "aug_p", "ema_decay"),
    "[1, inf)": ("total_steps", "gp_interval", "discriminator_block_out_channels", "resolution", "train_batch_size",
                 "gradient_accumulation_steps", "checkpointing_steps", "validation_steps", "num_validation_images",
                 "logging_steps", "fid_num_samples", "checkpoints_total_limit", "num_train_epochs", "fid_steps",
                 "max_train_samples"),
    "[2, inf)": ("s0", "s1"),
    "[0, 4294967295]": ("seed",),
}  # fmt: skip
HINTS = {
    "checkpoints_total_limit": " (leave it out to keep every checkpoint)",
    "max_grad_norm": " (leave it out for no clipping)",
}


def check_bounds(config: object) -> None:
    """Raises a `ValueError` that names the flag when a number of `config` lies outside its [`BOUNDS`] or is NaN or
    infinite: before any work, so that a typo cannot fail late or train silently wrong."""
    bounds_of = {name: bounds for bounds, names in BOUNDS.items() for name in names}
    for f in dataclasses.fields(config):
        value, bounds = getattr(config, f.name), bounds_of.get(f.name, "(-inf, inf)")
        values = [v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, (int, float))]
        low, high = (float(x) for x in bounds[1:-1].split(","))
        above = [low < v or bounds[0] == "[" and v == low for v in values]
        below = [v < high or bounds[-1] == "]" and v == high for v in values]
        if not all(math.isfinite(v) and a and b for v, a, b in zip(values, above, below, strict=True)):
            finite = all(math.isfinite(v) for v in values)
            named = {"(0, inf)": "positive", "[1, inf)": "at least 1", "[2, inf)": "at least 2"}
            wanted = named.get(bounds, f"in {bounds}") if finite else "a finite number"
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
            flag = f.metadata.get("flag") or f.name
            raise ValueError(f"--{flag} must be {wanted}, got {shown}{HINTS.get(f.name, '')}.")


def flag_fields(cls: type) -> dict[str, dataclasses.Field]:
    """Command-line flag name -> field of a config dataclass ([`ACTConfig`], [`RunConfig`]), for its fields that are
    flags (`max_train_steps` -> `total_steps`, `use_augment` -> `augment`, the others by their own names)."""
    return {
        (f.metadata.get("flag") or f.name): f for f in dataclasses.fields(cls) if f.metadata.get("flag") is not False
    }


def flag_type(f: dataclasses.Field) -> type:
    """`float` for `float | None`, and so on."""
    args = [a for a in typing.get_args(f.type) if a is not type(None)]
    kind = args[0] if args else f.type
    return typing.get_args(kind)[0] if f.metadata.get("nargs") else kind
