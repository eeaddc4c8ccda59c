#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Measure sample quality: FID, Inception Score and improved precision/recall of a pipeline or a set of images.

    # 50k one-step samples of a saved pipeline against CIFAR-10's training set (Inception: the metrics extra)
    python scripts/evaluate.py --pipeline your-name/act-cifar10 --reference cifar10 --reference_column img

    # ImageNet 64 against the guided-diffusion reference batch (its precomputed mu / sigma)
    python scripts/evaluate.py --pipeline act-imagenet64 --reference VIRTUAL_imagenet64_labeled.npz

    # images you already have, digits-classifier features, offline
    python scripts/evaluate.py --samples samples.npz --reference digits --feature_extractor digits

    # FD_DINOv2 as EDM2 reports it (DINOv2 ViT-L/14, from the Hub on first use); `clip` for CLIP features
    python scripts/evaluate.py --samples samples.npz --reference reference.npz --feature_extractor dinov2

Results are printed and written as JSON (`--output`); the Frechet distance is `fid` for Inception and the digits
classifier, `fd_dinov2` and `fd_clip` for the dinov2 and clip extractors.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from diffusers_act import ACTPipeline
from diffusers_act.evaluation import (
    TRANSFORMERS_FEATURE_EXTRACTORS,
    FeatureStatistics,
    InceptionV3Features,
    compute_metrics,
    digits_tensors,
    extract_features,
    generate_samples,
    label_metrics,
    load_images,
    train_digits_classifier,
)
from diffusers_act.training.config import run_command_line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pipeline", help="a saved ACTPipeline: local folder or Hub id")
    source.add_argument("--samples", help="a folder of images or an .npz with arr_0 (N, H, W, C) uint8")
    p.add_argument("--num_samples", type=int, default=50_000)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--num_inference_steps", type=int, default=1)
    p.add_argument("--class_labels", choices=["balanced", "random"], default="balanced")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save_samples", help="write the generated samples to this .npz (arr_0, uint8 NHWC)")
    p.add_argument(
        "--reference",
        required=True,
        help="'digits', a folder of images, an .npz of images (arr_0) or of statistics (mu, sigma), or a datasets "
        "Hub dataset name",
    )
    p.add_argument("--reference_split", default="train")
    p.add_argument("--reference_column", default="image")
    p.add_argument("--save_reference_stats", help="write the reference's feature statistics to this .npz")
    p.add_argument(
        "--feature_extractor",
        choices=["inception", "digits", *TRANSFORMERS_FEATURE_EXTRACTORS],
        default="inception",
        help="inception (FID; the metrics extra), digits (a digits classifier), dinov2 (FD_DINOv2, "
        "facebook/dinov2-large) or clip (fd_clip, openai/clip-vit-large-patch14); default inception",
    )
    p.add_argument(
        "--feature_extractor_model",
        help="for dinov2 / clip: another Hub id or a local folder of the model (saved with save_pretrained) instead "
        "of the default one",
    )
    p.add_argument("--inception_weights", help="a local Inception weights file (no download)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--output", default="metrics.json")
    return p.parse_args(argv)


def load_reference(args, resolution: int) -> torch.Tensor | FeatureStatistics:
    spec = args.reference
    if spec == "digits":
        return digits_tensors(resolution, "train")[0]
    path = Path(spec)
    if path.suffix == ".npz" and not path.is_file():
        raise ValueError(f"--reference {spec}: no such file.")
    if path.suffix == ".npz":
        with np.load(path) as data:
            has_stats = "mu" in data.files and "sigma" in data.files
        return FeatureStatistics.load(path) if has_stats else load_images(path)
    if path.is_dir():
        return load_images(path)
    import datasets

    try:
        dataset = datasets.load_dataset(spec, split=args.reference_split)
    except Exception as error:
        raise ValueError(
            f"--reference {spec!r} is not 'digits', an .npz, a folder, or a loadable dataset ({error})."
        ) from error
    if args.reference_column not in dataset.column_names:
        raise ValueError(f"--reference_column {args.reference_column!r} is not in {dataset.column_names}.")
    arrays = np.stack([np.asarray(im) for im in dataset[args.reference_column]])
    arrays = arrays[..., None] if arrays.ndim == 3 else arrays
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255


def check_inputs(
    args, shape: tuple[int, int, int], reference: torch.Tensor | FeatureStatistics, num_features: int | None = None
) -> None:
    """Everything that would make the numbers wrong, checked before any sampling or classifier training: `shape`
    is (channels, height, width) of the samples, `num_features` the size of the extractor's features where it is
    already loaded (dinov2, clip)."""
    channels, height, width = shape
    if isinstance(reference, FeatureStatistics):
        if not (np.isfinite(reference.mu).all() and np.isfinite(reference.sigma).all()):
            raise ValueError(f"--reference {args.reference}: its mu or sigma holds NaN or infinite values.")
        expected = num_features or (64 if args.feature_extractor == "digits" else 2048)
        if reference.mu.shape[-1] != expected:
            raise ValueError(
                f"--reference {args.reference} holds statistics of {reference.mu.shape[-1]}-d features, but "
                f"--feature_extractor {args.feature_extractor} makes {expected}-d ones."
            )
    elif tuple(reference.shape[-2:]) != (height, width):
        raise ValueError(
            f"The samples are {height}x{width} but --reference {args.reference} holds "
            f"{reference.shape[-2]}x{reference.shape[-1]} images; FID needs the same size."
        )
    if args.feature_extractor == "digits" and channels != 1:
        raise ValueError(f"--feature_extractor digits takes grey images; the samples have {channels} channels.")
    if args.feature_extractor in TRANSFORMERS_FEATURE_EXTRACTORS and channels not in (1, 3):
        raise ValueError(
            f"--feature_extractor {args.feature_extractor} takes grey or RGB images, not {channels} channels."
        )
    if args.feature_extractor_model and args.feature_extractor not in TRANSFORMERS_FEATURE_EXTRACTORS:
        raise ValueError(
            f"--feature_extractor_model is for --feature_extractor {' or '.join(TRANSFORMERS_FEATURE_EXTRACTORS)}, "
            f"not {args.feature_extractor}."
        )


def digit_labels(pipe: ACTPipeline, labels: torch.Tensor | None) -> torch.Tensor | None:
    """The digit each class id asks for, by the pipeline's class names (`id2label`) when it has them: the digits
    classifier's `class_accuracy` compares digits, not ids. None (no `class_accuracy`) when a name is not a digit."""
    names = pipe.config.get("id2label") or {}
    if labels is None or not names:
        return labels
    digits = {int(i): int(name) for i, name in names.items() if str(name).isdigit() and int(name) < 10}
    if len(digits) < len(names):
        print("class_accuracy not measured: the pipeline's class names are not the digits 0-9.", file=sys.stderr)
        return None
    return torch.tensor([digits[int(label)] for label in labels])


def main(argv=None) -> dict:
    args = parse_args(argv)
    labels = images = None
    if args.pipeline:
        pipe = ACTPipeline.from_pretrained(args.pipeline).to(args.device)
        shape = pipe.image_shape
    else:
        images = load_images(args.samples)
        shape = tuple(images.shape[1:])
    reference = load_reference(args, shape[-1])
    extractor = None
    if args.feature_extractor in TRANSFORMERS_FEATURE_EXTRACTORS:  # loaded first: its feature size is checked
        extractor = TRANSFORMERS_FEATURE_EXTRACTORS[args.feature_extractor](args.feature_extractor_model)
    check_inputs(args, shape, reference, extractor.num_features if extractor else None)
    # the extractor before any sampling: a missing package or weights file stops the run before the long part
    if args.feature_extractor == "digits":
        extractor, accuracy = train_digits_classifier(shape[-1], seed=0)
        print(f"digits classifier: {accuracy:.1%} held-out accuracy", file=sys.stderr)
    elif args.feature_extractor == "inception":
        extractor = InceptionV3Features(args.inception_weights)
    if args.pipeline:
        images, labels = generate_samples(
            pipe, args.num_samples, args.batch_size, args.num_inference_steps, args.class_labels, args.seed
        )
        labels = digit_labels(pipe, labels) if args.feature_extractor == "digits" else labels
        if args.save_samples:
            np.savez(args.save_samples, arr_0=(images * 255).round().byte().permute(0, 2, 3, 1).numpy())
    extractor.to(args.device)

    if args.save_reference_stats:
        stats = reference if isinstance(reference, FeatureStatistics) else None
        stats = stats or FeatureStatistics.from_features(extract_features(extractor, reference, args.batch_size))
        stats.save(args.save_reference_stats)
    results = compute_metrics(images, reference, extractor, batch_size=args.batch_size)
    if args.feature_extractor == "digits":
        results.update(label_metrics(extractor, images.to(args.device), labels))
    results = {
        "num_samples": len(images),
        "num_inference_steps": args.num_inference_steps if args.pipeline else None,
        "feature_extractor": args.feature_extractor,
        **(
            {"feature_extractor_model": extractor.model_name_or_path}
            if hasattr(extractor, "model_name_or_path")
            else {}
        ),
        "source": args.pipeline or args.samples,
        "reference": args.reference,
        **results,
    }
    print(json.dumps(results, indent=2))
    Path(args.output).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    run_command_line(main)
