# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Feature extractors for the metrics, and batched feature extraction.

An extractor is any `torch.nn.Module` that maps images in `[0, 1]` of shape `(B, C, H, W)` to features `(B, D)`.
If it also has a `class_probabilities(images)` method, the Inception Score can be computed with it.
"""

import torch
from torch import nn
from tqdm.auto import tqdm


class InceptionV3Features(nn.Module):
    """
    The Inception-v3 of FID (TensorFlow-compatible weights, via torch-fidelity; the `metrics` extra): 2048-d pool
    features, and class probabilities for the Inception Score. Grey images are repeated to 3 channels; resizing to
    299x299 happens inside the network, as in the reference implementation.

    Args:
        weights_path (`str`, *optional*):
            A local copy of the weights file (`weights-inception-2015-12-05-6726825d.pth`), for machines without
            internet; downloaded on first use otherwise.
    """

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as error:
            raise ImportError(
                "Inception features need torch-fidelity: `pip install diffusers-act[metrics]` (it pulls "
                "torchvision), or pass your own feature extractor module."
            ) from error
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=weights_path
        ).eval()
        self.num_features = 2048

    def _run(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return self.net((images.clamp(0, 1) * 255).round().to(torch.uint8))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images)[0]

    def class_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images)[1].softmax(dim=1)


@torch.no_grad()
def extract_features(
    extractor: nn.Module,
    images: torch.Tensor,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    probabilities: bool = False,
    progress: bool = False,
) -> torch.Tensor:
    """
    Features (or, with `probabilities=True`, class probabilities) of `images` in `[0, 1]`, computed in batches.

    Args:
        extractor (`nn.Module`): A feature extractor (see the module docstring).
        images (`torch.Tensor`): Shape `(N, C, H, W)`, values in `[0, 1]` (uint8 images are divided by 255).
        batch_size (`int`), device: How to run it.
    """
    if probabilities and not hasattr(extractor, "class_probabilities"):
        raise ValueError(f"{type(extractor).__name__} has no `class_probabilities`, needed for the Inception Score.")
    device = device or next(extractor.parameters(), torch.empty(0)).device
    outputs = []
    for chunk in tqdm(images.split(batch_size), disable=not progress, desc="features"):
        chunk = chunk.to(device)
        chunk = chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk.float()
        out = extractor.class_probabilities(chunk) if probabilities else extractor(chunk)
        outputs.append(out.float().cpu())
    return torch.cat(outputs)
