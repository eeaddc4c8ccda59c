# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Watching a run: fixed-seed sample grids, the JSON-lines log, FID during training, and a check that every process
ended with the same weights."""

import json
import logging
import math
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from accelerate import Accelerator
from diffusers import AutoencoderKL, UNet2DModel
from diffusers.utils import make_image_grid

from ..pipelines.act.pipeline_act import ACTPipeline
from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler

logger = logging.getLogger(__name__)


def sample_grid(
    unet: UNet2DModel,
    scheduler: ConsistencyACTScheduler,
    num_images: int = 16,
    seed: int = 0,
    num_classes: int | None = None,
    vae: AutoencoderKL | None = None,
    steps: tuple = (1, 2),
    display_size: int = 32,
) -> PIL.Image.Image:
    """
    A fixed-seed grid: one block of rows per number of sampling steps, the same noise (and labels) in each. Images
    smaller than `display_size` pixels are enlarged by a whole factor with nearest-neighbour pixels and framed (8x8
    digits are shown at 32x32, each generated pixel a 4x4 block), so that the grid is legible; the samples
    themselves keep their size. With a `vae` (a latent model) the decoded images are shown.
    """
    pipe = ACTPipeline(unet=unet, scheduler=scheduler, vae=vae)
    pipe.set_progress_bar_config(disable=True)
    labels = (torch.arange(num_images) % num_classes).tolist() if num_classes else None
    cols = math.ceil(math.sqrt(num_images))
    rows_per_block = math.ceil(num_images / cols)
    images = []
    for num_inference_steps in steps:
        generator = torch.Generator().manual_seed(seed)
        block = pipe(
            batch_size=num_images, class_labels=labels, num_inference_steps=num_inference_steps, generator=generator
        ).images
        images += block + [PIL.Image.new(block[0].mode, block[0].size, 255)] * (rows_per_block * cols - num_images)
    scale = max(1, display_size // max(images[0].size))
    if scale > 1:  # enlarged, with a 2-pixel grey frame so that neighbouring digits do not run together
        images = [
            PIL.ImageOps.expand(image.resize((image.width * scale, image.height * scale), PIL.Image.NEAREST), 2, 128)
            for image in images
        ]
    return make_image_grid(images, rows=rows_per_block * len(steps), cols=cols).convert(images[0].mode)


def log_image(accelerator: Accelerator, name: str, image: PIL.Image.Image, step: int) -> None:
    """Sends an image to every tracker that takes images (tensorboard, wandb, ...)."""
    array = np.asarray(image.convert("RGB"))[None]
    for tracker in accelerator.trackers:
        kwargs = {"dataformats": "NHWC"} if tracker.name == "tensorboard" else {}
        try:
            tracker.log_images({name: array}, step=step, **kwargs)
        except NotImplementedError:  # a tracker without images
            pass


class LogWindow:
    """
    The logged values of the iterations since the last log, summed as tensors where they are (no host-device
    synchronisation per iteration); read with one transfer when logged, and checked for non-finite values (with the
    models' weights) before logging and before every checkpoint. Values logged only on some iterations (R1's) keep
    their last mean until they are logged again.

    Args:
        accelerator (`Accelerator`): To agree on finiteness across processes.
    """

    def __init__(self, accelerator: Accelerator):
        self.accelerator, self.carried = accelerator, {}
        self.reset()

    def reset(self) -> None:
        self.sums, self.counts, self.latest = {}, {}, {}

    def add(self, logs: dict) -> None:
        """Adds one iteration's logs: tensors are summed on their device, other values kept as the latest."""
        for key, value in logs.items():
            if torch.is_tensor(value):
                value = value.detach().float().to(self.accelerator.device)
                self.sums[key] = self.sums[key] + value if key in self.sums else value
                self.counts[key] = self.counts.get(key, 0) + 1
            else:
                self.latest[key] = value

    def all_finite(self, *modules: torch.nn.Module) -> bool:
        """Whether every value added since the last reset and every weight of `modules` is finite, on every process
        (one transfer and one reduction)."""
        host = [math.isfinite(v) for v in self.latest.values() if isinstance(v, (int, float))]
        checks = [torch.isfinite(value).all() for value in self.sums.values()] + [torch.tensor(all(host))]
        params = [p.detach() for module in modules for p in module.parameters()]
        if params:  # the norm of a tensor with a NaN or an infinity is not finite
            checks.append(torch.isfinite(torch.stack(torch._foreach_norm(params))).all().to(self.accelerator.device))
        finite = torch.stack([check.to(self.accelerator.device) for check in checks]).all().float()
        return self.accelerator.reduce(finite, reduction="sum").item() == self.accelerator.num_processes

    def means(self) -> dict:
        """The window's means (one transfer), the latest non-tensor values, and carried values not in this window."""
        keys = list(self.sums)
        values = torch.stack([self.sums[k] / self.counts[k] for k in keys]).tolist() if keys else []
        self.carried.update(zip(keys, values, strict=True))
        return {**self.carried, **self.latest}


class JsonlLog:
    """
    The run's `logs.jsonl`: one JSON object per line, `{"step": k, ...}`, written by the main process only.

    Args:
        path (`str` or `Path`): The file.
        resume_step (`int`, *optional*): On a resumed run, lines after this step (redone steps of the interrupted run)
            are dropped first, so that no step appears twice.
    """

    def __init__(self, path: str | Path, enabled: bool = True, resume_step: int | None = None):
        self.path, self.enabled = Path(path), enabled
        if enabled and resume_step is not None and self.path.is_file():
            lines, kept = self.path.read_text().splitlines(keepends=True), []
            for number, line in enumerate(lines, 1):
                try:
                    step = json.loads(line)["step"]
                    if isinstance(step, bool) or not isinstance(step, int):
                        raise TypeError
                except (ValueError, KeyError, TypeError, IndexError):
                    if number == len(lines) and not line.endswith("\n"):  # a run killed while writing it
                        logger.warning(f"{self.path}: dropped its last line, which was cut short: {line[:80]!r}")
                        continue
                    raise ValueError(
                        f"{self.path}, line {number}, is not a log entry ({line.strip()[:80]!r}): delete that line "
                        "(or the file, which only holds logs) to resume."
                    ) from None
                if step <= resume_step:
                    kept.append(line.rstrip("\n") + "\n")
            self.path.write_text("".join(kept))

    def write(self, step: int, values: dict) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **values}) + "\n")

    def read(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines()] if self.path.is_file() else []


class SampleEvaluator:
    """
    FID and precision/recall (and, with the digits classifier, the label metrics) of one-step samples against the
    training images or reference statistics, for evaluation during training. Built on
    [`~diffusers_act.evaluation.compute_metrics`]; the reference features are extracted once.

    Args:
        reference_images (`torch.Tensor`): Training images in `[0, 1]`, `(N, C, H, W)` (unused with `reference_stats`).
        feature_extractor (`str`): `"inception"` (the `metrics` extra), `"digits"`, or `"dinov2"` / `"clip"`
            ([`~diffusers_act.evaluation.DINOv2Features`], [`~diffusers_act.evaluation.CLIPFeatures`], loaded from
            the Hub; their distance is logged as `fd_dinov2` / `fd_clip` instead of `fid`).
        num_samples (`int`): Samples per evaluation.
        resolution, seed, device, inception_weights, reference_stats: As the training flags of those names.
        feature_extractor_model (`str`, *optional*): For `"dinov2"` / `"clip"`, a Hub id or local folder that
            replaces the default model.
    """

    def __init__(
        self,
        reference_images: torch.Tensor | None,
        feature_extractor: str,
        num_samples: int,
        resolution: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
        inception_weights: str | None = None,
        reference_stats: str | None = None,
        feature_extractor_model: str | None = None,
    ):
        from ..evaluation import (
            TRANSFORMERS_FEATURE_EXTRACTORS,
            FeatureStatistics,
            InceptionV3Features,
            extract_features,
            train_digits_classifier,
        )

        self.num_samples, self.seed, self.device, self.digits = (
            num_samples,
            seed,
            device,
            feature_extractor == "digits",
        )
        if self.digits:
            self.extractor, accuracy = train_digits_classifier(resolution, seed=seed)
            logger.info(f"Digits classifier for FID: {accuracy:.1%} held-out accuracy")
        elif feature_extractor in TRANSFORMERS_FEATURE_EXTRACTORS:
            self.extractor = TRANSFORMERS_FEATURE_EXTRACTORS[feature_extractor](feature_extractor_model)
        else:
            self.extractor = InceptionV3Features(inception_weights)
        self.extractor.to(device)
        if reference_stats:
            self.reference, self.reference_features = FeatureStatistics.load(reference_stats), None
        else:
            self.reference_features = extract_features(self.extractor, reference_images, device=device)
            self.reference = FeatureStatistics.from_features(self.reference_features)

    def __call__(
        self, unet: UNet2DModel, scheduler: ConsistencyACTScheduler, vae: AutoencoderKL | None = None
    ) -> dict[str, float]:
        """The metrics of `num_samples` one-step samples (decoded by `vae` for a latent model)."""
        from ..evaluation import compute_metrics, generate_samples, label_metrics

        pipe = ACTPipeline(unet=unet, scheduler=scheduler, vae=vae)
        images, labels = generate_samples(pipe, self.num_samples, seed=self.seed, progress=False)
        results = compute_metrics(
            images,
            self.reference,
            self.extractor,
            inception_score_splits=None,
            reference_features=self.reference_features,
            device=self.device,
        )
        if self.digits:
            results.update(label_metrics(self.extractor, images.to(self.device), labels))
        return results


def process_fingerprints(
    accelerator: Accelerator, modules: list[torch.nn.Module], extra: float = 0.0
) -> list[list[float]]:
    """
    Per process: the sum of each module's weights, and `extra` (e.g. the augmentation p). They must be identical on
    every process; a difference is logged as a bug.
    """
    values = [sum(p.detach().double().sum().item() for p in m.parameters()) for m in modules] + [extra]
    gathered = accelerator.gather(torch.tensor([values], dtype=torch.float64, device=accelerator.device))
    fingerprints = gathered.cpu().tolist()
    if any(row != fingerprints[0] for row in fingerprints):
        logger.warning(f"The processes ended with different weights (fingerprints {fingerprints}): report this bug.")
    return fingerprints
