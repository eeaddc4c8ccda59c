# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""What an ACT run trains besides the generator, built one way: the target copy, the discriminator, the evaluation
EMA, two RAdam optimizers with their learning-rate schedules (all prepared with accelerate) and the scheduler of the
final grid. [`ACTTrainer.build`] calls it."""

import copy

import torch
from accelerate import Accelerator
from diffusers import UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch import nn

from ..models.discriminator import ACTDiscriminator
from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler
from .config import ACTConfig


def build_training_parts(
    unet: UNet2DModel, config: ACTConfig, accelerator: Accelerator, discriminator: nn.Module | None = None
) -> dict:
    """[`ACTTrainer`]'s keyword arguments but `config` and `accelerator`, for `unet` (see [`ACTTrainer.build`])."""
    target = copy.deepcopy(unet).requires_grad_(False)
    if config.adversarial and discriminator is None:
        structure = {"head_type": config.discriminator_head, "final_norm": config.discriminator_final_norm}
        if config.discriminator_block_out_channels:
            structure["block_out_channels"] = config.discriminator_block_out_channels
        discriminator = ACTDiscriminator.from_unet_config(unet.config, **structure)
    ema = None
    if config.use_ema:  # min_decay = decay turns off diffusers' (1 + k) / (10 + k) ramp
        min_decay = config.ema_decay if config.ema_warmup == "constant" else 0.0
        ema = EMAModel(
            unet.parameters(), decay=config.ema_decay, min_decay=min_decay, model_cls=UNet2DModel,
            model_config=unet.config, foreach=True,
        )  # fmt: skip
    betas, decay = (config.adam_beta1, config.adam_beta2), config.adam_weight_decay
    # accelerate steps a prepared schedule once per process, hence the counts times num_processes
    schedule = {
        "num_warmup_steps": config.lr_warmup_steps * accelerator.num_processes,
        "num_training_steps": config.total_steps * accelerator.num_processes,
    }
    eps = config.adam_epsilon
    optimizer = torch.optim.RAdam(unet.parameters(), lr=config.learning_rate, betas=betas, eps=eps, weight_decay=decay)
    objects = [unet, optimizer, get_scheduler(config.lr_scheduler, optimizer, **schedule)]
    if config.adversarial:
        d_betas = (config.discr_adam_beta1, config.discr_adam_beta2)
        d_optimizer = torch.optim.RAdam(
            discriminator.parameters(), lr=config.discr_learning_rate, betas=d_betas, eps=eps, weight_decay=decay
        )
        objects += [discriminator, d_optimizer, get_scheduler(config.lr_scheduler, d_optimizer, **schedule)]
    prepared = accelerator.prepare(*objects)
    unet, optimizer, schedulers = prepared[0], prepared[1], prepared[2::3]
    discriminator, d_optimizer = (prepared[3], prepared[4]) if config.adversarial else (None, None)
    target.to(accelerator.device)
    if ema is not None:
        ema.to(accelerator.device)
    scheduler = ConsistencyACTScheduler(
        num_train_timesteps=config.final_num_timesteps,
        sigma_min=config.sigma_min,
        sigma_max=config.sigma_max,
        sigma_data=config.sigma_data,
        rho=config.rho,
        noise_conditioning=config.noise_conditioning,
    )
    return dict(
        unet=unet, target_unet=target, scheduler=scheduler, optimizer=optimizer, discriminator=discriminator,
        discriminator_optimizer=d_optimizer, lr_schedulers=schedulers, ema=ema,
    )  # fmt: skip
