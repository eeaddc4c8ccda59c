# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning: the networks of a saved `ACTPipeline` (a training run's output folder, a Hub repo, or an authors'
checkpoint converted with `scripts/convert_act_original_to_diffusers.py`) as the starting point of a run."""

import logging
from pathlib import Path

from diffusers import DiffusionPipeline, UNet2DModel

from ..models.discriminator import ACTDiscriminator

logger = logging.getLogger(__name__)


def load_pretrained_networks(
    name_or_path: str, revision: str | None = None, variant: str | None = None
) -> tuple[UNet2DModel, ACTDiscriminator | None]:
    """
    The generator (`unet/`) of a saved `ACTPipeline` and, when saved beside it, its discriminator
    (`discriminator/`), loaded as diffusers loads them: safetensors first, else `.bin` read with
    `torch.load(weights_only=True)`, which cannot run code.

    Args:
        name_or_path (`str`): A local folder or a Hub repo id.
        revision (`str`, *optional*), variant (`str`, *optional*): As in `from_pretrained`.

    Returns:
        `(unet, discriminator)`; `discriminator` is None when none was saved.
    """
    kwargs = {"revision": revision, "variant": variant}
    local = Path(name_or_path)
    if local.exists() and not (local / "unet").is_dir():
        raise ValueError(
            f"--pretrained_model_name_or_path {name_or_path} has no `unet/` folder: pass the folder a training run or "
            "`ACTPipeline.save_pretrained` wrote (model_index.json, unet/, scheduler/), or convert an authors' "
            "checkpoint first with scripts/convert_act_original_to_diffusers.py."
        )
    try:
        unet = UNet2DModel.from_pretrained(name_or_path, subfolder="unet", **kwargs)
    except OSError as error:
        raise ValueError(
            f"Cannot load the generator from --pretrained_model_name_or_path {name_or_path!r} ({error}). Check the "
            "folder or Hub id (and --revision / --variant), and that you are online or have it in the Hub cache."
        ) from error
    if local.exists() and not (local / "discriminator").is_dir():
        return unet, None
    try:
        discriminator = ACTDiscriminator.from_pretrained(name_or_path, subfolder="discriminator", **kwargs)
    except OSError:
        logger.info(f"{name_or_path} has no discriminator/; the discriminator starts from random weights.")
        return unet, None
    return unet, discriminator


def pretrained_class_names(name_or_path: str, revision: str | None = None) -> dict[int, str] | None:
    """The `id2label` a saved pipeline's `model_index.json` holds (class names), or None."""
    try:
        id2label = DiffusionPipeline.load_config(name_or_path, revision=revision).get("id2label")
    except OSError:  # a folder or repo without model_index.json (e.g. a bare unet/)
        return None
    return {int(k): v for k, v in id2label.items()} if id2label else None


# the scheduler settings a pretrained generator was trained with (its time input and noise range)
SCHEDULER_SETTINGS = ("noise_conditioning", "sigma_min", "sigma_max", "rho")


def pretrained_scheduler_settings(name_or_path: str, revision: str | None = None) -> dict:
    """The [`SCHEDULER_SETTINGS`] of a saved pipeline's `scheduler/` config (empty when it has none): fine-tuning
    must feed the UNet the time input it learned (a converted authors' checkpoint takes the raw sigma)."""
    from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler

    try:
        config = ConsistencyACTScheduler.load_config(name_or_path, subfolder="scheduler", revision=revision)
    except OSError:
        return {}
    return {key: config[key] for key in SCHEDULER_SETTINGS if key in config}


def check_pretrained_fits(
    unet: UNet2DModel,
    channels: int,
    num_classes: int | None,
    model_names: dict[int, str] | None = None,
    data_names: dict[int, str] | None = None,
    allow_other_classes: bool = False,
) -> None:
    """A clear error when the data do not fit the pretrained generator (channels, class conditioning, and class
    names where both have them, unless `allow_other_classes`)."""
    if unet.config.in_channels != channels:
        raise ValueError(
            f"The pretrained generator takes {unet.config.in_channels}-channel images, the training data have "
            f"{channels}. Fine-tune on data with {unet.config.in_channels} channel(s)."
        )
    model_classes = unet.config.num_class_embeds
    if (model_classes is None) != (num_classes is None) or (num_classes and model_classes < num_classes):
        have = f"{model_classes} classes" if model_classes else "no class conditioning"
        want = f"{num_classes} classes" if num_classes else "no labels (unconditional)"
        if model_classes and not num_classes:  # e.g. a folder without class sub-folders
            fix = (
                f"Pass --class_label K (0 <= K < {model_classes}) to train every image as class K, or put the images "
                "into class sub-folders (or name the dataset's --label_column)."
            )
        elif model_classes:
            fix = f"The labels must lie in [0, {model_classes - 1}]."
        else:
            fix = "Pass --no-class_conditional to train it unconditionally."
        raise ValueError(f"The pretrained generator has {have}, the run trains with {want}. {fix}")
    differ = {i: (model_names.get(i), name) for i, name in (data_names or {}).items() if model_names and
              model_names.get(i) != name}  # fmt: skip
    if differ and not allow_other_classes:
        shown = "; ".join(f"class {i}: {old!r} in the model, {new!r} in the data" for i, (old, new) in differ.items())
        raise ValueError(
            f"The pretrained model's classes differ from the data's ({shown[:300]}): fine-tuning would train each "
            "class id on other images. Name the data's classes as the model's, or pass --allow_other_classes."
        )
