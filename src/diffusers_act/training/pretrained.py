# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning: the networks of a saved `ACTPipeline` (a training run's output folder, a Hub repo, or an authors'
checkpoint converted with `scripts/convert_act_original_to_diffusers.py`) as the starting point of a run."""

import dataclasses
import logging
from pathlib import Path

from diffusers import DiffusionPipeline, UNet2DModel

from ..models.discriminator import ACTDiscriminator
from ..pipelines.act.autoencoder import vae_scale_factor

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
SCHEDULER_SETTINGS = ("noise_conditioning", "sigma_min", "sigma_max", "sigma_data", "rho")


def pretrained_scheduler_settings(name_or_path: str, revision: str | None = None) -> dict:
    """The [`SCHEDULER_SETTINGS`] of a saved pipeline's `scheduler/` config (empty when it has none): fine-tuning
    must feed the UNet the time input it learned (a converted authors' checkpoint takes the raw sigma)."""
    from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler

    try:
        config = ConsistencyACTScheduler.load_config(name_or_path, subfolder="scheduler", revision=revision)
    except OSError:
        return {}
    return {key: config[key] for key in SCHEDULER_SETTINGS if key in config}


def check_pretrained_fits(unet: UNet2DModel, channels: int, num_classes: int | None) -> None:
    """A clear error when the data do not fit the pretrained generator (channels, class conditioning)."""
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


def match_classes(
    model_names: dict[int, str] | None, data_names: dict[int, str] | None, allow_other_classes: bool = False
) -> tuple[dict[int, int] | None, dict[int, str] | None]:
    """
    How the data's classes map onto a pretrained model's, by name, and the fine-tuned model's class names.

    Every data class whose name the model has trains that model class (a subset of the classes, in any order). A
    name the model lacks is an error unless `allow_other_classes`; then the ids are kept as they are (class id by
    class id) and the data's names replace the model's at those ids (a model name the data give to another id is
    dropped, so no name is listed twice).

    Returns:
        `(mapping, id2label)`: `{data id: model id}` (None when the ids stay), and the names to save.
    """
    if not model_names or not data_names:
        return None, {**(model_names or {}), **(data_names or {})} or None
    model_ids = {name: i for i, name in model_names.items()}
    unknown = {i: name for i, name in data_names.items() if name not in model_ids}
    if not unknown:
        mapping = {i: model_ids[name] for i, name in data_names.items()}
        return (None if all(i == j for i, j in mapping.items()) else mapping), dict(model_names)
    if not allow_other_classes:
        shown = ", ".join(map(repr, list(unknown.values())[:10]))
        raise ValueError(
            f"The data's classes {shown} are not classes of the pretrained model (its classes are "
            f"{', '.join(map(repr, list(model_names.values())[:10]))}): classes are matched by name. Rename the "
            "data's classes (sub-folders) to the model's, or pass --allow_other_classes to train class id by class "
            "id under the data's names."
        )
    kept = {i: name for i, name in model_names.items() if name not in data_names.values()}
    return None, dict(sorted({**kept, **data_names}.items()))


def fine_tune_setup(run, config, data, vae=None) -> tuple[UNet2DModel, ACTDiscriminator | None, object]:
    """
    The networks of `--pretrained_model_name_or_path`, and the run fitted to them: the scheduler settings the model
    was trained with and its resolution (unless set), the data checked against it (their latents', with the `vae` of
    a latent model), and the data's classes mapped onto the model's by name ([`match_classes`]; `data` is relabelled
    and takes the model's names).

    Returns:
        `(unet, discriminator, config)`.
    """
    name = run.pretrained_model_name_or_path
    unet, discriminator = load_pretrained_networks(name, run.revision, run.variant)
    trained_with = pretrained_scheduler_settings(name, run.revision)
    config = dataclasses.replace(config, **{k: v for k, v in trained_with.items() if k not in run.explicit})
    factor = 1 if vae is None else vae_scale_factor(vae)  # pixels per latent
    if "resolution" not in run.explicit:
        run.resolution = unet.config.sample_size * factor
    channels = data.channels if vae is None else vae.config.latent_channels  # the data's, not the model's
    check_pretrained_fits(unet, channels, data.num_classes)
    mapping, data.id2label = match_classes(pretrained_class_names(name, run.revision), data.id2label,
                                           run.allow_other_classes)  # fmt: skip
    if mapping:
        logger.info("Classes matched by name: " + ", ".join(f"{data.id2label[j]!r} trains class {j}" for j in
                                                            sorted(mapping.values())))  # fmt: skip
        data.relabel(mapping, unet.config.num_class_embeds)
    return unet, discriminator, config
