# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""iLCT's training options (arXiv 2502.01441): the Cauchy distance, the denoising term at the smallest noise levels,
minibatch optimal-transport pairing of noise and data, and our adaptive robust scale."""

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from test_trainer import images, make_trainer, no_host_reads_from

from diffusers_act.training import ACTConfig, LogWindow, consistency_function, make_distance, parse_args
from diffusers_act.training.coupling import ot_pair_noise
from diffusers_act.training.curricula import sample_timestep_indices
from diffusers_act.training.losses import ADAPTIVE_SCALE_EMA, CauchyDistance
from diffusers_act.training.state import trainer_state_problems

pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")


def small(**overrides):
    return ACTConfig(**{"total_steps": 10, "s0": 4, "s1": 8, "adv_weight": 0.0, **overrides})


def pseudo_huber(a, b, c):
    return torch.sqrt((a - b).square().flatten(1).sum(dim=1) + c**2) - c


def student_and_teacher(trainer, x, indices, noise, sigmas, labels=None):
    """The generator's and the target's outputs, written out here: f(x + sigma_{n+1} z) and f^-(x + sigma_n z)."""
    sigma_next, sigma = sigmas[indices + 1], sigmas[indices]
    with torch.no_grad():
        student = consistency_function(
            trainer.unet, trainer.scheduler, x + sigma_next.view(-1, 1, 1, 1) * noise, sigma_next, labels
        )
        teacher = consistency_function(
            trainer.target_unet, trainer.scheduler, x + sigma.view(-1, 1, 1, 1) * noise, sigma, labels
        )
    return student, teacher


# ---------------------------------------------------------------------------------------------------------------
def test_cauchy_distance_is_log1p_of_the_squared_norm_over_c_squared():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, 0.0, 0.0, -0.5]]).view(2, 1, 2, 2)  # ||a - b||^2 = 4 and 0.5
    torch.testing.assert_close(CauchyDistance(2.0)(a, b), torch.tensor([math.log(2.0), math.log(1.125)]))
    default_c = 0.00054 * math.sqrt(4)  # the pseudo-Huber default, 0.00054 sqrt(C H W)
    expected = torch.tensor([math.log1p(4 / default_c**2), math.log1p(0.5 / default_c**2)])
    torch.testing.assert_close(make_distance("cauchy")(a, b), expected)
    # --huber_c is the scale of both robust distances; forward's c (a tensor) replaces it for one call
    one = make_distance("cauchy", huber_c=2.0)(a, b, c=torch.tensor(1.0))
    torch.testing.assert_close(one, torch.log1p(torch.tensor([4.0, 0.5])))


def total_cost(x, noise):
    """sum_j ||x_j - z_j||^2 in float64."""
    return float((x - noise).double().square().sum())


def test_ot_pairing_is_the_best_permutation_and_lowers_the_cost():
    generator = torch.Generator().manual_seed(3)
    for batch in (4, 5):
        x = torch.randn(batch, 3, 2, 2, generator=generator)
        z = torch.randn(batch, 3, 2, 2, generator=generator)
        best = min(itertools.permutations(range(batch)), key=lambda p: total_cost(x, z[list(p)]))
        paired = ot_pair_noise(x, z)
        assert torch.equal(paired, z[list(best)])
        assert total_cost(x, paired) < total_cost(x, z)  # these draws are not already optimal: pairing lowers it
    assert torch.equal(ot_pair_noise(x, x), x)  # the identity is optimal when noise equals data


def test_ot_pairing_draws_n_then_z_and_permutes_only_the_noise():
    """With class labels: the trainer's loss under --ot_pairing is the loss on the draws made here (n, then z,
    then z paired with the images, which keep their order and their labels)."""
    config = small(ot_pairing=True)
    drawn, given = make_trainer(config, num_class_embeds=3), make_trainer(config, num_class_embeds=3)
    x, labels = images(5, seed=4), torch.tensor([0, 1, 2, 0, 1])
    sigmas = drawn.grid(6, x.device).sigmas
    torch.manual_seed(11)
    losses = drawn.generator_loss(x, labels, sigmas, 6)
    torch.manual_seed(11)
    indices = sample_timestep_indices(sigmas, 5)
    noise = torch.randn_like(x)
    paired = ot_pair_noise(x, noise)
    assert not torch.equal(paired, noise)
    expected = given.generator_loss(x, labels, sigmas, 6, indices, paired)
    assert torch.equal(losses["loss_ct"], expected["loss_ct"])


# ---------------------------------------------------------------------------------------------------------------
def test_diffusion_loss_is_w_times_the_mean_distance_to_x0_below_s_from_the_one_student_pass():
    trainer = make_trainer(small())
    sigmas = trainer.scheduler.karras_sigmas(8)
    x, indices, noise = images(4, seed=5), torch.tensor([0, 1, 5, 6]), torch.randn(4, 3, 8, 8)
    s = float((sigmas[2] + sigmas[3]) / 2)  # the student levels sigmas[1], sigmas[2] are below S, [6], [7] above
    student, teacher = student_and_teacher(trainer, x, indices, noise, sigmas)
    c = 0.00054 * math.sqrt(3 * 8 * 8)
    expected = 0.7 * pseudo_huber(student[:2], x[:2], c).mean()

    recipe = make_trainer(small(diffusion_loss_weight=0.7, diffusion_loss_max_sigma=s))
    calls = []
    recipe.unet.register_forward_hook(lambda *args: calls.append(1))
    losses = recipe.generator_loss(x, None, sigmas, 8, indices, noise)
    assert len(calls) == 1  # the denoising term reuses the student's output
    torch.testing.assert_close(losses["diffusion"].detach(), expected)
    torch.testing.assert_close(losses["loss_diff"], expected / 0.7)
    torch.testing.assert_close(losses["consistency"].detach(), pseudo_huber(student, teacher, c).mean())
    assert losses["diffusion"].requires_grad

    none_below = make_trainer(small(diffusion_loss_weight=0.7, diffusion_loss_max_sigma=float(sigmas[1]) / 2))
    losses = none_below.generator_loss(x, None, sigmas, 8, indices, noise)
    assert losses["diffusion"].item() == 0.0 and losses["loss_diff"].item() == 0.0
    # the term enters the generator's loss, and train_step logs it
    torch.manual_seed(0)
    logs = recipe.train_step(x, 0)
    assert "loss_diff" in logs and math.isfinite(logs["loss_diff"])


# ---------------------------------------------------------------------------------------------------------------
def test_adaptive_scale_is_an_ema_of_the_median_residual_norm_floored_at_c():
    trainer = make_trainer(small(loss_scale="adaptive"))
    sigmas = trainer.scheduler.karras_sigmas(8)
    c0 = 0.00054 * math.sqrt(3 * 8 * 8)
    medians = []
    for seed, indices in ((6, torch.tensor([0, 2, 3, 5, 6])), (7, torch.tensor([1, 1, 4, 6, 2]))):
        x, noise = images(5, seed=seed), torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
        student, teacher = student_and_teacher(trainer, x, indices, noise, sigmas)
        norms = sorted((student - teacher).flatten(1).norm(dim=1).tolist())
        medians.append(norms[2])  # a batch of 5: the middle one
        losses = trainer.generator_loss(x, None, sigmas, 8, indices, noise)
        rate = ADAPTIVE_SCALE_EMA
        c = max(medians[0] if len(medians) == 1 else rate * medians[0] + (1 - rate) * medians[1], c0)
        assert losses["loss_scale"].item() == pytest.approx(c, rel=1e-5)
        torch.testing.assert_close(losses["loss_ct"], pseudo_huber(student, teacher, c).mean())
    assert medians[0] > c0 and ADAPTIVE_SCALE_EMA == 0.99
    assert trainer.loss_scale.ema.item() == pytest.approx(0.99 * medians[0] + 0.01 * medians[1], rel=1e-5)

    floored = make_trainer(small(loss_scale="adaptive", loss_type="cauchy", huber_c=1e3))
    losses = floored.generator_loss(x, None, sigmas, 8, indices, noise)
    assert losses["loss_scale"].item() == 1e3  # c never falls below --huber_c
    cauchy = torch.log1p((student - teacher).square().flatten(1).sum(1) / 1e6)
    torch.testing.assert_close(losses["loss_ct"], cauchy.mean())


def test_adaptive_scale_survives_a_checkpoint_exactly(tmp_path):
    trainer = make_trainer(small(loss_scale="adaptive", loss_type="cauchy"))
    for step in range(2):
        torch.manual_seed(step)
        logs = trainer.train_step(images(seed=step), step)
    state = json.loads(json.dumps(trainer.state_dict()))
    assert trainer_state_problems(state) == [] and state["loss_scale"]["ema"] > 0
    assert logs["loss_scale"].item() == pytest.approx(max(state["loss_scale"]["ema"], 0.00054 * math.sqrt(192)))
    other = make_trainer(small(loss_scale="adaptive", loss_type="cauchy"))
    assert other.state_dict()["loss_scale"] == {"ema": None}
    other.load_state_dict(state)
    assert torch.equal(other.loss_scale.ema, trainer.loss_scale.ema) and other.state_dict() == state
    trainer.save_state(tmp_path)  # and through a checkpoint folder (trainer_state.json)
    resumed = make_trainer(small(loss_scale="adaptive", loss_type="cauchy"))
    resumed.load_state(tmp_path)
    assert torch.equal(resumed.loss_scale.ema, trainer.loss_scale.ema)
    # a constant-scale trainer ignores the entry; edited values are refused
    make_trainer(small()).load_state_dict(state)
    assert trainer_state_problems({"loss_scale": {"ema": -1.0}}) and trainer_state_problems({"loss_scale": {"c": 1}})
    assert trainer_state_problems({"loss_scale": {"ema": None}}) == []


# ---------------------------------------------------------------------------------------------------------------
def test_flags_and_bad_settings_are_explained():
    _, config = parse_args(
        ["--loss_type", "cauchy", "--loss_scale", "adaptive", "--diffusion_loss_weight", "0.5", "--ot_pairing"]
    )
    assert (config.loss_type, config.loss_scale, config.diffusion_loss_weight, config.ot_pairing) == (
        "cauchy", "adaptive", 0.5, True,
    )  # fmt: skip
    assert config.diffusion_loss_max_sigma == 0.1
    for loss_type in ("l2", "lpips"):
        with pytest.raises(ValueError, match="--loss_scale adaptive .* use --loss_type pseudo_huber or cauchy"):
            make_distance(loss_type, loss_scale="adaptive")
    with pytest.raises(ValueError, match="--loss_scale adaptive"):
        make_trainer(small(loss_scale="adaptive", loss_type="l2"))
    with pytest.raises(ValueError, match="loss_scale"):
        make_distance("cauchy", loss_scale="median")
    with pytest.raises(ValueError, match="--diffusion_loss_weight must be in"):
        ACTConfig(diffusion_loss_weight=-1.0)
    with pytest.raises(ValueError, match="--diffusion_loss_max_sigma must be positive"):
        ACTConfig(diffusion_loss_max_sigma=0.0)
    with pytest.raises(ValueError, match="must exceed --sigma_min"):
        ACTConfig(diffusion_loss_weight=1.0, diffusion_loss_max_sigma=0.001)


def test_act_with_every_recipe_reads_nothing_back_but_the_ot_pairing():
    """ACT with class labels, the Cauchy distance, the adaptive scale and the denoising term: no host read between
    logs; --ot_pairing adds its one read (scipy's assignment), and nothing else."""
    import diffusers_act

    package = Path(diffusers_act.__file__).resolve().parent
    config = ACTConfig(
        total_steps=10, s0=4, s1=8, gp_interval=2, loss_type="cauchy", loss_scale="adaptive",
        diffusion_loss_weight=1.0, diffusion_loss_max_sigma=1.0,
    )  # fmt: skip
    trainer = make_trainer(config, num_class_embeds=3)
    window, labels = LogWindow(trainer.accelerator), torch.tensor([0, 1, 2, 0])
    for size in {trainer.curriculum(k)[0] for k in range(2)}:
        trainer.grid(size, trainer.accelerator.device)  # built once per N, from the host's grid
    with no_host_reads_from(package):
        for step in range(2):
            window.add(trainer.train_step(images(seed=step), step, labels, images(seed=10 + step), labels))
    means = window.means()
    assert {"loss_ct", "loss_g", "loss_d", "loss_diff", "loss_scale"} <= set(means)
    assert all(math.isfinite(v) for v in means.values())
    paired = make_trainer(ACTConfig(**{**config.to_dict(), "ot_pairing": True}), num_class_embeds=3)
    paired.grid(paired.curriculum(0)[0], paired.accelerator.device)
    with no_host_reads_from(package), pytest.raises(Exception, match="cpu called from coupling.py"):
        paired.train_step(images(), 0, labels, images(seed=10), labels)
