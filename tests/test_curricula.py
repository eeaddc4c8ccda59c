# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import math

import pytest
import torch

from diffusers_act import ConsistencyACTScheduler
from diffusers_act.training import (
    adversarial_weight,
    consistency_loss_weight,
    lognormal_index_probabilities,
    num_timesteps,
    sample_timestep_indices,
    target_ema_decay,
)

K = 300_000


@pytest.mark.parametrize(
    "schedule, expected",
    [
        # ceil(sqrt(k/K (151^2 - 4) + 4) - 1) + 1: sqrt(11402.5) = 106.78 -> 107
        ("ct", [2, 107, 151]),
        # round(sqrt(k/K (150^2 - 4) + 4)): sqrt(11252) = 106.08 -> 106
        ("official", [2, 106, 150]),
        # K' = floor(300000 / (log2 75 + 1)) = 41500; 2 * 2^(k // K'), capped at 150, plus 1
        ("doubling", [3, 17, 151]),
    ],
)
def test_num_timesteps_hand_values(schedule, expected):
    assert [num_timesteps(k, K, 2, 150, schedule) for k in (0, 150_000, 300_000)] == expected


def test_num_timesteps_is_monotone_and_capped():
    for schedule in ("ct", "official", "doubling"):
        values = [num_timesteps(k, 1000, 10, 160, schedule) for k in range(0, 1200, 7)]
        assert values == sorted(values)
        assert values[-1] == num_timesteps(1000, 1000, 10, 160, schedule)
    with pytest.raises(ValueError, match="Unknown N"):
        num_timesteps(0, 10, 2, 150, "cosine")


def test_target_ema_decay_hand_values():
    assert target_ema_decay(2, s0=2, mu0=0.9) == pytest.approx(0.9, rel=1e-15)
    assert target_ema_decay(151, s0=2, mu0=0.9) == pytest.approx(0.9 ** (2 / 151), rel=1e-15)
    assert target_ema_decay(151, s0=2, mu0=0.9, schedule="official") == pytest.approx(0.9 ** (2 / 150), rel=1e-15)
    assert target_ema_decay(201, s0=2, mu0=0.95) == pytest.approx(math.exp(2 * math.log(0.95) / 201), rel=1e-15)
    assert target_ema_decay(40, s0=10, mu0=0.0) == 0.0  # improved CT: teacher = current weights
    with pytest.raises(ValueError, match="mu0"):
        target_ema_decay(10, 2, 1.0)


def test_adversarial_weight_endpoints_and_shape():
    n = 11
    w, w_mid = 0.6, 0.2
    values = adversarial_weight(torch.arange(n), n, w, w_mid)
    assert values[-1].item() == pytest.approx(w, abs=1e-12)  # lambda(N-1) = w
    assert values[5].item() == pytest.approx(w_mid, abs=1e-12)  # lambda((N-1)/2) = w_mid
    assert values[0].item() == 0 and torch.all(torch.diff(values) > 0)
    # exponent log_{1/2}(w_mid / w) = log2(3); at m = 2: 0.6 * 0.2^log2(3)
    assert values[2].item() == pytest.approx(0.6 * 0.2 ** math.log2(3), rel=1e-12)
    constant = adversarial_weight(torch.arange(1, n), n, 0.3, 0.3)
    assert torch.all(constant == 0.3)
    assert torch.all(adversarial_weight(torch.arange(n), n, 0.0, 0.0) == 0)


def test_uniform_indices_cover_the_grid():
    sigmas = ConsistencyACTScheduler().karras_sigmas(6)
    indices = sample_timestep_indices(sigmas, 5000, generator=torch.Generator().manual_seed(0))
    assert indices.min() == 0 and indices.max() == 4
    counts = torch.bincount(indices, minlength=5).float() / 5000
    assert torch.allclose(counts, torch.full((5,), 0.2), atol=0.03)


def test_lognormal_probabilities_and_sampling():
    sigmas = ConsistencyACTScheduler().karras_sigmas(10, dtype=torch.float64)
    probs = lognormal_index_probabilities(sigmas)

    def cdf(t):
        return math.erf((math.log(t) + 1.1) / (math.sqrt(2) * 2.0))

    raw = [cdf(sigmas[i + 1].item()) - cdf(sigmas[i].item()) for i in range(9)]
    expected = torch.tensor(raw, dtype=torch.float64) / sum(raw)
    torch.testing.assert_close(probs, expected, rtol=1e-12, atol=1e-12)
    draws = sample_timestep_indices(sigmas, 20000, "lognormal", generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=9).double() / 20000
    torch.testing.assert_close(freq, probs, rtol=0, atol=0.015)
    # mass sits around exp(P_mean) = 0.33, not at the ends of the grid
    assert probs.argmax() not in (0, 8)
    with pytest.raises(ValueError, match="Unknown index distribution"):
        sample_timestep_indices(sigmas, 3, "beta")
    # probabilities computed once (as a trainer caches them per N) give the same draws
    again = sample_timestep_indices(
        sigmas, 20000, "lognormal", generator=torch.Generator().manual_seed(0), probabilities=probs
    )
    assert torch.equal(again, draws)


def test_consistency_loss_weight():
    sigmas = ConsistencyACTScheduler().karras_sigmas(5, dtype=torch.float64)
    n = torch.tensor([0, 3])
    torch.testing.assert_close(consistency_loss_weight(sigmas, n), torch.ones(2, dtype=torch.float64))
    weight = consistency_loss_weight(sigmas, n, "inverse_delta")
    expected = torch.tensor([1 / (sigmas[1] - sigmas[0]), 1 / (sigmas[4] - sigmas[3])], dtype=torch.float64)
    torch.testing.assert_close(weight, expected)
    with pytest.raises(ValueError, match="Unknown consistency-loss weighting"):
        consistency_loss_weight(sigmas, n, "snr")


def test_expected_consistency_loss_weight():
    from diffusers_act.training import expected_consistency_loss_weight

    sigmas = ConsistencyACTScheduler().karras_sigmas(6, dtype=torch.float64)
    deltas = sigmas[1:] - sigmas[:-1]
    assert expected_consistency_loss_weight(sigmas, "none") == pytest.approx(1.0)
    assert expected_consistency_loss_weight(sigmas, "inverse_delta") == pytest.approx((1 / deltas).mean().item())
    probs = lognormal_index_probabilities(sigmas)
    expected = (probs * (1 / deltas)).sum().item()
    assert expected_consistency_loss_weight(sigmas, "inverse_delta", "lognormal") == pytest.approx(expected)
