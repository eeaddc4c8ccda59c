#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Train a one-step image generator with Adversarial Consistency Training (ACT).

    accelerate launch examples/train_act/train_act.py                       # digits, CPU, a few minutes
    accelerate launch examples/train_act/train_act.py --preset cifar10      # the paper's CIFAR-10 run
    accelerate launch examples/train_act/train_act.py --train_data_dir DIR --resolution 64 --preset imagenet64

This script is glue: arguments, data, accelerate, checkpoints, logging and the Hub. Every formula lives in
`diffusers_act.training` (the training step) and `ConsistencyACTScheduler` (grid and preconditioning).
"""

import argparse
import copy
import dataclasses
import io
import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from diffusers import UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from huggingface_hub import ModelCard, ModelCardData, create_repo, upload_folder
from tqdm.auto import tqdm

from diffusers_act import ACTDiscriminator, ACTPipeline, ConsistencyACTScheduler
from diffusers_act.presets import TRAINING_PRESETS, UNET_PRESETS
from diffusers_act.training import ACTConfig, ACTTrainer, num_timesteps

logger = get_logger(__name__)

# Every flag's default when neither the preset nor the command line sets it.
DEFAULTS = {
    "preset": "digits",
    "dataset_name": None,
    "dataset_config_name": None,
    "train_data_dir": None,
    "image_column": "image",
    "label_column": "label",
    "cache_dir": None,
    "max_train_samples": None,
    "resolution": 32,
    "center_crop": True,
    "random_flip": False,
    "class_conditional": False,
    "model_config_name_or_path": None,
    "output_dir": "act-model",
    "seed": 0,
    "train_batch_size": 32,
    "num_train_epochs": None,
    "max_train_steps": 1000,
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "learning_rate": 1e-4,
    "discr_learning_rate": None,
    "adam_beta1": 0.0,
    "adam_beta2": 0.99,
    "adam_weight_decay": 0.0,
    "lr_scheduler": "constant",
    "lr_warmup_steps": 0,
    "mixed_precision": "no",
    "allow_tf32": False,
    "dataloader_num_workers": 0,
    "use_ema": False,
    "ema_decay": 0.9999,
    "checkpointing_steps": 1000,
    "checkpoints_total_limit": None,
    "resume_from_checkpoint": None,
    "validation_steps": 1000,
    "num_validation_images": 16,
    "logging_steps": 10,
    "report_to": "tensorboard",
    "logging_dir": "logs",
    "push_to_hub": False,
    "hub_model_id": None,
    "hub_token": None,
    "hub_private_repo": False,
    "loss_type": "pseudo_huber",
    "huber_c": None,
    "sigma_min": 0.002,
    "sigma_max": 80.0,
    "rho": 7.0,
    "noise_conditioning": "log",
    "num_timesteps_schedule": "ct",
    "s0": 2,
    "s1": 150,
    "mu0": 0.9,
    "target_ema_schedule": "ct",
    "index_distribution": "uniform",
    "loss_weighting": "none",
    "normalize_loss_weight": False,
    "adv_weight": 0.3,
    "adv_weight_mid": None,
    "gan_loss": "non_saturating",
    "gp_weight": 5.0,
    "gp_interval": 16,
    "gp_lazy": False,
    "use_augment": False,
    "aug_target": 0.55,
    "aug_rate": 0.05,
    "aug_ema": 0.93,
    "fid_steps": None,
    "fid_num_samples": 1000,
    "fid_feature_extractor": "inception",
    "fid_reference_stats": None,
    "inception_weights": None,
}


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: a flag that is not given stays absent, so that presets and DEFAULTS fill it and the model card can
    # list exactly the flags the user set.
    p = argparse.ArgumentParser(
        description=__doc__, argument_default=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    flag = argparse.BooleanOptionalAction
    p.add_argument("--preset", choices=sorted(TRAINING_PRESETS), help="model and hyperparameters (default: digits)")
    data = p.add_argument_group("data")
    data.add_argument("--dataset_name", help="a datasets Hub dataset, e.g. cifar10")
    data.add_argument("--dataset_config_name")
    data.add_argument("--train_data_dir", help="a local image folder; class sub-folders give labels")
    data.add_argument("--image_column")
    data.add_argument("--label_column")
    data.add_argument("--cache_dir")
    data.add_argument("--max_train_samples", type=int)
    data.add_argument("--resolution", type=int)
    data.add_argument("--center_crop", action=flag, help="center (default) or random crop after resizing")
    data.add_argument("--random_flip", action=flag)
    data.add_argument("--class_conditional", action=flag, help="train on the labels of --label_column")
    model = p.add_argument_group("model")
    model.add_argument("--model_config_name_or_path", help="a UNet2DModel config (file, folder or Hub id)")
    model.add_argument("--gradient_checkpointing", action=flag)
    model.add_argument("--noise_conditioning", choices=["log", "sigma"])
    train = p.add_argument_group("training")
    train.add_argument("--output_dir")
    train.add_argument("--seed", type=int)
    train.add_argument("--train_batch_size", type=int, help="B per process; ACT loads 2B images per iteration")
    train.add_argument("--num_train_epochs", type=int)
    train.add_argument("--max_train_steps", type=int, help="iterations K (the curricula span them)")
    train.add_argument("--gradient_accumulation_steps", type=int)
    train.add_argument("--learning_rate", type=float)
    train.add_argument("--discr_learning_rate", type=float, help="defaults to --learning_rate")
    train.add_argument("--adam_beta1", type=float)
    train.add_argument("--adam_beta2", type=float)
    train.add_argument("--adam_weight_decay", type=float)
    train.add_argument("--lr_scheduler")
    train.add_argument("--lr_warmup_steps", type=int)
    train.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"])
    train.add_argument("--allow_tf32", action=flag)
    train.add_argument("--dataloader_num_workers", type=int)
    train.add_argument("--use_ema", action=flag, help="keep an evaluation EMA of the weights and ship it")
    train.add_argument("--ema_decay", type=float)
    act = p.add_argument_group("ACT")
    act.add_argument("--loss_type", choices=["l2", "pseudo_huber", "lpips"])
    act.add_argument("--huber_c", type=float)
    act.add_argument("--sigma_min", type=float)
    act.add_argument("--sigma_max", type=float)
    act.add_argument("--rho", type=float)
    act.add_argument("--num_timesteps_schedule", choices=["ct", "official", "doubling"])
    act.add_argument("--s0", type=int)
    act.add_argument("--s1", type=int)
    act.add_argument("--mu0", type=float)
    act.add_argument("--target_ema_schedule", choices=["ct", "official"])
    act.add_argument("--index_distribution", choices=["uniform", "lognormal"])
    act.add_argument("--loss_weighting", choices=["none", "inverse_delta"])
    act.add_argument(
        "--normalize_loss_weight",
        action=flag,
        help="divide the consistency weight by its mean over n (keeps lambda's paper scale)",
    )
    act.add_argument("--adv_weight", type=float, help="w; 0 trains plain consistency training")
    act.add_argument("--adv_weight_mid", type=float, help="w_mid (defaults to w: a constant weight)")
    act.add_argument("--gan_loss", choices=["non_saturating", "saturating"])
    act.add_argument("--gp_weight", type=float)
    act.add_argument("--gp_interval", type=int)
    act.add_argument("--gp_lazy", action=flag)
    act.add_argument("--use_augment", action=flag, help="ACT-Aug: adaptive augmentation driven by R1")
    act.add_argument("--aug_target", type=float)
    act.add_argument("--aug_rate", type=float)
    act.add_argument("--aug_ema", type=float)
    ev = p.add_argument_group("evaluation")
    ev.add_argument("--fid_steps", type=int, help="compute FID (and precision/recall) every N iterations")
    ev.add_argument("--fid_num_samples", type=int, help="1-step samples per evaluation (default 1000)")
    ev.add_argument(
        "--fid_feature_extractor",
        choices=["inception", "digits"],
        help="Inception-v3 (the metrics extra) or a digits classifier (the digits preset's default)",
    )
    ev.add_argument("--fid_reference_stats", help="an .npz with mu/sigma to compare against instead of the data")
    ev.add_argument("--inception_weights", help="a local Inception weights file, for machines without internet")
    log = p.add_argument_group("checkpoints, logging, Hub")
    log.add_argument("--checkpointing_steps", type=int)
    log.add_argument("--checkpoints_total_limit", type=int)
    log.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'latest' in --output_dir")
    log.add_argument("--validation_steps", type=int)
    log.add_argument("--num_validation_images", type=int)
    log.add_argument("--logging_steps", type=int)
    log.add_argument("--report_to", help="tensorboard, wandb, all or none")
    log.add_argument("--logging_dir")
    log.add_argument("--push_to_hub", action=flag)
    log.add_argument("--hub_model_id")
    log.add_argument("--hub_token")
    log.add_argument("--hub_private_repo", action=flag)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Command line over preset over DEFAULTS; `args.explicit` holds the flags given on the command line."""
    explicit = vars(build_parser().parse_args(argv))
    preset = explicit.get("preset", DEFAULTS["preset"])
    values = {**DEFAULTS, **TRAINING_PRESETS[preset], **explicit, "preset": preset}
    if values["adv_weight_mid"] is None:
        values["adv_weight_mid"] = values["adv_weight"]
    if values["discr_learning_rate"] is None:
        values["discr_learning_rate"] = values["learning_rate"]
    if values["dataset_name"] and values["train_data_dir"] and "dataset_name" not in explicit:
        values["dataset_name"] = None  # a local folder replaces the preset's Hub dataset
    if values["dataset_name"] and values["train_data_dir"]:
        raise ValueError("Pass only one of --dataset_name and --train_data_dir.")
    values["explicit"] = {k: v for k, v in explicit.items() if k != "hub_token"}
    return argparse.Namespace(**values)


# ------------------------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------------------------
def digits_dataset():
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes) as a `datasets.Dataset`."""
    import datasets
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [PIL.Image.fromarray((img * 255 / 16).round().astype(np.uint8), mode="L") for img in digits.images]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in range(10)])}
    )
    return datasets.Dataset.from_dict({"image": images, "label": digits.target.tolist()}, features=features)


def load_training_dataset(args):
    """The training images as a `datasets.Dataset` with undecoded images (so errors can name the file)."""
    import datasets

    if args.train_data_dir:
        if not Path(args.train_data_dir).is_dir():
            raise ValueError(f"--train_data_dir {args.train_data_dir!r} is not a folder.")
        dataset = datasets.load_dataset(
            "imagefolder", data_dir=args.train_data_dir, cache_dir=args.cache_dir, split="train"
        )
    elif args.dataset_name:
        try:
            dataset = datasets.load_dataset(
                args.dataset_name, args.dataset_config_name, cache_dir=args.cache_dir, split="train"
            )
        except Exception as error:
            raise ValueError(
                f"Could not load --dataset_name {args.dataset_name!r}: the name is unknown or the Hub cannot be "
                f"reached (no network?). To train on local images, pass --train_data_dir DIR (an image folder; "
                f"class sub-folders give labels). Original error: {type(error).__name__}: {error}"
            ) from error
    else:
        dataset = digits_dataset()

    columns = dataset.column_names
    if args.image_column not in columns:
        raise ValueError(f"--image_column {args.image_column!r} is not in the dataset; its columns are {columns}.")
    if args.class_conditional and args.label_column not in columns:
        raise ValueError(
            f"--label_column {args.label_column!r} is not in the dataset; its columns are {columns}. "
            "Pass --label_column, or --no-class_conditional for unconditional training."
        )
    if args.max_train_samples is not None:
        dataset = dataset.select(range(min(args.max_train_samples, len(dataset))))
    return dataset.cast_column(args.image_column, datasets.Image(decode=False))


def count_classes(dataset, label_column: str) -> int:
    feature = dataset.features[label_column]
    return feature.num_classes if hasattr(feature, "num_classes") else int(max(dataset[label_column])) + 1


def decode_image(value: dict, channels: int, index: int) -> PIL.Image.Image:
    source = value.get("path") or f"image #{index}"
    try:
        raw = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        image = PIL.Image.open(raw)
        image.load()
    except Exception as error:
        raise ValueError(f"Could not read training image {source}: {error}. Remove or replace the file.") from error
    return image.convert("L" if channels == 1 else "RGB")


def image_to_tensor(image: PIL.Image.Image, resolution: int, center_crop: bool, random_flip: bool) -> torch.Tensor:
    """Resize (shorter side), crop to a square, maybe flip, scale to [-1, 1]: a tensor of shape (C, H, W)."""
    scale = resolution / min(image.size)
    size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
    if image.size != size:
        image = image.resize(size, PIL.Image.BICUBIC)
    if center_crop:
        left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
    else:
        left = int(torch.randint(0, image.width - resolution + 1, ()))
        top = int(torch.randint(0, image.height - resolution + 1, ()))
    array = np.asarray(image.crop((left, top, left + resolution, top + resolution)), dtype=np.float32)
    if random_flip and torch.rand(()) < 0.5:
        array = array[:, ::-1]
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1) / 127.5 - 1


def make_transform(args, channels: int):
    def transform(batch):
        indices = range(len(batch[args.image_column]))
        out = {
            "pixel_values": [
                image_to_tensor(decode_image(v, channels, i), args.resolution, args.center_crop, args.random_flip)
                for i, v in zip(indices, batch[args.image_column], strict=True)
            ]
        }
        if args.class_conditional:
            out["labels"] = batch[args.label_column]
        return out

    return transform


def collate(examples):
    batch = {"pixel_values": torch.stack([e["pixel_values"] for e in examples])}
    if "labels" in examples[0]:
        batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=torch.long)
    return batch


# ------------------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------------------
def unet_config(args, channels: int, num_classes: int | None) -> dict:
    if args.model_config_name_or_path:
        config = dict(UNet2DModel.load_config(args.model_config_name_or_path))
        config = {k: v for k, v in config.items() if not k.startswith("_")}
    else:
        config = copy.deepcopy(UNET_PRESETS[args.preset])
    config.update(
        sample_size=args.resolution, in_channels=channels, out_channels=channels, num_class_embeds=num_classes
    )
    factor = 2 ** (len(config["block_out_channels"]) - 1)
    if args.resolution % factor:
        lower, upper = (args.resolution // factor) * factor, (args.resolution // factor + 1) * factor
        raise ValueError(
            f"--resolution {args.resolution} does not fit this UNet: its {len(config['block_out_channels'])} levels "
            f"halve the image {int(math.log2(factor))} times, so the resolution must be a multiple of {factor} "
            f"(e.g. {max(lower, factor)} or {upper})."
        )
    return config


# ------------------------------------------------------------------------------------------------------------------
# Checkpoints: written to a hidden temporary folder, then renamed, so a killed run never leaves a partial one
# ------------------------------------------------------------------------------------------------------------------
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
STATE_FILE = "training_state.json"


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first (a partial write is a `.checkpoint-N.tmp` folder)."""
    if not output_dir.is_dir():
        return []
    found = [d for d in output_dir.iterdir() if CHECKPOINT.fullmatch(d.name) and (d / STATE_FILE).is_file()]
    return sorted(found, key=lambda d: int(CHECKPOINT.fullmatch(d.name).group(1)))


def save_checkpoint(accelerator: Accelerator, args, global_step: int, extra: dict) -> Path:
    output_dir = Path(args.output_dir)
    final, partial = output_dir / f"checkpoint-{global_step}", output_dir / f".checkpoint-{global_step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps({"global_step": global_step, **extra}, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        if args.checkpoints_total_limit is not None:
            for old in complete_checkpoints(output_dir)[: -args.checkpoints_total_limit]:
                shutil.rmtree(old)
                logger.info(f"Removed old checkpoint {old}")
        logger.info(f"Saved {final}")
    accelerator.wait_for_everyone()
    return final


def resolve_resume(args) -> Path | None:
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint == "latest":
        found = complete_checkpoints(Path(args.output_dir))
        if not found:
            logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {args.output_dir}; starting fresh.")
            return None
        return found[-1]
    path = Path(args.resume_from_checkpoint)
    if not (path / STATE_FILE).is_file():
        raise ValueError(
            f"--resume_from_checkpoint {path} is not a complete checkpoint (no {STATE_FILE} in it). Pass a "
            f"checkpoint-N folder of --output_dir, or 'latest'."
        )
    return path


# ------------------------------------------------------------------------------------------------------------------
# Samples, model card, Hub
# ------------------------------------------------------------------------------------------------------------------
def sample_grid(unet, scheduler, args, num_classes: int | None, steps=(1, 2)) -> PIL.Image.Image:
    """A fixed-seed grid: one row block per number of steps, the same noise (and labels) in each block."""
    pipe = ACTPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    n = args.num_validation_images
    labels = (torch.arange(n) % num_classes).tolist() if num_classes else None
    rows = []
    for num_steps in steps:
        generator = torch.Generator().manual_seed(args.seed)
        images = pipe(
            batch_size=n, class_labels=labels, num_inference_steps=num_steps, generator=generator, output_type="np"
        ).images
        rows.append(images)
    images = np.concatenate(rows)
    per_row = math.ceil(math.sqrt(n))
    rows_per_block = math.ceil(n / per_row)
    h, w, c = images.shape[1:]
    grid = np.ones(((rows_per_block * len(steps)) * (h + 2), per_row * (w + 2), c), dtype=np.float32)
    for block in range(len(steps)):
        for i in range(n):
            r, col = block * rows_per_block + i // per_row, i % per_row
            grid[r * (h + 2) + 1 : r * (h + 2) + 1 + h, col * (w + 2) + 1 : col * (w + 2) + 1 + w] = images[
                block * n + i
            ]
    grid = (grid * 255).round().astype(np.uint8)
    return PIL.Image.fromarray(grid[..., 0] if c == 1 else grid)


def log_grid(accelerator: Accelerator, grid: PIL.Image.Image, step: int) -> None:
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            array = np.asarray(grid.convert("RGB"))
            tracker.writer.add_image("samples (top: 1 step, bottom: 2 steps)", array, step, dataformats="HWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"samples": [wandb.Image(grid, caption="top: 1 step, bottom: 2 steps")]}, step=step)


def write_model_card(args, output_dir: Path, num_params: int, final_n: int, metrics: dict | None = None) -> None:
    dataset = args.dataset_name or ("local image folder" if args.train_data_dir else "scikit-learn digits")
    card_data = ModelCardData(
        library_name="diffusers",
        license="apache-2.0",
        tags=["diffusers", "diffusers-act", "act", "consistency-model", "one-step", "image-generation"],
        datasets=[args.dataset_name] if args.dataset_name else None,
        pipeline_tag="unconditional-image-generation",
    )
    flags = "\n".join(f"- `--{k} {v}`" for k, v in sorted(args.explicit.items())) or "- (none: preset defaults)"
    conditional = "class-conditional" if args.class_conditional else "unconditional"
    call = "pipe(batch_size=4, class_labels=[0, 1, 2, 3])" if args.class_conditional else "pipe(batch_size=4)"
    if metrics:
        evaluation = (
            f"Measured at the end of training on {args.fid_num_samples} one-step samples against the training "
            f"images, with {args.fid_feature_extractor} features:\n\n"
            + "\n".join(f"- {name}: {value:.4g}" for name, value in metrics.items())
        )
    else:
        evaluation = "Not measured (train with `--fid_steps`, or run `scripts/evaluate.py`)."
    repo = args.hub_model_id or "path/to/this/folder"
    content = f"""---
{card_data.to_yaml()}
---

# {Path(args.output_dir).name}

A {conditional} one-step image generator ({num_params / 1e6:.1f}M parameters, {args.resolution}x{args.resolution})
trained with Adversarial Consistency Training (ACT, Kong et al.) by
[diffusers-act](https://github.com/diffusers-act/diffusers-act) on **{dataset}**, preset `{args.preset}`,
{args.max_train_steps} iterations (final grid N = {final_n}).

## Use

```bash
pip install diffusers-act
```

```py
from diffusers_act import ACTPipeline

pipe = ACTPipeline.from_pretrained("{repo}")
images = {call}.images        # one step
images = pipe(num_inference_steps=2).images     # two steps
```

## Samples

![samples](samples.png)

Fixed seed; top: 1 step, bottom: 2 steps.

## Training

Flags given on the command line (everything else from the `{args.preset}` preset):

{flags}

The discriminator is in `discriminator/` (for fine-tuning); sampling does not need it.

## Evaluation

{evaluation}
"""
    ModelCard(content).save(output_dir / "README.md")


def push_to_hub(args, output_dir: Path) -> str:
    repo_id = args.hub_model_id or output_dir.name
    ignore = ["checkpoint-*/**", ".checkpoint-*/**", f"{args.logging_dir}/**", "logs.jsonl"]
    try:
        repo_id = create_repo(repo_id, exist_ok=True, private=args.hub_private_repo, token=args.hub_token).repo_id
        upload_folder(
            repo_id=repo_id,
            folder_path=str(output_dir),
            ignore_patterns=ignore,
            token=args.hub_token,
            commit_message="Upload ACT model trained with diffusers-act",
        )
    except Exception as error:
        raise RuntimeError(
            f"Uploading {output_dir} to the Hub repo {repo_id!r} failed: {type(error).__name__}: {error}. The trained "
            f"model is saved and intact in {output_dir}. To retry: huggingface_hub.upload_folder("
            f"repo_id={repo_id!r}, folder_path={str(output_dir)!r}, ignore_patterns={ignore!r})"
        ) from error
    return repo_id


class SampleEvaluator:
    """FID (with precision/recall, the Inception Score or the digits label metrics when available) of 1-step
    samples against the training images or reference statistics, for `--fid_steps`."""

    def __init__(self, args, dataset, device):
        from diffusers_act.evaluation import (
            FeatureStatistics,
            InceptionV3Features,
            extract_features,
            train_digits_classifier,
        )

        self.args, self.device = args, device
        if args.fid_feature_extractor == "digits":
            self.extractor, accuracy = train_digits_classifier(args.resolution, seed=args.seed)
            logger.info(f"Digits classifier for FID: {accuracy:.1%} held-out accuracy")
        else:
            self.extractor = InceptionV3Features(args.inception_weights)
        self.extractor.to(device)
        if args.fid_reference_stats:
            self.reference = FeatureStatistics.load(args.fid_reference_stats)
        else:
            count = min(len(dataset), 50_000)
            images = torch.stack([dataset[i]["pixel_values"] for i in range(count)]) / 2 + 0.5
            self.reference = extract_features(self.extractor, images, device=device)
        if isinstance(self.reference, torch.Tensor):
            self.reference_stats = FeatureStatistics.from_features(self.reference)

    def __call__(self, unet, scheduler) -> dict[str, float]:
        from diffusers_act.evaluation import (
            FeatureStatistics,
            extract_features,
            frechet_distance,
            generate_samples,
            label_metrics,
            precision_recall,
        )

        pipe = ACTPipeline(unet=unet, scheduler=scheduler)
        images, labels = generate_samples(pipe, self.args.fid_num_samples, seed=self.args.seed, progress=False)
        features = extract_features(self.extractor, images, device=self.device)
        if isinstance(self.reference, torch.Tensor):
            results = {"fid": frechet_distance(FeatureStatistics.from_features(features), self.reference_stats)}
            results["precision"], results["recall"] = precision_recall(self.reference.to(features), features)
        else:
            results = {"fid": frechet_distance(FeatureStatistics.from_features(features), self.reference)}
        if self.args.fid_feature_extractor == "digits":
            results.update(label_metrics(self.extractor, images.to(self.device), labels))
        return results


class NonFiniteLossError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------------------------
def main(argv=None) -> Path:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / args.logging_dir)
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("accelerate.checkpointing").setLevel(logging.WARNING)  # one line per file otherwise
    if args.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    resume_path = resolve_resume(args)

    # data
    with accelerator.main_process_first():
        dataset = load_training_dataset(args)
    channels = UNET_PRESETS[args.preset]["in_channels"] if not args.model_config_name_or_path else None
    channels = channels or UNet2DModel.load_config(args.model_config_name_or_path).get("in_channels", 3)
    num_classes = count_classes(dataset, args.label_column) if args.class_conditional else None
    dataset = dataset.with_transform(make_transform(args, channels))
    evaluator = None
    if args.fid_steps and accelerator.is_main_process:
        evaluator = SampleEvaluator(args, dataset, accelerator.device)
    adversarial = args.adv_weight > 0
    loader_batch = args.train_batch_size * (2 if adversarial else 1)  # ACT: B for G, B for D (B/2 fake, B/2 real)
    if len(dataset) < loader_batch:
        raise ValueError(f"The dataset has {len(dataset)} images, fewer than one batch ({loader_batch}).")
    # its own generator: starting an epoch must not draw from the global RNG, or resuming would shift every draw
    dataloader = torch.utils.data.DataLoader(
        dataset,
        batch_size=loader_batch,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )

    # models: identical initial weights on every process
    set_seed(args.seed)
    unet = UNet2DModel(**unet_config(args, channels, num_classes))
    if args.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    target_unet = copy.deepcopy(unet).requires_grad_(False)
    discriminator = ACTDiscriminator.from_unet_config(unet.config) if adversarial else None
    ema = (
        EMAModel(unet.parameters(), decay=args.ema_decay, model_cls=UNet2DModel, model_config=unet.config)
        if args.use_ema
        else None
    )
    final_n = num_timesteps(args.max_train_steps, args.max_train_steps, args.s0, args.s1, args.num_timesteps_schedule)
    scheduler = ConsistencyACTScheduler(
        num_train_timesteps=final_n,
        sigma_min=args.sigma_min,
        sigma_max=args.sigma_max,
        rho=args.rho,
        noise_conditioning=args.noise_conditioning,
    )

    betas = (args.adam_beta1, args.adam_beta2)
    g_opt = torch.optim.RAdam(
        unet.parameters(), lr=args.learning_rate, betas=betas, weight_decay=args.adam_weight_decay
    )
    lr_kwargs = {
        "num_warmup_steps": args.lr_warmup_steps * accelerator.num_processes,
        "num_training_steps": args.max_train_steps * accelerator.num_processes,
    }
    g_sched = get_scheduler(args.lr_scheduler, g_opt, **lr_kwargs)
    if adversarial:
        d_opt = torch.optim.RAdam(
            discriminator.parameters(), lr=args.discr_learning_rate, betas=betas, weight_decay=args.adam_weight_decay
        )
        d_sched = get_scheduler(args.lr_scheduler, d_opt, **lr_kwargs)
        unet, discriminator, g_opt, d_opt, g_sched, d_sched, dataloader = accelerator.prepare(
            unet, discriminator, g_opt, d_opt, g_sched, d_sched, dataloader
        )
    else:
        d_opt = d_sched = None
        unet, g_opt, g_sched, dataloader = accelerator.prepare(unet, g_opt, g_sched, dataloader)
    target_unet.to(accelerator.device)
    if ema is not None:
        ema.to(accelerator.device)

    # every ACTConfig field that has a flag of the same name comes from the flag
    shared = {f.name: getattr(args, f.name) for f in dataclasses.fields(ACTConfig) if f.name in vars(args)}
    config = ACTConfig(**shared, total_steps=args.max_train_steps, augment=args.use_augment)
    trainer = ACTTrainer(unet, target_unet, scheduler, g_opt, config, accelerator, discriminator, d_opt)
    # everything that is training state goes into accelerate's checkpoints
    for obj in (target_unet, trainer, ema):
        if obj is not None:
            accelerator.register_for_checkpointing(obj)

    global_step = 0
    if resume_path is not None:
        accelerator.load_state(str(resume_path))
        global_step = json.loads((resume_path / STATE_FILE).read_text())["global_step"]
        logger.info(f"Resumed from {resume_path} at iteration {global_step}")
    if resume_path is None:
        set_seed(args.seed, device_specific=True)  # different noise and augmentation on each process

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        tracker_config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
        try:
            accelerator.init_trackers("train_act", config=tracker_config)
        except Exception as error:  # e.g. --report_to tensorboard without tensorboard installed
            logger.warning(
                f"Could not start the --report_to {args.report_to} tracker ({error}); logging to "
                f"{output_dir / 'logs.jsonl'} only."
            )

    batches_per_epoch = len(dataloader)
    micro_done = global_step * args.gradient_accumulation_steps
    num_epochs = args.num_train_epochs or math.ceil(
        args.max_train_steps * args.gradient_accumulation_steps / batches_per_epoch
    )
    max_steps = min(args.max_train_steps, num_epochs * batches_per_epoch // args.gradient_accumulation_steps)
    logger.info(
        f"{len(dataset)} images, {batches_per_epoch} batches of {loader_batch} per process per epoch, "
        f"{accelerator.num_processes} process(es); {max_steps} iterations, "
        f"{sum(p.numel() for p in target_unet.parameters()) / 1e6:.2f}M generator parameters"
    )

    metrics = None  # the last evaluation, for the model card
    progress = tqdm(
        total=max_steps,
        initial=global_step,
        disable=not accelerator.is_local_main_process,
        desc="ACT" if adversarial else "CT",
    )
    last_checkpoint = complete_checkpoints(output_dir)[-1:] if accelerator.is_main_process else []
    window_images, window_start = 0, time.perf_counter()
    last_penalty = {}  # R1 runs every gp_interval iterations: log its latest value at every logging step
    for epoch in range(micro_done // batches_per_epoch, num_epochs):
        dataloader.set_epoch(epoch)
        skip = micro_done - epoch * batches_per_epoch
        batches = accelerator.skip_first_batches(dataloader, skip) if skip > 0 else dataloader
        for batch in batches:
            images, labels = batch["pixel_values"], batch.get("labels")
            b = args.train_batch_size
            logs = trainer.train_step(
                images[:b],
                global_step,
                None if labels is None else labels[:b],
                images[b:] if adversarial else None,
                None if labels is None or not adversarial else labels[b:],
            )
            last_penalty.update({key: logs[key] for key in ("loss_gp", "r1") if key in logs})
            g_sched.step()
            if d_sched is not None:
                d_sched.step()
            window_images += images.shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            finite = torch.tensor(float(all(math.isfinite(v) for v in logs.values())), device=accelerator.device)
            if accelerator.reduce(finite, reduction="sum").item() < accelerator.num_processes:
                keep = last_checkpoint[-1] if last_checkpoint else "none was written"
                raise NonFiniteLossError(
                    f"Non-finite loss at iteration {global_step}: {logs}. Stopping without saving; the last good "
                    f"checkpoint is {keep}. Lower --learning_rate / --discr_learning_rate (or use fp32) and resume "
                    "with --resume_from_checkpoint latest."
                )
            if ema is not None:
                ema.step(accelerator.unwrap_model(unet).parameters())
            global_step += 1
            progress.update(1)

            if global_step % args.logging_steps == 0 or global_step == max_steps:
                elapsed = time.perf_counter() - window_start
                logs = {**last_penalty, **logs}
                logs.update(images_per_second=window_images / elapsed, lr=g_sched.get_last_lr()[0])
                window_images, window_start = 0, time.perf_counter()
                progress.set_postfix(loss_ct=f"{logs['loss_ct']:.4g}", N=int(logs["num_timesteps"]))
                accelerator.log(logs, step=global_step)
                if accelerator.is_main_process:
                    with open(output_dir / "logs.jsonl", "a") as f:
                        f.write(json.dumps({"step": global_step, **logs}) + "\n")
            if global_step % args.checkpointing_steps == 0:
                last_checkpoint = [save_checkpoint(accelerator, args, global_step, {"epoch": epoch})]
            if global_step % args.validation_steps == 0 and accelerator.is_main_process:
                grid = sample_grid(sampled_unet(accelerator, unet, target_unet, ema), scheduler, args, num_classes)
                (output_dir / "samples").mkdir(exist_ok=True)
                grid.save(output_dir / "samples" / f"step-{global_step:07d}.png")
                log_grid(accelerator, grid, global_step)
            if args.fid_steps and (global_step % args.fid_steps == 0 or global_step == max_steps):
                if accelerator.is_main_process:
                    metrics = evaluator(sampled_unet(accelerator, unet, target_unet, ema), scheduler)
                    logger.info(f"Iteration {global_step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                    accelerator.log(metrics, step=global_step)
                    with open(output_dir / "logs.jsonl", "a") as f:
                        f.write(json.dumps({"step": global_step, **metrics}) + "\n")
                accelerator.wait_for_everyone()
            if global_step >= max_steps:
                break
        if global_step >= max_steps:
            break
    progress.close()

    accelerator.wait_for_everyone()
    fingerprints = check_processes_agree(accelerator, unet, target_unet, discriminator, trainer)
    if accelerator.is_main_process:
        (output_dir / "training_summary.json").write_text(
            json.dumps(
                {
                    "iterations": global_step,
                    "num_processes": accelerator.num_processes,
                    "final_num_timesteps": final_n,
                    "process_fingerprints": fingerprints,
                },
                indent=2,
            )
        )
        final_unet = sampled_unet(accelerator, unet, target_unet, ema)
        ACTPipeline(unet=final_unet, scheduler=scheduler).save_pretrained(output_dir)
        if adversarial:
            accelerator.unwrap_model(discriminator).save_pretrained(output_dir / "discriminator")
        sample_grid(final_unet, scheduler, args, num_classes).save(output_dir / "samples.png")
        write_model_card(args, output_dir, sum(p.numel() for p in final_unet.parameters()), final_n, metrics)
        logger.info(f"Saved the pipeline to {output_dir}")
        if args.push_to_hub:
            repo_id = push_to_hub(args, output_dir)
            logger.info(f"Pushed to https://huggingface.co/{repo_id}")
    # every process waits for the main one to finish saving before the process group is torn down (a rank that
    # exits early can abort in gloo's teardown)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return output_dir


def check_processes_agree(accelerator, unet, target_unet, discriminator, trainer) -> list[list[float]]:
    """Per process: sums of the generator, target and discriminator weights and the augmentation p. They must be
    identical on every process; a difference is reported loudly."""
    models = [accelerator.unwrap_model(unet), target_unet]
    if discriminator is not None:
        models.append(accelerator.unwrap_model(discriminator))
    values = [sum(p.detach().double().sum().item() for p in m.parameters()) for m in models]
    values.append(trainer.augment.p if trainer.augment is not None else 0.0)
    gathered = accelerator.gather(torch.tensor([values], dtype=torch.float64, device=accelerator.device))
    fingerprints = gathered.cpu().tolist()
    if any(row != fingerprints[0] for row in fingerprints):
        logger.warning(f"The processes ended with different weights (fingerprints {fingerprints}): report this bug.")
    return fingerprints


def sampled_unet(accelerator, unet, target_unet, ema) -> UNet2DModel:
    """The network to sample: the evaluation EMA with --use_ema, else the target network theta^- (as the paper)."""
    if ema is None:
        return target_unet
    model = copy.deepcopy(accelerator.unwrap_model(unet))
    ema.copy_to(model.parameters())
    return model.eval()


if __name__ == "__main__":
    main()
