# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""One ACT training iteration (Algorithms 1 and 2 of the paper, ACT_SPEC section 4) under accelerate."""

from dataclasses import asdict, dataclass

import torch
from accelerate import Accelerator
from torch import nn

from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler
from .augmentation import AugmentController, DifferentiableAugment
from .curricula import (
    adversarial_weight,
    consistency_loss_weight,
    expected_consistency_loss_weight,
    num_timesteps,
    sample_timestep_indices,
    target_ema_decay,
)
from .losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    make_distance,
    r1_penalty,
)


@dataclass
class ACTConfig:
    """
    Hyperparameters of ACT training. Defaults are the paper's CIFAR-10 values (ACT_SPEC section 9) with the
    pseudo-Huber distance, which needs no extra download.

    Args:
        total_steps: K, the number of iterations the curricula are spread over.
        s0, s1: Initial and final discretisation steps of N(k).
        num_timesteps_schedule: `"ct"` (paper), `"official"` (authors' code) or `"doubling"` (improved CT).
        mu0, target_ema_schedule: mu(k) = exp(s0 ln(mu0) / N) (`"ct"`) or `/ (N - 1)` (`"official"`); `mu0 = 0`
            makes the teacher the current weights.
        index_distribution, p_mean, p_std: how n is drawn: `"uniform"` (paper) or `"lognormal"` (improved CT).
        loss_weighting: `"none"` (paper) or `"inverse_delta"`, 1 / (t_{n+1} - t_n) (improved CT).
        normalize_loss_weight: divide the consistency weight by its mean over n, so that the weighted loss keeps
            the scale of the unweighted one that lambda was tuned against (the mean of 1 / (t_{n+1} - t_n) grows
            from about 8 at N = 11 to 141 at N = 161 under the log-normal n).
        loss_type, huber_c: the distance d (`"l2"`, `"pseudo_huber"`, `"lpips"`) and the pseudo-Huber c
            (None: 0.00054 sqrt(C H W)).
        adv_weight, adv_weight_mid: w and w_mid of lambda_N(m); `adv_weight = 0` is plain consistency training (no
            discriminator is used at all).
        gan_loss: `"non_saturating"` (authors' code) or `"saturating"` (the paper's formula) generator loss.
        gp_weight, gp_interval, gp_lazy: R1 weight w_gp (gamma / 2), computed every `gp_interval` iterations,
            multiplied by `gp_interval` when `gp_lazy`.
        augment, aug_target, aug_rate, aug_ema, aug_p: ACT-Aug: adaptive augmentation with tau, p_r, mu_p and
            the initial p.
    """

    total_steps: int = 300_000
    s0: int = 2
    s1: int = 150
    num_timesteps_schedule: str = "ct"
    mu0: float = 0.9
    target_ema_schedule: str = "ct"
    index_distribution: str = "uniform"
    p_mean: float = -1.1
    p_std: float = 2.0
    loss_weighting: str = "none"
    normalize_loss_weight: bool = False
    loss_type: str = "pseudo_huber"
    huber_c: float | None = None
    adv_weight: float = 0.3
    adv_weight_mid: float = 0.3
    gan_loss: str = "non_saturating"
    gp_weight: float = 5.0
    gp_interval: int = 16
    gp_lazy: bool = False
    augment: bool = False
    aug_target: float = 0.55
    aug_rate: float = 0.05
    aug_ema: float = 0.93
    aug_p: float = 0.0

    @property
    def adversarial(self) -> bool:
        return self.adv_weight > 0

    def to_dict(self) -> dict:
        return asdict(self)


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
    Performs ACT iterations: a generator (consistency-model) step, the target EMA update and a discriminator step.

    The models and optimizers may be `accelerator.prepare`d (DDP, mixed precision, gradient accumulation); the
    target network is a plain module with the generator's architecture, kept identical on every process. With
    `config.adv_weight == 0` no discriminator is needed and an iteration is exactly consistency training.

    Random draws use torch's global generators, in this order per phase: the indices n (CPU), then the noise z (on
    the images' device); the discriminator phase then draws its own n and z.

    Args:
        unet: The online generator F_theta (optionally prepared).
        target_unet: The target network theta^- (same architecture, not prepared); sampled at the end of training.
        scheduler: Owns the grid and the preconditioning.
        optimizer: The generator's optimizer (optionally prepared).
        config: [`ACTConfig`].
        accelerator: The `Accelerator` the models were prepared with (a default one if None).
        discriminator, discriminator_optimizer: D and its optimizer, needed when `config.adv_weight > 0`.
    """

    def __init__(
        self,
        unet: nn.Module,
        target_unet: nn.Module,
        scheduler: ConsistencyACTScheduler,
        optimizer: torch.optim.Optimizer,
        config: ACTConfig,
        accelerator: Accelerator | None = None,
        discriminator: nn.Module | None = None,
        discriminator_optimizer: torch.optim.Optimizer | None = None,
    ):
        if config.adversarial and (discriminator is None or discriminator_optimizer is None):
            raise ValueError(
                f"`adv_weight` is {config.adv_weight}, so ACT needs a `discriminator` and a "
                "`discriminator_optimizer`; pass them, or set `adv_weight=0` for plain consistency training."
            )
        if config.gp_interval < 1:
            raise ValueError(f"`gp_interval` must be at least 1, got {config.gp_interval}.")
        self.unet, self.target_unet, self.scheduler = unet, target_unet.requires_grad_(False), scheduler
        self.optimizer, self.config = optimizer, config
        self.accelerator = accelerator or Accelerator()
        self.discriminator, self.discriminator_optimizer = discriminator, discriminator_optimizer
        self.distance = make_distance(config.loss_type, config.huber_c).to(self.accelerator.device)
        channels = self.accelerator.unwrap_model(unet).config.in_channels
        self.augment = DifferentiableAugment(channels, p=config.aug_p) if config.augment else None
        self.augment_controller = (
            AugmentController(config.aug_target, config.aug_rate, config.aug_ema, p=config.aug_p)
            if config.augment
            else None
        )

    # ------------------------------------------------------------------------------------------------------------
    def curriculum(self, step: int) -> tuple[int, float]:
        """N(k) and mu(k) at iteration `step`."""
        c = self.config
        n_steps = num_timesteps(step, c.total_steps, c.s0, c.s1, c.num_timesteps_schedule)
        return n_steps, target_ema_decay(n_steps, c.s0, c.mu0, c.target_ema_schedule)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.augment is None else self.augment(images)

    def _draw(self, sigmas: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        indices = sample_timestep_indices(sigmas.cpu(), images.shape[0], c.index_distribution, c.p_mean, c.p_std)
        return indices.to(images.device), torch.randn_like(images)

    # ------------------------------------------------------------------------------------------------------------
    def generator_step(self, images, class_labels, sigmas, n_steps) -> dict[str, float]:
        """Steps 1-5 of Algorithm 1: the consistency loss plus lambda-weighted adversarial loss; an optimizer step."""
        c, acc = self.config, self.accelerator
        indices, noise = self._draw(sigmas, images)
        t_next, t_cur = sigmas[indices + 1], sigmas[indices]
        with acc.autocast():
            student = consistency_function(
                self.unet, self.scheduler, images + t_next.view(-1, 1, 1, 1) * noise, t_next, class_labels
            )
            with torch.no_grad():
                target = consistency_function(
                    self.target_unet, self.scheduler, images + t_cur.view(-1, 1, 1, 1) * noise, t_cur, class_labels
                )
            weight_ct = consistency_loss_weight(sigmas, indices, c.loss_weighting)
            if c.normalize_loss_weight:
                weight_ct = weight_ct / expected_consistency_loss_weight(
                    sigmas, c.loss_weighting, c.index_distribution, c.p_mean, c.p_std
                )
            loss_ct = self.distance(student.float(), target.float()) * weight_ct
            logs = {"loss_ct": loss_ct.mean().item()}
            if c.adversarial:
                weight = adversarial_weight(indices + 1, n_steps, c.adv_weight, c.adv_weight_mid).to(loss_ct)
                # D's parameters get no gradient here; the unwrapped module keeps DDP out of this forward pass
                discriminator = acc.unwrap_model(self.discriminator).requires_grad_(False)
                try:
                    time_input = self.scheduler.precondition_noise(t_next)
                    logits = discriminator(self._augment(student), time_input, class_labels)
                finally:
                    discriminator.requires_grad_(True)
                loss_g = generator_adversarial_loss(logits.float(), c.gan_loss)
                loss = ((1 - weight) * loss_ct + weight * loss_g).mean()
                logs.update(loss_g=loss_g.mean().item(), adv_weight_mean=weight.mean().item())
            else:
                loss = loss_ct.mean()
            acc.backward(loss)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return logs

    @torch.no_grad()
    def update_target(self, mu: float) -> None:
        """Step 6: theta^- <- mu theta^- + (1 - mu) theta (a copy when mu = 0)."""
        target = list(self.target_unet.parameters())
        online = [p.detach() for p in self.accelerator.unwrap_model(self.unet).parameters()]
        if mu == 0:
            torch._foreach_copy_(target, online)
        else:
            torch._foreach_lerp_(target, online, 1 - mu)

    def discriminator_step(self, images, class_labels, sigmas, n_steps, step) -> dict[str, float]:
        """
        Steps 7-10: D on generated images (from the first half of `images`) against reals (the second half),
        lambda-weighted, with R1 on the augmented reals every `gp_interval` iterations; an optimizer step.
        """
        c, acc = self.config, self.accelerator
        half = images.shape[0] // 2
        if half == 0 or images.shape[0] % 2:
            raise ValueError(f"The discriminator batch must hold an even number of images, got {images.shape[0]}.")
        sources, reals = images[:half], images[half:]
        fake_labels, real_labels = (None, None) if class_labels is None else (class_labels[:half], class_labels[half:])
        indices, noise = self._draw(sigmas, sources)
        t_next = sigmas[indices + 1]
        with torch.no_grad(), acc.autocast():
            fakes = consistency_function(
                acc.unwrap_model(self.unet),
                self.scheduler,
                sources + t_next.view(-1, 1, 1, 1) * noise,
                t_next,
                fake_labels,
            ).float()
        compute_r1 = step % c.gp_interval == 0 and c.gp_weight > 0
        augmented_reals = self._augment(reals).detach().requires_grad_(compute_r1)
        inputs = torch.cat([self._augment(fakes), augmented_reals])
        time_input = self.scheduler.precondition_noise(torch.cat([t_next, t_next]))
        labels = None if class_labels is None else torch.cat([fake_labels, real_labels])
        with acc.autocast():
            logits = self.discriminator(inputs, time_input, labels).float()
        weight = adversarial_weight(indices + 1, n_steps, c.adv_weight, c.adv_weight_mid).to(logits)
        loss_d = (weight * discriminator_adversarial_loss(logits[:half], logits[half:])).mean()
        # share of the batch D classifies right (logit sign); 0.5 means it tells nothing apart
        d_accuracy = ((logits[:half] < 0).float().mean() + (logits[half:] > 0).float().mean()) / 2
        logs = {"loss_d": loss_d.item(), "d_accuracy": d_accuracy.item()}
        loss = loss_d
        if compute_r1:
            r1 = r1_penalty(logits[half:], augmented_reals)
            loss_gp = c.gp_weight * (weight * r1).mean()
            loss = loss + loss_gp * (c.gp_interval if c.gp_lazy else 1)
            logs.update(loss_gp=loss_gp.item(), r1=r1.mean().item())
        acc.backward(loss)
        self.discriminator_optimizer.step()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        if compute_r1 and self.augment_controller is not None and acc.sync_gradients:
            self.augment.p = self.augment_controller.update(logs["loss_gp"])
        return logs

    # ------------------------------------------------------------------------------------------------------------
    def train_step(
        self,
        images: torch.Tensor,
        step: int,
        class_labels: torch.Tensor | None = None,
        discriminator_images: torch.Tensor | None = None,
        discriminator_class_labels: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """
        One iteration k = `step`: generator step on `images`, target update (once the gradients of an optimizer
        step are complete), then, for ACT, a discriminator step on `discriminator_images` (first half: sources of
        generated images; second half: reals).

        Returns:
            `dict` of floats: `loss_ct`, `num_timesteps` (N), `mu`, and for ACT `loss_g`, `adv_weight_mean`,
            `loss_d`, `d_accuracy` (share of D's batch it classifies right; 0.5 = chance), `loss_gp` and `r1` (on R1
            iterations) and `aug_p`.
        """
        if self.config.adversarial and discriminator_images is None:
            raise ValueError("ACT needs `discriminator_images` (a second batch) for its discriminator step.")
        n_steps, mu = self.curriculum(step)
        sigmas = self.scheduler.karras_sigmas(n_steps, device=images.device)
        logs = {"num_timesteps": float(n_steps), "mu": mu}
        models = [self.unet, self.discriminator] if self.config.adversarial else [self.unet]
        # one accumulation context per iteration, so that both optimizers step on the same micro-batch
        with self.accelerator.accumulate(*models):
            logs.update(self.generator_step(images, class_labels, sigmas, n_steps))
            if self.accelerator.sync_gradients:
                self.update_target(mu)
            if self.config.adversarial:
                logs.update(
                    self.discriminator_step(discriminator_images, discriminator_class_labels, sigmas, n_steps, step)
                )
                if self.augment is not None:
                    logs["aug_p"] = self.augment.p
        return logs

    def state_dict(self) -> dict:
        """Training state that is not in the models or optimizers (the augmentation controller)."""
        return {"augment": None if self.augment_controller is None else self.augment_controller.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.augment_controller is not None and state.get("augment") is not None:
            self.augment_controller.load_state_dict(state["augment"])
            self.augment.p = self.augment_controller.p
