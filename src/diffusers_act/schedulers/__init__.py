# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
from .scheduling_consistency_act import ConsistencyACTScheduler, ConsistencyACTSchedulerOutput

__all__ = ["ConsistencyACTScheduler", "ConsistencyACTSchedulerOutput"]
