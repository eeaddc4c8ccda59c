# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Feature extractors for the metrics, and batched feature extraction.

An extractor is any `torch.nn.Module` that maps images in `[0, 1]` of shape `(B, C, H, W)` to features `(B, D)`.
If it also has a `class_probabilities(images)` method, the Inception Score can be computed with it; a `metric_name`
attribute names its Frechet distance in the results (`"fid"` when absent).
"""

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

# ImageNet's channel statistics (DINOv2, EDM2's FD_DINOv2) and CLIP's (OpenAI's CLIP preprocessing)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


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
                "Inception features need torch-fidelity: `pip install -e '.[metrics]'` in a clone of diffusers-act "
                "(it pulls torchvision), or pass your own feature extractor module."
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


class TransformersImageFeatures(nn.Module):
    """
    Features of a `transformers` vision model for Frechet distances: what [`DINOv2Features`] and [`CLIPFeatures`]
    share. Images in `[0, 1]` (any size; grey ones are repeated to 3 channels) are rounded to 8 bits, as saved
    samples are, resized to `image_size` x `image_size` as a whole (bicubic, antialiased; no crop, unlike the
    model's default `transformers` image processor, which crops the centre of the shorter side), normalised with
    `image_mean` / `image_std`, and passed through the network. Features are returned as float64.

    Args:
        model_name_or_path (`str`, *optional*):
            A Hub id or a local folder saved with `save_pretrained`; the class's `default_model` when not given.
            Loaded with `from_pretrained` when the extractor is built (the Hub is reached only then).
    """

    default_model: str
    metric_name: str
    image_size: int = 224
    resample: str = "bicubic"  # `torch.nn.functional.interpolate` mode, with antialiasing
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    flag: str  # the --feature_extractor / --fid_feature_extractor value that selects it, for error messages

    def __init__(self, model_name_or_path: str | None = None):
        super().__init__()
        self.model_name_or_path = model_name_or_path or self.default_model
        try:
            self.model = self._model_class().from_pretrained(self.model_name_or_path)
        except OSError as error:  # no such folder or repo, or the Hub unreachable and the model not cached
            raise OSError(
                f"Could not load {self.model_name_or_path!r} for the {self.flag} feature extractor. Download it once "
                f"with internet (`hf download {self.model_name_or_path}`; it is then read from the Hugging Face "
                "cache, also with HF_HUB_OFFLINE=1), or pass a local folder of the model (saved with "
                "`save_pretrained`) as `--feature_extractor_model` of scripts/evaluate.py or `model_name_or_path`. "
                f"The error was: {error}"
            ) from error
        self.model.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(self.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.image_std).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _model_class():
        raise NotImplementedError

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """The network's `pixel_values` for images in `[0, 1]` of shape `(B, 1 or 3, H, W)`."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"Need images of shape (B, 1 or 3, H, W), got {tuple(images.shape)}.")
        x = (images.float().clamp(0, 1) * 255).round() / 255
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        size = (self.image_size, self.image_size)
        x = F.interpolate(x, size=size, mode=self.resample, align_corners=False, antialias=True)
        return ((x - self.mean) / self.std).to(next(self.model.parameters()).dtype)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The features of preprocessed images."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.preprocess(images)).double()


class DINOv2Features(TransformersImageFeatures):
    """
    FD_DINOv2 features (Stein et al. 2023, "Exposing flaws of generative model evaluation metrics"; reported by
    EDM2, Karras et al. 2024): the class token of DINOv2 ViT-L/14 (`facebook/dinov2-large`, 1024-d, after the final
    layer norm: `Dinov2Model(...).pooler_output`) on images resized to 224x224 (bicubic, antialiased, no crop) and
    normalised with ImageNet's mean and standard deviation, as EDM2's `calculate_metrics.py` does. See
    [`TransformersImageFeatures`] for the arguments.
    """

    default_model = "facebook/dinov2-large"
    metric_name = "fd_dinov2"
    image_mean, image_std = IMAGENET_MEAN, IMAGENET_STD
    flag = "dinov2"

    def __init__(self, model_name_or_path: str | None = None):
        super().__init__(model_name_or_path)
        self.num_features = self.model.config.hidden_size

    @staticmethod
    def _model_class():
        from transformers import Dinov2Model

        return Dinov2Model

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).pooler_output


class CLIPFeatures(TransformersImageFeatures):
    """
    CLIP-feature Frechet distance (`fd_clip`; "FID_CLIP" of Kynkaanniemi et al. 2023, "The role of ImageNet classes
    in Frechet Inception Distance"): the image embedding of CLIP ViT-L/14 (`openai/clip-vit-large-patch14`, 768-d,
    the projected pooled output: `CLIPVisionModelWithProjection(...).image_embeds`, what OpenAI's `encode_image`
    returns, not L2-normalised) on images resized to 224x224 (bicubic, antialiased, no crop) and normalised with
    CLIP's own mean and standard deviation. See [`TransformersImageFeatures`] for the arguments.
    """

    default_model = "openai/clip-vit-large-patch14"
    metric_name = "fd_clip"
    image_mean, image_std = CLIP_MEAN, CLIP_STD
    flag = "clip"

    def __init__(self, model_name_or_path: str | None = None):
        super().__init__(model_name_or_path)
        self.num_features = self.model.config.projection_dim

    @staticmethod
    def _model_class():
        from transformers import CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).image_embeds


# --feature_extractor / --fid_feature_extractor names of the transformers extractors
TRANSFORMERS_FEATURE_EXTRACTORS = {"dinov2": DINOv2Features, "clip": CLIPFeatures}


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
    Features (or, with `probabilities=True`, class probabilities) of `images` in `[0, 1]`, computed in batches:
    float32, or float64 where the extractor returns float64.

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
        outputs.append(out.cpu() if out.dtype == torch.float64 else out.float().cpu())
    return torch.cat(outputs)
