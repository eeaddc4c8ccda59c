# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Sample-quality evaluation: FID, Inception Score, improved precision/recall, on any feature extractor."""

from .digits import (
    DIGITS_TRAIN_SIZE,
    DigitsClassifier,
    digits_pil_images,
    digits_tensors,
    label_metrics,
    train_digits_classifier,
)
from .evaluate import compute_metrics, generate_samples, load_images
from .features import InceptionV3Features, extract_features
from .metrics import FeatureStatistics, frechet_distance, inception_score, precision_recall

__all__ = [
    "DIGITS_TRAIN_SIZE",
    "DigitsClassifier",
    "FeatureStatistics",
    "InceptionV3Features",
    "compute_metrics",
    "digits_pil_images",
    "digits_tensors",
    "extract_features",
    "frechet_distance",
    "generate_samples",
    "inception_score",
    "label_metrics",
    "load_images",
    "precision_recall",
    "train_digits_classifier",
]
