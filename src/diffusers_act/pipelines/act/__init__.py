# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
from .editing import (
    BlockAverageTransform,
    IdentityTransform,
    KnownCoordinates,
    LuminanceTransform,
    OrthogonalTransform,
    replace_known,
    slerp,
    strength_to_sigma,
)
from .pipeline_act import ACTPipeline
from .pipeline_act_colorization import ACTColorizationPipeline
from .pipeline_act_denoising import ACTDenoisingPipeline
from .pipeline_act_img2img import ACTImg2ImgPipeline
from .pipeline_act_interpolation import ACTInterpolationPipeline
from .pipeline_act_super_resolution import ACTSuperResolutionPipeline

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
