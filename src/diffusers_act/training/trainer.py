# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""One ACT training iteration (Algorithms 1 and 2 of ACT, arXiv 2311.14097; docs/training.md) under accelerate, and
the one way to build the models and optimizers it needs."""

import copy
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import UNet2DModel
from diffusers.training_utils import EMAModel
from torch import nn
from torch.profiler import record_function

from ..models.discriminator import double_backward_attention
from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler
from .augmentation import AugmentController, DifferentiableAugment, ada_rate
from .builder import build_training_parts
from .config import ACTConfig, check_even_batch
from .coupling import draw_indices_and_noise
from .curricula import (
    Grid,
    adversarial_weight,
    consistency_loss_weight,
    num_timesteps,
    target_ema_decay,
    training_grid,
)
from .losses import discriminator_adversarial_loss, generator_adversarial_loss, make_distance, masked_mean, r1_penalty
from .state import load_trainer_state, load_trainer_state_dict, save_trainer_state, trainer_state_dict

LOSS_TERMS = ("consistency", "adversarial", "diffusion")  # the terms of [`ACTTrainer.generator_loss`] that sum to L_f


def consistency_function(
    model: nn.Module,
    scheduler: ConsistencyACTScheduler,
    noisy: torch.Tensor,
    sigma: torch.Tensor,
    class_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """`f_theta(x_t, t)`: the UNet wrapped in the scheduler's preconditioning (the same code sampling uses)."""
    model_output = model(
        scheduler.precondition_inputs(noisy, sigma),
        scheduler.precondition_noise(sigma),
        class_labels=class_labels,
        return_dict=False,
    )[0]
    return scheduler.precondition_outputs(noisy, model_output, sigma)


class ACTTrainer:
    """
    Performs ACT iterations: a generator (consistency-model) step, the target EMA update, the evaluation EMA update
    and a discriminator step. Build one with [`ACTTrainer.build`].

    The models and optimizers may be `accelerator.prepare`d (DDP, mixed precision, gradient accumulation); the
    target network is a plain module with the generator's architecture, kept identical on every process. With
    `config.adv_weight == 0` no discriminator is needed and an iteration is exactly consistency training.

    Random draws use torch's global generators on the images' device, in this order per phase: the indices n, then
    the noise z; the discriminator phase then draws its own n and z (and the augmentation its parameters). An
    iteration does not wait for the device: the grid of each N is kept on the device, n is drawn there, and the
    returned logs are tensors, read when logged ([`LogWindow`]).

    Args:
        unet: The online generator F_theta (optionally prepared).
        target_unet: The target network theta^- (same architecture, not prepared); sampled at the end of training
            unless `ema` is given.
        scheduler: Owns the grid and the preconditioning.
        optimizer: The generator's optimizer (optionally prepared); None for a trainer that only computes losses.
        config: [`ACTConfig`].
        accelerator: The `Accelerator` the models were prepared with (a default one if None).
        discriminator, discriminator_optimizer: D and its optimizer, needed when `config.adv_weight > 0`.
        lr_schedulers: Learning-rate schedulers stepped after every iteration.
        ema: An evaluation `EMAModel` of the generator's weights, updated after every optimizer step and shipped.
    """

    def __init__(
        self,
        unet: nn.Module,
        target_unet: nn.Module,
        scheduler: ConsistencyACTScheduler,
        optimizer: torch.optim.Optimizer | None,
        config: ACTConfig,
        accelerator: Accelerator | None = None,
        discriminator: nn.Module | None = None,
        discriminator_optimizer: torch.optim.Optimizer | None = None,
        lr_schedulers: tuple = (),
        ema: EMAModel | None = None,
    ):
        if config.adversarial and discriminator is None:
            raise ValueError(
                f"`adv_weight` is {config.adv_weight}, so ACT needs a `discriminator` (and, to train, a "
                "`discriminator_optimizer`); pass them, or set `adv_weight=0` for plain consistency training."
            )
        self.unet, self.target_unet, self.scheduler = unet, target_unet.requires_grad_(False), scheduler
        self.optimizer, self.config = optimizer, config
        self.accelerator = accelerator or Accelerator()
        self.discriminator, self.discriminator_optimizer = discriminator, discriminator_optimizer
        self.lr_schedulers, self.ema = tuple(lr_schedulers), ema
        self._grids: dict[tuple, Grid] = {}
        self._frozen_discriminator = None
        self._compiled: dict[str, nn.Module] = {}
        distance = make_distance(config.loss_type, config.huber_c, config.lpips_weights, config.loss_scale)
        self.distance = distance.to(self.accelerator.device)
        self.loss_scale = getattr(distance, "adaptive_scale", None)  # an AdaptiveScale under --loss_scale adaptive
        channels = self.accelerator.unwrap_model(unet).config.in_channels
        self.augment_controller, self.augment = None, None
        if config.augment:
            self.augment_controller = AugmentController(
                config.aug_target, config.aug_rate, config.aug_ema, p=config.aug_p, order=config.aug_update_order
            )
            self.augment = DifferentiableAugment(channels, p=self.augment_controller.p, resample=config.aug_resample)

    @classmethod
    def build(
        cls,
        unet: UNet2DModel | dict,
        config: ACTConfig,
        accelerator: Accelerator | None = None,
        discriminator: nn.Module | None = None,
    ) -> "ACTTrainer":
        """
        Builds everything an ACT run trains: the target copy, the discriminator (from the UNet's config, when
        `config.adv_weight > 0`), the evaluation EMA (`config.use_ema`), two RAdam optimizers and their
        learning-rate schedules, all prepared with `accelerator`, and the scheduler of the final grid N(K).

        Args:
            unet (`UNet2DModel` or `dict`):
                The generator to train, or a UNet config to build one from (random weights from torch's seed).
            config ([`ACTConfig`]):
                The hyperparameters.
            accelerator (`Accelerator`, *optional*):
                Devices, processes and precision; a default one if None.
            discriminator (`nn.Module`, *optional*):
                A discriminator to start from; a fresh [`ACTDiscriminator`] if None.
        """
        accelerator = accelerator or Accelerator()
        unet = UNet2DModel(**unet) if isinstance(unet, dict) else unet
        parts = build_training_parts(unet, config, accelerator, discriminator)
        return cls(**parts, config=config, accelerator=accelerator)

    def compile(self, mode: str | None = None) -> None:
        """
        `--torch_compile`: runs the generator, the target and the discriminator through `torch.compile` (`mode`:
        None, `"reduce-overhead"` for CUDA graphs, or `"max-autotune"`). D stays eager on R1 iterations (its double
        backward does not run through compiled code). The modules themselves, their weights, checkpoints and the
        shipped network are unchanged.
        """
        unwrap = self.accelerator.unwrap_model
        # static shapes: the generator also sees B/2 images (the fakes), which would otherwise turn dynamic
        self._compiled = {
            "unet": torch.compile(self.unet, mode=mode, dynamic=False),
            "target": torch.compile(self.target_unet, mode=mode, dynamic=False),
            "generator_no_grad": torch.compile(unwrap(self.unet), mode=mode, dynamic=False),
        }
        if self.discriminator is not None:
            self._compiled["discriminator"] = torch.compile(self.discriminator, mode=mode, dynamic=False)

    def _model(self, name: str, module: nn.Module) -> nn.Module:
        return self._compiled.get(name, module)

    # ------------------------------------------------------------------------------------------------------------
    def curriculum(self, step: int) -> tuple[int, float]:
        """N(k) and mu(k) at iteration `step`."""
        config = self.config
        size = num_timesteps(step, config.total_steps, config.s0, config.s1, config.num_timesteps_schedule)
        return size, target_ema_decay(size, config.s0, config.mu0, config.target_ema_schedule)

    def grid(self, num_timesteps: int, device: torch.device) -> Grid:
        """The training grid of size N on `device`, the mean consistency-loss weight over n (for
        `normalize_loss_weight`) and the index probabilities, computed once per N."""
        key = (num_timesteps, str(device))
        if key not in self._grids:
            self._grids[key] = training_grid(self.scheduler.karras_sigmas(num_timesteps), self.config, device)
        return self._grids[key]

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.augment is None else self.augment(images)

    def _draw(self, sigmas: torch.Tensor, images: torch.Tensor, pair: bool = False) -> tuple[torch.Tensor, ...]:
        grid = self.grid(sigmas.shape[0], sigmas.device)
        probabilities = grid.index_probabilities if sigmas is grid.sigmas else None  # a caller's own grid: computed
        return draw_indices_and_noise(sigmas, images, self.config, probabilities, pair)

    def _discriminator_without_gradients(self) -> tuple[nn.Module, dict]:
        """D (unwrapped, so DDP stays out of the generator's pass) and its parameters detached: views of the same
        storage, so they follow D's updates, and the generator's backward pass computes no gradients for D."""
        module = self.accelerator.unwrap_model(self.discriminator)
        if self._frozen_discriminator is None or self._frozen_discriminator[0] is not module:
            tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
            self._frozen_discriminator = (module, {name: t.detach() for name, t in tensors.items()})
        return self._frozen_discriminator

    # ------------------------------------------------------------------------------------------------------------
    def generator_loss(
        self,
        images: torch.Tensor,
        class_labels: torch.Tensor | None,
        sigmas: torch.Tensor,
        num_timesteps: int,
        indices: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Steps 1-4 of Algorithm 1: `L_f = mean((1 - lambda) w(n) d(student, target)) + mean(lambda g(D(A(student))))`
        on the grid `sigmas` of size `num_timesteps`, with n and z drawn unless given (paired under `ot_pairing`),
        plus iLCT's `W mean_{sigma_{n+1} <= S} d(student, x_0)` when `diffusion_loss_weight` W > 0 (S:
        `diffusion_loss_max_sigma`). Under `loss_scale="adaptive"` each call updates c ([`AdaptiveScale`]).

        Returns:
            `dict` of tensors: `consistency` (the first mean), for ACT `adversarial` (the second) and with W > 0
            `diffusion`, all with their graphs, whose sum is the loss; and detached `loss_ct`, `loss_g`,
            `adv_weight_mean`, `loss_diff` (the denoising term's mean distance) and `loss_scale` (adaptive c) for logs.
        """
        config, acc = self.config, self.accelerator
        if indices is None:
            indices, noise = self._draw(sigmas, images, pair=config.ot_pairing)
        sigma_next, sigma = sigmas[indices + 1], sigmas[indices]
        with acc.autocast():
            with torch.no_grad():  # first: no unrelated pass between the student's forward and its backward
                target = consistency_function(
                    self._model("target", self.target_unet), self.scheduler,
                    self.scheduler.add_noise(images, noise, sigmas=sigma), sigma, class_labels,
                )  # fmt: skip
            student = consistency_function(
                self._model("unet", self.unet), self.scheduler,
                self.scheduler.add_noise(images, noise, sigmas=sigma_next), sigma_next, class_labels,
            )  # fmt: skip
            weight_ct = consistency_loss_weight(sigmas, indices, config.loss_weighting)
            if config.normalize_loss_weight:
                weight_ct = weight_ct / self.grid(num_timesteps, sigmas.device).mean_weight
            scale = {}  # --loss_scale adaptive: c from the median over every process's batch, the same everywhere
            if self.loss_scale is not None:
                norms = acc.gather((student.float() - target.float()).detach().flatten(1).norm(dim=1))
                scale = {"c": self.loss_scale.update(norms, student.shape[1:])}
            loss_ct = self.distance(student.float(), target.float(), **scale) * weight_ct
            terms = {"loss_ct": loss_ct.mean().detach(), **({"loss_scale": scale["c"]} if scale else {})}
            if config.diffusion_loss_weight > 0:  # at the smallest noise levels, the clean image as target
                mask = sigma_next <= config.diffusion_loss_max_sigma
                loss_diff = masked_mean(self.distance(student.float(), images.float(), **scale), mask)
                terms.update(diffusion=config.diffusion_loss_weight * loss_diff, loss_diff=loss_diff.detach())
            if not config.adversarial:
                return {"consistency": loss_ct.mean(), **terms}
            weight = adversarial_weight(indices + 1, num_timesteps, config.adv_weight, config.adv_weight_mid)
            weight = weight.to(loss_ct)
            # D's parameters get no gradient here (detached views, no per-step requires_grad_ toggling)
            discriminator, frozen = self._discriminator_without_gradients()
            time_input = self.scheduler.precondition_noise(sigma_next)
            logits = torch.func.functional_call(
                discriminator, frozen, (self._augment(student), time_input, class_labels)
            )
            loss_g = generator_adversarial_loss(logits.float(), config.gan_loss)
        return {
            "consistency": ((1 - weight) * loss_ct).mean(),
            "adversarial": (weight * loss_g).mean(),
            **terms,
            "loss_g": loss_g.mean().detach(),
            "adv_weight_mean": weight.mean(),
        }

    def generator_step(
        self,
        images: torch.Tensor,
        class_labels: torch.Tensor | None,
        sigmas: torch.Tensor,
        num_timesteps: int,
    ) -> dict[str, torch.Tensor]:
        """Steps 1-5 of Algorithm 1: [`generator_loss`] and an optimizer step on the generator; detached logs."""
        with record_function("act.generator"):
            losses = self.generator_loss(images, class_labels, sigmas, num_timesteps)
            self.accelerator.backward(sum(losses[key] for key in LOSS_TERMS if key in losses))
        with record_function("act.generator_optimizer"):
            self._clip_gradients(self.unet)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        logged = ("loss_ct", "loss_g", "adv_weight_mean", "loss_diff", "loss_scale")
        return {key: losses[key].detach() for key in logged if key in losses}

    def _clip_gradients(self, model: nn.Module) -> None:
        """`--max_grad_norm`: clips the model's gradient norm once its gradients are complete (no host read)."""
        if self.config.max_grad_norm is not None and self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)

    @torch.no_grad()
    def update_target(self, mu: float) -> None:
        """Step 6: theta^- <- mu theta^- + (1 - mu) theta (a copy when mu = 0)."""
        target = list(self.target_unet.parameters())
        online = [p.detach() for p in self.accelerator.unwrap_model(self.unet).parameters()]
        if mu == 0:
            torch._foreach_copy_(target, online)
        else:
            torch._foreach_lerp_(target, online, 1 - mu)

    def discriminator_step(
        self,
        images: torch.Tensor,
        class_labels: torch.Tensor | None,
        sigmas: torch.Tensor,
        num_timesteps: int,
        step: int,
    ) -> dict[str, torch.Tensor]:
        """
        Steps 7-10: D on generated images (from the first half of `images`) against reals (the second half),
        lambda-weighted, with R1 on the augmented reals every `gp_interval` iterations; an optimizer step.
        """
        with record_function("act.discriminator_r1" if self._computes_r1(step) else "act.discriminator"):
            loss, logs = self._discriminator_loss(images, class_labels, sigmas, num_timesteps, step)
            self.accelerator.backward(loss)
        with record_function("act.discriminator_optimizer"):
            self._clip_gradients(self.discriminator)
            self.discriminator_optimizer.step()
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            if "loss_gp" in logs and self.augment_controller is not None and self.accelerator.sync_gradients:
                self.augment.p = self.augment_controller.update(logs["loss_gp"])
        return logs

    def _computes_r1(self, step: int) -> bool:
        return step % self.config.gp_interval == 0 and self.config.gp_weight > 0

    def _discriminator_loss(
        self, images: torch.Tensor, class_labels: torch.Tensor | None, sigmas: torch.Tensor, num_timesteps: int,
        step: int,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
        config, acc = self.config, self.accelerator
        check_even_batch(images.shape[0])
        half = images.shape[0] // 2
        sources, reals = images[:half], images[half:]
        fake_labels, real_labels = (None, None) if class_labels is None else (class_labels[:half], class_labels[half:])
        indices, noise = self._draw(sigmas, sources)
        sigma_next = sigmas[indices + 1]
        real_indices = indices  # the paper: one n per fake/real pair; the authors' code draws the reals' own
        if config.discriminator_noise_levels == "independent":
            real_indices = self._draw(sigmas, reals)[0]
        with torch.no_grad(), acc.autocast():
            fakes = consistency_function(
                self._model("generator_no_grad", acc.unwrap_model(self.unet)),
                self.scheduler,
                self.scheduler.add_noise(sources, noise, sigmas=sigma_next),
                sigma_next,
                fake_labels,
            ).float()
        compute_r1 = self._computes_r1(step)
        augmented = self._augment(torch.cat([fakes, reals]))  # one call, independent draws per image
        augmented_reals = augmented[half:].detach().requires_grad_(compute_r1)
        inputs = torch.cat([augmented[:half], augmented_reals])
        time_input = self.scheduler.precondition_noise(torch.cat([sigma_next, sigmas[real_indices + 1]]))
        labels = None if class_labels is None else torch.cat([fake_labels, real_labels])
        if compute_r1:  # eager, and attention that supports the double backward
            with acc.autocast(), double_backward_attention():
                logits = self.discriminator(inputs, time_input, labels).float()
        else:  # fused attention kernels (and the compiled D under --torch_compile)
            with acc.autocast():
                logits = self._model("discriminator", self.discriminator)(inputs, time_input, labels).float()
        weights = adversarial_weight(
            torch.cat([indices, real_indices]) + 1, num_timesteps, config.adv_weight, config.adv_weight_mid
        ).to(logits)
        weight, real_weight = weights[:half], weights[half:]  # equal unless the noise levels are independent
        loss_d = discriminator_adversarial_loss(logits[:half], logits[half:], weight, real_weight).mean()
        # share of the batch D classifies right (logit sign); 0.5 means it tells nothing apart
        d_accuracy = ((logits[:half] < 0).float().mean() + (logits[half:] > 0).float().mean()) / 2
        logs = {"loss_d": loss_d.detach(), "d_accuracy": d_accuracy}
        loss = loss_d
        if compute_r1:
            # Algorithm 2 lines 14-16: L_gp = w_gp ||grad||^2 (what ACT-Aug reads), and D minimises lambda L_gp
            r1 = r1_penalty(logits[half:], augmented_reals)
            loss_gp = config.gp_weight * r1.mean()
            loss = loss + config.gp_weight * (real_weight * r1).mean() * (config.gp_interval if config.gp_lazy else 1)
            logs.update(loss_gp=loss_gp.detach(), r1=r1.mean().detach())
        return loss, logs

    # ------------------------------------------------------------------------------------------------------------
    def train_step(
        self,
        images: torch.Tensor,
        step: int,
        class_labels: torch.Tensor | None = None,
        discriminator_images: torch.Tensor | None = None,
        discriminator_class_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | float]:
        """
        One iteration k = `step`: generator step on `images`, target and evaluation-EMA updates (once the gradients
        of an optimizer step are complete), then, for ACT, a discriminator step on `discriminator_images` (first
        half: sources of generated images; second half: reals); then the learning-rate schedules step.

        Returns:
            `dict`: `num_timesteps` (N) and `mu` as floats; as detached 0-d tensors (read them when logging, not
            every iteration, so that the host does not wait for the device): `loss_ct`, and for ACT `loss_g`,
            `adv_weight_mean`, `loss_d`, `d_accuracy` (share of D's batch it classifies right; 0.5 = chance), `loss_gp`
            and `r1` (on R1 iterations) and `aug_p`.
        """
        if self.optimizer is None or (self.config.adversarial and self.discriminator_optimizer is None):
            raise ValueError("This trainer has no optimizers (it can only compute losses); build it with `build`.")
        if self.config.adversarial and discriminator_images is None:
            raise ValueError("ACT needs `discriminator_images` (a second batch) for its discriminator step.")
        size, mu = self.curriculum(step)
        sigmas = self.grid(size, images.device).sigmas
        # ACT-Aug's step of p by ADA's rule (the authors' code) when no step is set: from this run's batch
        if self.config.adversarial and self.augment is not None and self.augment_controller.rate is None:
            per_iteration = (len(images) + len(discriminator_images)) * self.accelerator.num_processes
            rate = ada_rate(per_iteration * self.accelerator.gradient_accumulation_steps, self.config.gp_interval)
            self.augment_controller.rate = rate
        logs = {"num_timesteps": float(size), "mu": mu}
        models = [self.unet, self.discriminator] if self.config.adversarial else [self.unet]
        # one accumulation context per iteration, so that both optimizers step on the same micro-batch
        with self.accelerator.accumulate(*models):
            logs.update(self.generator_step(images, class_labels, sigmas, size))
            if self.accelerator.sync_gradients:
                with record_function("act.target_and_ema"):
                    self.update_target(mu)
                    if self.ema is not None:
                        self.ema.step(self.accelerator.unwrap_model(self.unet).parameters())
            if self.config.adversarial:
                logs.update(
                    self.discriminator_step(discriminator_images, discriminator_class_labels, sigmas, size, step)
                )
                if self.augment is not None:
                    logs["aug_p"] = torch.as_tensor(self.augment.p)
        for schedule in self.lr_schedulers:
            schedule.step()
        return logs

    def shipped_unet(self) -> nn.Module:
        """The network to sample and ship: a copy with the evaluation EMA's weights, else the target network."""
        if self.ema is None:
            return self.target_unet
        model = copy.deepcopy(self.accelerator.unwrap_model(self.unet))
        self.ema.copy_to(model.parameters())
        return model.eval()

    # ------------------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Training state that is not in the models or optimizers, JSON-serialisable: the augmentation controller,
        the evaluation EMA's counters and the adaptive loss scale ([`trainer_state_dict`])."""
        return trainer_state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        load_trainer_state_dict(self, state)

    def save_state(self, directory: str | Path) -> None:
        """Writes the whole training state without pickles ([`save_trainer_state`]; on the main process)."""
        save_trainer_state(self, directory)

    def load_state(self, directory: str | Path) -> None:
        """Reads what [`save_state`] wrote, on every process, never in a way that can run code
        ([`load_trainer_state`])."""
        load_trainer_state(self, directory)
