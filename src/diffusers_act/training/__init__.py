# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""What the training script composes: the config (the one source of defaults), curricula, losses, augmentation, the
trainer and its builder, data, checkpoints, monitoring and the Hub."""

from ..sklearn_digits import digits_dataset, digits_tensors
from .augmentation import AugmentController, DifferentiableAugment
from .batches import DeviceBatches, make_dataloader, resumable_batches
from .checkpoints import CheckpointManager, complete_checkpoints
from .config import IMPROVED_RECIPE, PRESETS, ACTConfig, RunConfig, build_parser, parse_args, resolve_configs
from .curricula import (
    adversarial_weight,
    consistency_loss_weight,
    expected_consistency_loss_weight,
    lognormal_index_probabilities,
    num_timesteps,
    sample_timestep_indices,
    target_ema_decay,
)
from .data import TrainingData, load_training_dataset, make_transform
from .hub import push_to_hub, write_model_card
from .losses import (
    CauchyDistance,
    L2Distance,
    LPIPSDistance,
    PseudoHuberDistance,
    default_huber_c,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    make_distance,
    r1_penalty,
)
from .monitoring import JsonlLog, LogWindow, SampleEvaluator, log_image, process_fingerprints, sample_grid
from .trainer import ACTTrainer, consistency_function

__all__ = [
    "ACTConfig",
    "ACTTrainer",
    "AugmentController",
    "CheckpointManager",
    "DeviceBatches",
    "DifferentiableAugment",
    "IMPROVED_RECIPE",
    "JsonlLog",
    "LogWindow",
    "PRESETS",
    "RunConfig",
    "SampleEvaluator",
    "TrainingData",
    "build_parser",
    "complete_checkpoints",
    "digits_dataset",
    "digits_tensors",
    "load_training_dataset",
    "log_image",
    "make_dataloader",
    "make_transform",
    "parse_args",
    "process_fingerprints",
    "push_to_hub",
    "resolve_configs",
    "resumable_batches",
    "sample_grid",
    "write_model_card",
    "CauchyDistance",
    "L2Distance",
    "LPIPSDistance",
    "PseudoHuberDistance",
    "adversarial_weight",
    "consistency_function",
    "consistency_loss_weight",
    "default_huber_c",
    "expected_consistency_loss_weight",
    "discriminator_adversarial_loss",
    "generator_adversarial_loss",
    "lognormal_index_probabilities",
    "make_distance",
    "num_timesteps",
    "r1_penalty",
    "sample_timestep_indices",
    "target_ema_decay",
]
