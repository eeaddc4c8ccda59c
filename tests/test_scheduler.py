# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import numpy as np
import pytest
import torch
from diffusers import CMStochasticIterativeScheduler

from diffusers_act import ConsistencyACTScheduler


def public(config):
    return {k: v for k, v in config.items() if not k.startswith("_")}


def test_config_matches_diffusers_and_loads_both_ways():
    ours, theirs = ConsistencyACTScheduler(), CMStochasticIterativeScheduler()
    assert public(ours.config) == {**public(theirs.config), "noise_conditioning": "log"}
    assert "CMStochasticIterativeScheduler" in [c.__name__ for c in ours.compatibles]

    custom = CMStochasticIterativeScheduler(num_train_timesteps=18, sigma_max=40.0, rho=5.0)
    converted = ConsistencyACTScheduler.from_config(custom.config)
    assert isinstance(converted, ConsistencyACTScheduler)
    assert public(converted.config) == {**public(custom.config), "noise_conditioning": "log"}
    back = CMStochasticIterativeScheduler.from_config(ConsistencyACTScheduler(sigma_min=0.01).config)
    assert isinstance(back, CMStochasticIterativeScheduler) and back.config.sigma_min == 0.01


def test_config_save_load_round_trip(tmp_path):
    scheduler = ConsistencyACTScheduler(noise_conditioning="sigma", num_train_timesteps=151)
    scheduler.save_config(tmp_path)
    loaded = ConsistencyACTScheduler.from_pretrained(tmp_path)
    assert public(loaded.config) == public(scheduler.config)
    assert loaded.config.noise_conditioning == "sigma"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_inference_steps": 1},
        {"num_inference_steps": 2},
        {"num_inference_steps": 7},
        {"timesteps": [22, 0]},
        {"timesteps": [39, 20, 3]},
    ],
)
def test_inference_grid_matches_diffusers(kwargs):
    ours, theirs = ConsistencyACTScheduler(), CMStochasticIterativeScheduler()
    ours.set_timesteps(**kwargs)
    theirs.set_timesteps(**kwargs)
    torch.testing.assert_close(ours.sigmas, theirs.sigmas, rtol=0, atol=0)
    torch.testing.assert_close(ours.timesteps, theirs.timesteps, rtol=0, atol=0)


def test_two_step_schedule_values():
    scheduler = ConsistencyACTScheduler()
    scheduler.set_timesteps(timesteps=[22, 0])
    ramp = 22 / 39
    expected = (80 ** (1 / 7) + ramp * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    np.testing.assert_allclose(scheduler.sigmas.numpy(), [80.0, expected, 0.002], rtol=1e-6)
    np.testing.assert_allclose(scheduler.timesteps.numpy(), 250 * np.log([80.0, expected]), rtol=1e-6)


@pytest.mark.parametrize("n", [2, 3, 11, 150])
def test_training_grid_is_the_spec_formula(n):
    scheduler = ConsistencyACTScheduler()
    sigmas = scheduler.karras_sigmas(n, dtype=torch.float64).numpy()
    i = np.arange(n)
    expected = (0.002 ** (1 / 7) + i / (n - 1) * (80 ** (1 / 7) - 0.002 ** (1 / 7))) ** 7
    np.testing.assert_allclose(sigmas, expected, rtol=1e-12)
    assert sigmas[0] == 0.002 and sigmas[-1] == 80.0
    assert np.all(np.diff(sigmas) > 0)
    assert scheduler.karras_sigmas(n).dtype == torch.float32


@pytest.mark.parametrize("config", [{}, {"sigma_min": 0.01, "sigma_max": 40.0, "rho": 5.0}])
@pytest.mark.parametrize("n", [2, 3, 11, 150, 201])
def test_sigma_to_ramp_inverts_the_karras_grid(config, n):
    scheduler = ConsistencyACTScheduler(**config)
    sigmas = scheduler.karras_sigmas(n, dtype=torch.float64).numpy()
    ramp = scheduler.sigma_to_ramp(sigmas)
    assert ramp.dtype == np.float64
    np.testing.assert_allclose(ramp, 1 - np.arange(n) / (n - 1), rtol=0, atol=1e-12)
    assert scheduler.sigma_to_ramp(scheduler.config.sigma_max) == 0.0
    assert scheduler.sigma_to_ramp(scheduler.config.sigma_min) == 1.0


def test_sigma_to_ramp_by_hand_and_off_the_grid():
    scheduler = ConsistencyACTScheduler()
    lo, hi = 0.002 ** (1 / 7), 80 ** (1 / 7)
    for sigma in (0.0123, 1.0, 2.5, 66.6):  # none of them on a grid
        assert float(scheduler.sigma_to_ramp(sigma)) == pytest.approx((sigma ** (1 / 7) - hi) / (lo - hi), rel=1e-14)
    # the 2-step schedule's second level is index 22 of the 40-point grid: ramp 22 / 39
    assert float(scheduler.sigma_to_ramp((hi + 22 / 39 * (lo - hi)) ** 7)) == pytest.approx(22 / 39, abs=1e-12)
    # outside [sigma_min, sigma_max] the ramp leaves [0, 1] (the inverse is not clipped)
    assert scheduler.sigma_to_ramp(100.0) < 0 < 1 < scheduler.sigma_to_ramp(0.001)


def test_training_grid_rejects_tiny_n():
    with pytest.raises(ValueError, match="at least 2"):
        ConsistencyACTScheduler().karras_sigmas(1)


def test_scalings_hand_values_and_diffusers_parity():
    scheduler = ConsistencyACTScheduler()
    sigma = torch.tensor([0.002, 0.5, 1.0, 80.0], dtype=torch.float64)
    c_skip, c_out = scheduler.get_scalings_for_boundary_condition(sigma)
    ref_skip, ref_out = CMStochasticIterativeScheduler().get_scalings_for_boundary_condition(sigma)
    torch.testing.assert_close(c_skip, ref_skip, rtol=0, atol=0)
    torch.testing.assert_close(c_out, ref_out, rtol=0, atol=0)
    # by hand at sigma = 1: c_skip = 0.25 / (0.998^2 + 0.25), c_out = 0.998 * 0.5 / sqrt(1.25)
    assert c_skip[2].item() == pytest.approx(0.25 / (0.998**2 + 0.25), rel=1e-14)
    assert c_out[2].item() == pytest.approx(0.998 * 0.5 / 1.25**0.5, rel=1e-14)
    assert c_skip[0].item() == 1.0 and c_out[0].item() == 0.0


def test_precondition_inputs_and_noise():
    log_sched, raw_sched = ConsistencyACTScheduler(), ConsistencyACTScheduler(noise_conditioning="sigma")
    x = torch.randn(3, 2, 4, 4)
    sigma = torch.tensor([0.002, 1.0, 80.0])
    scaled = log_sched.precondition_inputs(x, sigma)
    torch.testing.assert_close(scaled[1], x[1] / 1.25**0.5)
    torch.testing.assert_close(scaled[2], x[2] / (6400.25) ** 0.5)
    torch.testing.assert_close(log_sched.precondition_noise(sigma), 250 * torch.log(sigma))
    torch.testing.assert_close(raw_sched.precondition_noise(sigma), sigma)
    assert log_sched.precondition_noise(sigma).dtype == torch.float32
    # the same values as diffusers' sigma_to_t, and sigma_to_t / t_to_sigma are inverses
    np.testing.assert_array_equal(
        log_sched.sigma_to_t(np.array([0.002, 3.0])),
        CMStochasticIterativeScheduler().sigma_to_t(np.array([0.002, 3.0])),
    )
    for scheduler in (log_sched, raw_sched):
        torch.testing.assert_close(scheduler.t_to_sigma(scheduler.sigma_to_t(sigma)), sigma)


@pytest.mark.parametrize("noise_conditioning", ["log", "sigma"])
def test_boundary_condition_holds_for_any_model_output(noise_conditioning):
    scheduler = ConsistencyACTScheduler(noise_conditioning=noise_conditioning)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8, 8, generator=generator)
    for model_output in (torch.randn(4, 3, 8, 8, generator=generator) * 1e3, torch.full_like(x, float("1e6"))):
        for sigma in (
            scheduler.config.sigma_min,
            torch.full((4,), scheduler.config.sigma_min),
            scheduler.karras_sigmas(17)[0],
        ):
            assert torch.equal(scheduler.precondition_outputs(x, model_output, sigma), x)
    # away from the boundary the output does depend on the model
    out = scheduler.precondition_outputs(x, torch.ones_like(x), torch.full((4,), 1.0))
    assert not torch.allclose(out, x)


def test_precondition_outputs_formula_per_sample():
    scheduler = ConsistencyACTScheduler()
    x, f = torch.randn(2, 1, 3, 3, dtype=torch.float64), torch.randn(2, 1, 3, 3, dtype=torch.float64)
    sigma = torch.tensor([0.3, 12.0], dtype=torch.float64)
    out = scheduler.precondition_outputs(x, f, sigma)
    for b, s in enumerate(sigma.tolist()):
        c_skip = 0.25 / ((s - 0.002) ** 2 + 0.25)
        c_out = (s - 0.002) * 0.5 / (s**2 + 0.25) ** 0.5
        torch.testing.assert_close(out[b], c_skip * x[b] + c_out * f[b], rtol=1e-14, atol=1e-14)


def test_add_noise_at_arbitrary_sigmas():
    scheduler = ConsistencyACTScheduler()
    x, z = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    sigmas = torch.tensor([0.0123, 1.2345, 66.6])  # none of them on a grid
    noisy = scheduler.add_noise(x, z, sigmas=sigmas)
    torch.testing.assert_close(noisy, x + sigmas.view(3, 1, 1, 1) * z, rtol=0, atol=0)
    torch.testing.assert_close(scheduler.add_noise(x, z, sigmas=2.5), x + 2.5 * z)
    # diffusers-style call with UNet time inputs
    torch.testing.assert_close(scheduler.add_noise(x, z, scheduler.sigma_to_t(sigmas)), noisy, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.add_noise(x, z)
    with pytest.raises(ValueError, match="one value per sample"):
        scheduler.add_noise(x, z, sigmas=torch.ones(2))


def test_step_matches_diffusers_two_steps():
    ours, theirs = ConsistencyACTScheduler(), CMStochasticIterativeScheduler()
    for s in (ours, theirs):
        s.set_timesteps(timesteps=[22, 0])
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 80
    x_ours = x_theirs = x
    for t_ours, t_theirs in zip(ours.timesteps, theirs.timesteps, strict=True):
        model_out = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(int(t_ours)))
        torch.testing.assert_close(
            ours.scale_model_input(x_ours, t_ours), theirs.scale_model_input(x_theirs, t_theirs)
        )
        out = ours.step(model_out, t_ours, x_ours, generator=torch.Generator().manual_seed(5))
        x_theirs = theirs.step(model_out, t_theirs, x_theirs, generator=torch.Generator().manual_seed(5)).prev_sample
        x_ours = out.prev_sample
        # diffusers adds noise of ~1e-6 at the last step (float32 rounding of sigma_min^2 - sigma_min^2)
        torch.testing.assert_close(x_ours, x_theirs, rtol=0, atol=1e-5)
    # after the last step the sample is the (clipped) denoised estimate
    assert torch.equal(out.prev_sample, out.pred_original_sample)
    assert out.pred_original_sample.abs().max() <= 1


def test_step_rejects_integer_timestep():
    scheduler = ConsistencyACTScheduler()
    scheduler.set_timesteps(1)
    with pytest.raises(ValueError, match="not an integer index"):
        scheduler.step(torch.zeros(1, 3, 2, 2), 0, torch.zeros(1, 3, 2, 2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Pass one of"),
        ({"num_inference_steps": 2, "timesteps": [1, 0]}, "not both"),
        ({"timesteps": [0, 22]}, "strictly decreasing"),
        ({"timesteps": [5, 5]}, "strictly decreasing"),
        ({"timesteps": [40, 0]}, r"lie in \[0, 39\]"),
        ({"timesteps": [3, -1]}, r"lie in \[0, 39\]"),
        ({"timesteps": [2.5, 0]}, "integer indices"),
        ({"num_inference_steps": 0}, "between 1 and"),
        ({"num_inference_steps": 41}, "between 1 and"),
    ],
)
def test_set_timesteps_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConsistencyACTScheduler().set_timesteps(**kwargs)


def test_bad_config_errors():
    with pytest.raises(ValueError, match="noise_conditioning"):
        ConsistencyACTScheduler(noise_conditioning="linear")
    with pytest.raises(ValueError, match="sigma_min"):
        ConsistencyACTScheduler(sigma_min=100.0)
