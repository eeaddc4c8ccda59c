# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Schedules of ACT training: the grid size N(k), the target EMA mu(k), the adversarial weight lambda_N(m), the choice
of grid index n and the consistency-loss weight (ACT, arXiv 2311.14097, Algorithm 1 and Eq. 10;
docs/algorithm.md)."""

import math
from typing import NamedTuple

import torch

NUM_TIMESTEPS_SCHEDULES = ("ct", "official", "doubling")
TARGET_EMA_SCHEDULES = ("ct", "official")
INDEX_DISTRIBUTIONS = ("uniform", "lognormal")
LOSS_WEIGHTINGS = ("none", "inverse_delta")
# improved CT's log-normal distribution of the noise levels (Song & Dhariwal 2023): ln(sigma) ~ N(P_MEAN, P_STD^2)
LOGNORMAL_P_MEAN, LOGNORMAL_P_STD = -1.1, 2.0


def num_timesteps(step: int, total_steps: int, s0: int, s1: int, schedule: str = "ct") -> int:
    """
    The grid size N(k) at training iteration `step` (k) of `total_steps` (K).

    Args:
        step (`int`): Current iteration k (0-based).
        total_steps (`int`): Total iterations K.
        s0 (`int`), s1 (`int`): Initial and final discretisation steps.
        schedule (`str`, defaults to `"ct"`):
            `"ct"`: the Consistency Models / ACT paper formula
            `ceil(sqrt(k/K ((s1+1)^2 - s0^2) + s0^2) - 1) + 1`;
            `"official"`: the authors' code, `round(sqrt(k/K (s1^2 - s0^2) + s0^2))`;
            `"doubling"`: improved CT, `min(s0 2^floor(k/K'), s1) + 1` with `K' = floor(K / (log2 floor(s1/s0) + 1))`.
    """
    if total_steps < 1 or not 0 <= step:
        raise ValueError(f"Need 0 <= step and total_steps >= 1, got step={step}, total_steps={total_steps}.")
    frac = min(step, total_steps) / total_steps
    if schedule == "ct":
        return math.ceil(math.sqrt(frac * ((s1 + 1) ** 2 - s0**2) + s0**2) - 1) + 1
    if schedule == "official":
        return round(math.sqrt(frac * (s1**2 - s0**2) + s0**2))
    if schedule == "doubling":
        stage_steps = max(1, math.floor(total_steps / (math.log2(math.floor(s1 / s0)) + 1)))
        return min(s0 * 2 ** (min(step, total_steps) // stage_steps), s1) + 1
    raise ValueError(f"Unknown N(k) schedule {schedule!r}; choose one of {NUM_TIMESTEPS_SCHEDULES}.")


def target_ema_decay(num_timesteps: int, s0: int, mu0: float, schedule: str = "ct") -> float:
    """
    The target network's EMA rate mu(k) for the current grid size N = N(k).

    `"ct"` (paper): `exp(s0 ln(mu0) / N)`; `"official"` (authors' code): `exp(s0 ln(mu0) / (N - 1))`.
    `mu0 = 0` gives 0: the teacher is the current weights (improved CT).
    """
    if not 0 <= mu0 < 1:
        raise ValueError(f"`mu0` must lie in [0, 1), got {mu0}.")
    if schedule not in TARGET_EMA_SCHEDULES:
        raise ValueError(f"Unknown mu(k) schedule {schedule!r}; choose one of {TARGET_EMA_SCHEDULES}.")
    if mu0 == 0:
        return 0.0
    denominator = num_timesteps if schedule == "ct" else num_timesteps - 1
    return math.exp(s0 * math.log(mu0) / denominator)


def adversarial_weight(
    index: torch.Tensor | int, num_timesteps: int, weight: float, weight_mid: float
) -> torch.Tensor:
    """
    lambda_N(m) = w (m / (N - 1))^(log_{1/2}(w_mid / w)) (paper Eq. 10): `weight` at m = N - 1, `weight_mid` at
    m = (N - 1) / 2; a constant `weight` when `weight_mid == weight`, and 0 everywhere when `weight == 0`.

    Args:
        index (`torch.Tensor` or `int`): Grid indices m (the student's index n + 1).
        num_timesteps (`int`): Grid size N.
        weight (`float`), weight_mid (`float`): w and w_mid.
    """
    index = torch.as_tensor(index, dtype=torch.float64)
    if weight == 0:
        return torch.zeros_like(index)
    if weight_mid <= 0:
        raise ValueError(f"`weight_mid` must be positive when `weight` is, got {weight_mid}.")
    exponent = math.log(weight_mid / weight) / math.log(0.5)
    return weight * (index / (num_timesteps - 1)) ** exponent


def sample_timestep_indices(
    sigmas: torch.Tensor,
    batch_size: int,
    distribution: str = "uniform",
    p_mean: float = LOGNORMAL_P_MEAN,
    p_std: float = LOGNORMAL_P_STD,
    generator: torch.Generator | None = None,
    probabilities: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Draws grid indices n in {0, ..., N-2} (the teacher's point; the student's is n + 1).

    Args:
        sigmas (`torch.Tensor` of shape `(N,)`):
            The ascending training grid ([`ConsistencyACTScheduler.karras_sigmas`]).
        batch_size (`int`): How many indices.
        distribution (`str`, defaults to `"uniform"`):
            `"uniform"` (paper) or `"lognormal"` (improved CT:
            `P(n) ~ erf((ln t_{n+1} - P_mean) / (sqrt(2) P_std)) - erf((ln t_n - P_mean) / (sqrt(2) P_std))`).
        p_mean (`float`), p_std (`float`): Log-normal parameters.
        generator (`torch.Generator`, *optional*): Random generator on `sigmas`' device (indices are drawn there).
        probabilities (`torch.Tensor`, *optional*):
            `lognormal_index_probabilities(sigmas, p_mean, p_std)` computed once for this grid (a trainer caches
            them per N); computed here when not given.
    """
    num_timesteps = sigmas.shape[0]
    if distribution == "uniform":
        return torch.randint(0, num_timesteps - 1, (batch_size,), generator=generator, device=sigmas.device)
    if distribution == "lognormal":
        probs = lognormal_index_probabilities(sigmas, p_mean, p_std) if probabilities is None else probabilities
        return torch.multinomial(probs, batch_size, replacement=True, generator=generator)
    raise ValueError(f"Unknown index distribution {distribution!r}; choose one of {INDEX_DISTRIBUTIONS}.")


def lognormal_index_probabilities(
    sigmas: torch.Tensor, p_mean: float = LOGNORMAL_P_MEAN, p_std: float = LOGNORMAL_P_STD
) -> torch.Tensor:
    """The improved-CT probabilities of the indices n = 0..N-2 (they sum to 1)."""
    cdf = torch.erf((torch.log(sigmas.double()) - p_mean) / (math.sqrt(2) * p_std))
    probs = cdf[1:] - cdf[:-1]
    return probs / probs.sum()


def consistency_loss_weight(sigmas: torch.Tensor, indices: torch.Tensor, weighting: str = "none") -> torch.Tensor:
    """
    Per-sample weight of the consistency loss: 1 (`"none"`, paper) or `1 / (t_{n+1} - t_n)` (`"inverse_delta"`,
    improved CT).
    """
    if weighting == "none":
        return torch.ones(indices.shape, dtype=sigmas.dtype, device=sigmas.device)
    if weighting == "inverse_delta":
        return 1.0 / (sigmas[indices + 1] - sigmas[indices])
    raise ValueError(f"Unknown consistency-loss weighting {weighting!r}; choose one of {LOSS_WEIGHTINGS}.")


def expected_consistency_loss_weight(
    sigmas: torch.Tensor,
    weighting: str,
    distribution: str = "uniform",
    p_mean: float = LOGNORMAL_P_MEAN,
    p_std: float = LOGNORMAL_P_STD,
) -> float:
    """
    E_n[weight(n)] under the index distribution. Dividing the weights by it keeps the consistency loss on the scale
    of the unweighted loss, against which the paper tuned the adversarial weight lambda.
    """
    num_pairs = sigmas.shape[0] - 1
    if distribution == "uniform":
        probs = torch.full((num_pairs,), 1 / num_pairs, dtype=torch.float64)
    else:
        probs = lognormal_index_probabilities(sigmas, p_mean, p_std)
    sigmas = sigmas.double().cpu()
    weights = consistency_loss_weight(sigmas, torch.arange(num_pairs), weighting)
    return float((probs.cpu() * weights).sum())


class Grid(NamedTuple):
    """The training grid of one N on one device, with what is derived from it once."""

    sigmas: torch.Tensor  # t_0 < ... < t_{N-1}
    mean_weight: float  # E_n[w(n)], for `normalize_loss_weight`
    index_probabilities: torch.Tensor | None  # P(n) of the log-normal index distribution; None when uniform


def training_grid(sigmas: torch.Tensor, config, device: torch.device) -> Grid:
    """The [`Grid`] of the noise levels `sigmas` (the scheduler's grid of one N) under `config` ([`ACTConfig`])."""
    mean_weight = expected_consistency_loss_weight(
        sigmas, config.loss_weighting, config.index_distribution, config.p_mean, config.p_std
    )
    probabilities = None
    if config.index_distribution == "lognormal":
        probabilities = lognormal_index_probabilities(sigmas, config.p_mean, config.p_std).to(device)
    return Grid(sigmas.to(device), mean_weight, probabilities)
