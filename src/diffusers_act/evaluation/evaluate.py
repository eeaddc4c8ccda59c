# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Generating samples from a pipeline, reading image sets, and computing all metrics in one call."""

from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from torch import nn

from .features import extract_features
from .metrics import FeatureStatistics, frechet_distance, inception_score, precision_recall

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@torch.no_grad()
def generate_samples(
    pipe: DiffusionPipeline,
    num_samples: int,
    batch_size: int = 256,
    num_inference_steps: int = 1,
    class_labels: str | None = "balanced",
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    `num_samples` images in `[0, 1]` (shape `(N, C, H, W)`) from an `ACTPipeline`, and their class labels.

    Args:
        class_labels (`str`, *optional*): For a class-conditional UNet, `"balanced"` (0, 1, ..., K-1, 0, ...) or
            `"random"` (drawn from the seeded generator).
    """
    num_classes = pipe.unet.config.num_class_embeds
    generator = torch.Generator().manual_seed(seed)
    pipe.set_progress_bar_config(disable=True)
    images, labels = [], []
    from tqdm.auto import tqdm

    for start in tqdm(range(0, num_samples, batch_size), disable=not progress, desc="sampling"):
        n = min(batch_size, num_samples - start)
        batch_labels = None
        if num_classes:
            if class_labels == "balanced":
                batch_labels = torch.arange(start, start + n) % num_classes
            else:
                batch_labels = torch.randint(0, num_classes, (n,), generator=generator)
            labels.append(batch_labels)
        out = pipe(
            batch_size=n,
            class_labels=batch_labels,
            num_inference_steps=num_inference_steps,
            generator=generator,
            output_type="pt",
        ).images
        images.append(out.float().cpu())
    return torch.cat(images), (torch.cat(labels) if labels else None)


def load_images(path: str | Path) -> torch.Tensor:
    """
    Images in `[0, 1]`, shape `(N, C, H, W)`, from a folder (sorted file names) or an `.npz` whose `arr_0` holds
    uint8 images `(N, H, W, C)` (the format of the guided-diffusion sample and reference batches).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as data:
            if "arr_0" not in data:
                raise ValueError(f"{path} holds {sorted(data.files)}; an image batch needs 'arr_0' (N, H, W, C).")
            arrays = data["arr_0"]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}.")
        arrays = np.stack([np.asarray(PIL.Image.open(f)) for f in files])
    else:
        raise ValueError(f"{path} is neither a folder of images nor an .npz file.")
    if arrays.dtype != np.uint8:
        raise ValueError(
            f"{path} holds {arrays.dtype} images; save them as uint8 in 0-255 (float images in [0, 1] would be read "
            "as nearly black): e.g. `(images * 255).round().astype(np.uint8)`."
        )
    arrays = arrays[..., None] if arrays.ndim == 3 else arrays
    return torch.from_numpy(np.ascontiguousarray(arrays)).permute(0, 3, 1, 2).float() / 255


def compute_metrics(
    images: torch.Tensor,
    reference: torch.Tensor | FeatureStatistics,
    extractor: nn.Module,
    inception_score_splits: int | None = 10,
    precision_recall_k: int | None = 3,
    batch_size: int = 256,
    reference_features: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """
    FID (the Frechet distance in the extractor's features) against `reference` (images in `[0, 1]`, or precomputed
    statistics), and, when possible, the Inception Score (the extractor needs `class_probabilities`) and improved
    precision / recall (needs reference images, or their `reference_features` extracted beforehand, which then
    replace `reference`'s extraction).

    Returns:
        `dict` with the Frechet distance under the extractor's `metric_name` (`fid` when it has none; `fd_dinov2`,
        `fd_clip` for [`DINOv2Features`], [`CLIPFeatures`]), and `inception_score`, `inception_score_std` (under
        the extractor's `score_name` when it has one: `digits_classifier_score` for [`DigitsClassifier`]),
        `precision`, `recall` when computed.
    """
    features = extract_features(extractor, images, batch_size, device=device)
    if reference_features is not None:
        reference_stats = FeatureStatistics.from_features(reference_features)
    elif isinstance(reference, FeatureStatistics):
        reference_stats = reference
    else:
        reference_features = extract_features(extractor, reference, batch_size, device=device)
        reference_stats = FeatureStatistics.from_features(reference_features)
    distance = frechet_distance(FeatureStatistics.from_features(features), reference_stats)
    results = {getattr(extractor, "metric_name", "fid"): distance}
    if inception_score_splits and hasattr(extractor, "class_probabilities"):
        probs = extract_features(extractor, images, batch_size, probabilities=True, device=device)
        name = getattr(extractor, "score_name", "inception_score")  # the IS formula on another classifier's classes
        results[name], results[f"{name}_std"] = inception_score(probs, inception_score_splits)
    if precision_recall_k and reference_features is not None:
        results["precision"], results["recall"] = precision_recall(
            reference_features.to(features), features, precision_recall_k
        )
    return results
