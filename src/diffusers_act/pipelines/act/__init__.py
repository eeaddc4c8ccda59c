# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
from .pipeline_act import ACTPipeline

__all__ = ["ACTPipeline"]
