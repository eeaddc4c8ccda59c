# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
from .discriminator import ACTDiscriminator

__all__ = ["ACTDiscriminator"]
