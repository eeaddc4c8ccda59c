"""The pieces of ACT training: curricula, losses, augmentation and one training-step object."""

from .augmentation import AugmentController, DifferentiableAugment
from .curricula import (
    adversarial_weight,
    consistency_loss_weight,
    expected_consistency_loss_weight,
    lognormal_index_probabilities,
    num_timesteps,
    sample_timestep_indices,
    target_ema_decay,
)
from .losses import (
    L2Distance,
    LPIPSDistance,
    PseudoHuberDistance,
    default_huber_c,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    make_distance,
    r1_penalty,
)
from .trainer import ACTConfig, ACTTrainer, consistency_function

__all__ = [
    "ACTConfig",
    "ACTTrainer",
    "AugmentController",
    "DifferentiableAugment",
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
