# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
from .act import (
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
from .remote_code import register_with_diffusers

PIPELINES = (
    ACTPipeline, ACTColorizationPipeline, ACTDenoisingPipeline, ACTImg2ImgPipeline, ACTInterpolationPipeline,
    ACTSuperResolutionPipeline,
)  # fmt: skip
register_with_diffusers({cls.__name__: cls for cls in PIPELINES})

__all__ = [
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
]
