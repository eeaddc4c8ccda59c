# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""diffusers-act: Adversarial Consistency Training (ACT) for Hugging Face diffusers."""

__version__ = "0.1.0.dev0"

from .models import ACTDiscriminator
from .pipelines import (  # zero-shot editing (docs/editing.md)
    ACTColorizationPipeline,
    ACTDenoisingPipeline,
    ACTImg2ImgPipeline,
    ACTInterpolationPipeline,
    ACTPipeline,
    ACTSuperResolutionPipeline,
    BlockAverageTransform,
    IdentityTransform,
    KnownCoordinates,
    LuminanceTransform,
    OrthogonalTransform,
    replace_known,
    slerp,
    strength_to_sigma,
)
from .presets import UNET_PRESETS, unet_from_preset
from .schedulers import ConsistencyACTScheduler, ConsistencyACTSchedulerOutput

__all__ = [
    "ACTDiscriminator",
    "ACTPipeline",
    "ACTColorizationPipeline",
    "ACTDenoisingPipeline",
    "ACTImg2ImgPipeline",
    "ACTInterpolationPipeline",
    "ACTSuperResolutionPipeline",
    "BlockAverageTransform",
    "IdentityTransform",
    "KnownCoordinates",
    "LuminanceTransform",
    "OrthogonalTransform",
    "replace_known",
    "slerp",
    "strength_to_sigma",
    "ConsistencyACTScheduler",
    "ConsistencyACTSchedulerOutput",
    "UNET_PRESETS",
    "unet_from_preset",
]
