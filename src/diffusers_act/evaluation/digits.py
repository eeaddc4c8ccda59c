# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""A classifier of scikit-learn's bundled 8x8 handwritten digits whose features give a digits-specific FID (Inception
features mean little on 8x8 grey digits); it works at any resolution the digits are resized to, 8x8 (their own) for the
digits preset. The digits themselves come from `diffusers_act.sklearn_digits`."""

import functools
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn

from ..sklearn_digits import DIGITS_TRAIN_SIZE, digits_pil_images, digits_tensors  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)


class DigitsClassifier(nn.Module):
    """A small CNN for digit images in `[0, 1]`: 64-d features (`forward`) and class probabilities."""

    score_name = "digits_classifier_score"  # the Inception Score's formula on this classifier's ten classes

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(64, 10)
        self.num_features = 64

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images * 2 - 1)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self(images))

    def class_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).softmax(dim=1)


CLASSIFIER_VERSION = 1  # raise when the classifier or its training changes, so that cached weights are not reused


def _cache_dir() -> Path:
    return Path(os.environ.get("DIFFUSERS_ACT_CACHE", Path.home() / ".cache" / "diffusers_act"))


@functools.lru_cache(maxsize=4)
def train_digits_classifier(
    resolution: int = 16, seed: int = 0, epochs: int = 80, batch_size: int = 64, cache: bool = True
) -> tuple[DigitsClassifier, float]:
    """
    Trains a [`DigitsClassifier`] on the training split (random 1-pixel shifts as augmentation) with a fixed seed,
    without touching the global random state. Returns the model (frozen, in eval mode) and its held-out test
    accuracy. Training takes about 25 s on 2 CPU cores, so the result is cached: in memory, and on disk as
    safetensors in `$DIFFUSERS_ACT_CACHE` (default `~/.cache/diffusers_act`) unless `cache=False`.
    """
    train_x, train_y = digits_tensors(resolution, "train")
    test_x, test_y = digits_tensors(resolution, "test")
    path = _cache_dir() / f"digits_classifier_v{CLASSIFIER_VERSION}_r{resolution}_s{seed}_e{epochs}_b{batch_size}"
    cached = path.with_suffix(".safetensors")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsClassifier()
        if cache and cached.is_file():
            load_model(model, cached)
        else:
            logger.info(
                f"Training the digits classifier for the digits FID ({epochs} epochs, about 25 s on 2 CPU cores; "
                + (f"cached in {cached.parent})" if cache else "not cached)")
            )
            optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
            for _ in range(epochs):
                for idx in torch.randperm(len(train_x)).split(batch_size):
                    shift = torch.randint(-1, 2, (2,)).tolist()
                    x = torch.roll(train_x[idx], shifts=shift, dims=(2, 3))
                    loss = F.cross_entropy(model.logits(x), train_y[idx])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
    if cache and not cached.is_file():
        try:  # written to a temporary name and renamed, so concurrent runs never read half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            save_model(model, str(partial))
            os.replace(partial, cached)
        except OSError:  # a read-only home: no cache, same model
            pass
    model.eval().requires_grad_(False)
    with torch.no_grad():
        accuracy = (model.logits(test_x).argmax(1) == test_y).float().mean().item()
    return model, accuracy


@torch.no_grad()
def label_metrics(classifier: DigitsClassifier, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """
    What the classifier sees in generated digits. `label_coverage`: the effective number of predicted classes
    (exp of the entropy of the predicted-label histogram) over 10; 1.0 when every digit is equally frequent, 0.1 for
    a single digit (mode collapse). `class_accuracy` (with the conditioning `labels`): the share of samples
    classified as the digit they were asked for.
    """
    predicted = torch.cat([classifier.logits(chunk.float()).argmax(1) for chunk in images.split(512)])
    share = torch.bincount(predicted, minlength=10).double() / len(predicted)
    entropy = -(share[share > 0] * share[share > 0].log()).sum()
    results = {"label_coverage": entropy.exp().item() / 10}
    if labels is not None:
        results["class_accuracy"] = (predicted == labels.to(predicted.device)).double().mean().item()
    return results
