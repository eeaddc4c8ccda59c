# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""scikit-learn's bundled 8x8 handwritten digits (1,797 grey images, 10 classes): the quickstart's training data and
the reference set of the digits evaluation, as PIL images, tensors or a `datasets.Dataset`, with a fixed split."""

from typing import TYPE_CHECKING

import numpy as np
import PIL.Image
import torch

if TYPE_CHECKING:
    import datasets

DIGITS_TRAIN_SIZE = 1347  # the first 1,347 of scikit-learn's 1,797 digits; the last 450 are held out


def digits_pil_images() -> tuple[list[PIL.Image.Image], list[int]]:
    """The 1,797 digits as 8x8 grey PIL images (0-16 scaled to 0-255) and their labels, in scikit-learn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [PIL.Image.fromarray((img * 255 / 16).round().astype(np.uint8), mode="L") for img in digits.images]
    return images, digits.target.tolist()


def digits_tensors(resolution: int = 16, split: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
    """
    The digits resized (bicubic, as the training data is) to `resolution`, in `[0, 1]`, shape `(N, 1, R, R)`, with
    labels. `split`: `"train"` (first 1,347), `"test"` (last 450) or `"all"`.
    """
    images, labels = digits_pil_images()
    selection = {"train": slice(0, DIGITS_TRAIN_SIZE), "test": slice(DIGITS_TRAIN_SIZE, None), "all": slice(None)}
    if split not in selection:
        raise ValueError(f"`split` must be 'train', 'test' or 'all', got {split!r}.")
    images, labels = images[selection[split]], labels[selection[split]]
    arrays = [np.asarray(im.resize((resolution, resolution), PIL.Image.BICUBIC), np.float32) for im in images]
    return torch.from_numpy(np.stack(arrays))[:, None] / 255, torch.tensor(labels)


def digits_dataset() -> "datasets.Dataset":
    """The digits as a `datasets.Dataset` with an `image` and a `label` column (1,797 images, 10 classes)."""
    import datasets

    images, labels = digits_pil_images()
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in range(10)])}
    )
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
