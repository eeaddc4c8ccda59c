# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Sample-quality evaluation: FID, FD_DINOv2, Inception Score, improved precision/recall, on any feature extractor."""

from .digits import (
    DIGITS_TRAIN_SIZE,
    DigitsClassifier,
    digits_pil_images,
    digits_tensors,
    label_metrics,
    train_digits_classifier,
)
from .evaluate import compute_metrics, generate_samples, load_images
from .features import (
    TRANSFORMERS_FEATURE_EXTRACTORS,
    CLIPFeatures,
    DINOv2Features,
    InceptionV3Features,
    TransformersImageFeatures,
    extract_features,
)
from .metrics import FeatureStatistics, frechet_distance, inception_score, precision_recall

__all__ = [
    "CLIPFeatures",
    "DIGITS_TRAIN_SIZE",
    "DINOv2Features",
    "DigitsClassifier",
    "FeatureStatistics",
    "InceptionV3Features",
    "TRANSFORMERS_FEATURE_EXTRACTORS",
    "TransformersImageFeatures",
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
