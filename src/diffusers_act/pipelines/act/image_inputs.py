# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Checks of the images given to ACT's pipelines (inpainting and editing inputs): how many there are and whether
they hold pixels in `[0, 1]`."""

import numpy as np
import PIL.Image
import torch

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | list


def count_images(images: "ImageInput | None") -> int:
    """How many images `images` holds (a list, or a batch array / tensor); 1 for None or a single image."""
    if isinstance(images, list):
        return sum(map(count_images, images))
    return images.shape[0] if getattr(images, "ndim", 0) == 4 else 1


def check_image_values(name: str, value: "ImageInput | None") -> None:
    """Images must hold pixels; arrays and tensors given as images must be finite and in `[0, 1]` (PIL images always
    are)."""
    if isinstance(value, list) and not value:
        raise ValueError(f"`{name}` is an empty list; pass an image (PIL, array or tensor) or a list of them.")
    for item in value if isinstance(value, list) else [value]:
        shape = item.size if isinstance(item, PIL.Image.Image) else getattr(item, "shape", None)
        if shape is not None and 0 in tuple(shape):
            raise ValueError(f"`{name}` is empty (size {tuple(shape)}); pass an image with pixels.")
        if item is None or isinstance(item, PIL.Image.Image):
            continue
        if not isinstance(item, (np.ndarray, torch.Tensor)):
            raise ValueError(f"`{name}` must be a PIL image, an array or a tensor (or a list of them), got {item!r}.")
        tensor = torch.as_tensor(np.asarray(item) if isinstance(item, np.ndarray) else item).float()
        if not torch.isfinite(tensor).all():
            raise ValueError(f"`{name}` holds NaN or infinite values.")
        low, high = tensor.min().item(), tensor.max().item()
        if low < 0 or high > 1:
            raise ValueError(
                f"`{name}` values must lie in [0, 1], got [{low:g}, {high:g}]. Divide uint8 images by 255, map "
                "[-1, 1] images with `x / 2 + 0.5`, or pass PIL images."
            )
