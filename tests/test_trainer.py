# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import contextlib
import copy
import dataclasses
import math
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from conftest import launch_two_cpu_processes, tiny_unet
from sklearn.datasets import load_digits

from diffusers_act import ConsistencyACTScheduler
from diffusers_act.training import (
    ACTConfig,
    ACTTrainer,
    LogWindow,
    consistency_function,
    num_timesteps,
    sample_timestep_indices,
    target_ema_decay,
)

HERE = Path(__file__).resolve().parent


pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")


def make_trainer(config, accelerator=None, num_class_embeds=None, channels=3, lr=1e-3, **unet_overrides):
    torch.manual_seed(0)
    unet = tiny_unet(
        num_class_embeds=num_class_embeds, in_channels=channels, out_channels=channels, **unet_overrides
    ).train()
    config = dataclasses.replace(config, learning_rate=lr, discr_learning_rate=lr)
    return ACTTrainer.build(unet, config, accelerator or Accelerator())


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    after = module.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def images(batch=4, seed=0):
    return torch.rand(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_generator_step_touches_only_the_generator_and_discriminator_step_only_d():
    trainer = make_trainer(ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=1))
    unet, disc = trainer.unet, trainer.discriminator
    n_steps, _ = trainer.curriculum(0)
    sigmas = trainer.scheduler.karras_sigmas(n_steps)

    g0, d0, t0 = snapshot(unet), snapshot(disc), snapshot(trainer.target_unet)
    logs = trainer.generator_step(images(), None, sigmas, n_steps)
    assert changed(g0, unet) and not changed(d0, disc) and not changed(t0, trainer.target_unet)
    assert all(p.grad is None for p in disc.parameters())
    assert all(p.requires_grad for p in disc.parameters())  # frozen only during the generator step
    assert logs["adv_weight_mean"] == pytest.approx(0.3)

    g1, d1 = snapshot(unet), snapshot(disc)
    logs = trainer.discriminator_step(images(8, seed=1), None, sigmas, n_steps, step=0)
    assert changed(d1, disc) and not changed(g1, unet) and not changed(t0, trainer.target_unet)
    assert all(p.grad is None for p in unet.parameters())
    assert {"loss_d", "loss_gp", "r1"} <= set(logs)


class SignOfMeanDiscriminator(torch.nn.Module):
    """logit = mean pixel value + a learnable offset (starting at 0)."""

    def __init__(self):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, sample, timestep, class_labels=None):
        return sample.mean(dim=(1, 2, 3)) + self.offset


def test_discriminator_accuracy_is_logged_exactly():
    trainer = make_trainer(ACTConfig(adv_weight=0.3, gp_weight=0.0))
    disc = SignOfMeanDiscriminator()
    trainer.discriminator = disc
    trainer.discriminator_optimizer = torch.optim.SGD(disc.parameters(), lr=0.0)
    n_steps, _ = trainer.curriculum(0)
    sigmas = trainer.scheduler.karras_sigmas(n_steps)
    # reals (second half): 3 of 4 have a positive mean -> 3/4 right; fakes are what the generator makes of the
    # first half, whose sign we read off the generator itself
    batch = torch.cat([images(4, seed=2), torch.tensor([0.5, 0.2, 0.1, -0.3]).view(4, 1, 1, 1).expand(4, 3, 8, 8)])
    generator_state = torch.random.get_rng_state()
    logs = trainer.discriminator_step(batch, None, sigmas, n_steps, step=1)
    torch.random.set_rng_state(generator_state)
    indices = sample_timestep_indices(sigmas, 4)  # the trainer's draws, in its order: n, then z
    noise = torch.randn_like(batch[:4])
    t = sigmas[indices + 1]
    with torch.no_grad():
        fakes = consistency_function(trainer.unet, trainer.scheduler, batch[:4] + t.view(-1, 1, 1, 1) * noise, t)
    fakes_right = (fakes.mean(dim=(1, 2, 3)) < 0).float().mean().item()
    assert fakes_right != 0.75  # so that swapped signs could not pass
    assert logs["d_accuracy"] == pytest.approx((fakes_right + 0.75) / 2, abs=1e-7)


def test_target_moves_by_exactly_mu():
    trainer = make_trainer(ACTConfig(adv_weight=0.0))
    online, target = trainer.unet, trainer.target_unet
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    old = snapshot(target)
    mu = 0.93
    trainer.update_target(mu)
    for name, p in online.named_parameters():
        expected = torch.lerp(old[name], p.detach(), 1 - mu)
        assert torch.equal(target.state_dict()[name], expected)
        torch.testing.assert_close(
            target.state_dict()[name], mu * old[name] + (1 - mu) * p.detach(), rtol=0, atol=1e-6
        )
    trainer.update_target(0.0)  # mu = 0: the teacher is the current weights
    assert all(torch.equal(target.state_dict()[n], p) for n, p in online.named_parameters())


def test_without_adversarial_weight_it_is_exactly_consistency_training():
    """Three iterations of the trainer with lambda = 0 against plain consistency training written out here."""
    config = ACTConfig(total_steps=3, s0=2, s1=10, mu0=0.9, adv_weight=0.0, loss_type="pseudo_huber")
    trainer = make_trainer(config)
    torch.manual_seed(0)
    unet = tiny_unet().train()
    target = copy.deepcopy(unet)
    optimizer = torch.optim.RAdam(unet.parameters(), lr=1e-3, betas=(0.0, 0.99))
    scheduler = ConsistencyACTScheduler()
    c = 0.00054 * math.sqrt(3 * 8 * 8)

    for step in range(3):
        x = images(6, seed=step)
        torch.manual_seed(1000 + step)
        logs = trainer.train_step(x, step)

        torch.manual_seed(1000 + step)
        n_steps = num_timesteps(step, 3, 2, 10, "ct")
        mu = target_ema_decay(n_steps, 2, 0.9)
        sigmas = scheduler.karras_sigmas(n_steps)
        n = torch.randint(0, n_steps - 1, (6,))
        z = torch.randn_like(x)
        student = consistency_function(unet, scheduler, x + sigmas[n + 1].view(-1, 1, 1, 1) * z, sigmas[n + 1])
        with torch.no_grad():
            teacher = consistency_function(target, scheduler, x + sigmas[n].view(-1, 1, 1, 1) * z, sigmas[n])
        distance = torch.sqrt((student - teacher).square().flatten(1).sum(dim=1) + c**2) - c
        loss = distance.mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            for p_target, p in zip(target.parameters(), unet.parameters(), strict=True):
                p_target.lerp_(p, 1 - mu)

        assert logs["loss_ct"] == loss.item() and logs["mu"] == mu and logs["num_timesteps"] == n_steps
        for mine, theirs in ((trainer.unet, unet), (trainer.target_unet, target)):
            ours, ref = mine.state_dict(), theirs.state_dict()
            assert all(torch.equal(ours[k], ref[k]) for k in ref), f"step {step}"


def digits(size=None):
    data = torch.from_numpy(load_digits().images).float()[:, None] / 16 * 2 - 1
    labels = torch.from_numpy(load_digits().target)
    return data, labels


@pytest.mark.slow
def test_short_digits_run_decreases_the_consistency_loss():
    """Consistency training (improved-CT options) on the 8x8 digits: the consistency error (L2 between f at
    adjacent grid points) on a fixed evaluation batch with fixed noise falls; the reported loss stays finite."""
    x, _ = digits()
    n_steps = 20
    config = ACTConfig(
        total_steps=300,
        s0=n_steps,
        s1=n_steps,
        num_timesteps_schedule="official",
        mu0=0.0,
        index_distribution="lognormal",
        loss_weighting="inverse_delta",
        adv_weight=0.0,
    )
    trainer = make_trainer(config, channels=1, lr=5e-4, block_out_channels=(16, 32), norm_num_groups=8)
    trainer.optimizer, trainer.lr_schedulers = torch.optim.Adam(trainer.unet.parameters(), lr=5e-4), ()
    scheduler, unet = trainer.scheduler, trainer.unet
    g = torch.Generator().manual_seed(1)
    evaluation = x[torch.randperm(len(x), generator=g)[:256]]
    z = torch.randn(evaluation.shape, generator=g)
    n = torch.randint(0, n_steps - 1, (256,), generator=g)
    sigmas = scheduler.karras_sigmas(n_steps)

    def ct_loss():
        with torch.no_grad():
            a = consistency_function(unet, scheduler, evaluation + sigmas[n + 1].view(-1, 1, 1, 1) * z, sigmas[n + 1])
            b = consistency_function(unet, scheduler, evaluation + sigmas[n].view(-1, 1, 1, 1) * z, sigmas[n])
        return (a - b).square().mean().item()

    before = ct_loss()
    torch.manual_seed(0)
    for step in range(300):
        logs = trainer.train_step(x[torch.randint(0, len(x), (32,))], step)
        assert math.isfinite(logs["loss_ct"])
    after = ct_loss()
    assert after < 0.75 * before, (before, after)


@pytest.mark.slow
def test_short_act_run_on_digits_keeps_all_losses_finite():
    x, labels = digits()
    config = ACTConfig(
        total_steps=60,
        s0=10,
        s1=20,
        mu0=0.9,
        adv_weight=0.3,
        adv_weight_mid=0.3,
        gp_interval=4,
        augment=True,
        aug_p=0.1,
    )
    trainer = make_trainer(config, num_class_embeds=10, channels=1)
    torch.manual_seed(0)
    seen = set()
    for step in range(60):
        idx, d_idx = torch.randint(0, len(x), (16,)), torch.randint(0, len(x), (16,))
        logs = trainer.train_step(x[idx], step, labels[idx], x[d_idx], labels[d_idx])
        seen |= set(logs)
        assert all(math.isfinite(v) for v in logs.values()), logs
        assert 0.0 <= logs["aug_p"] <= 1.0
    assert {"loss_ct", "loss_g", "loss_d", "loss_gp", "r1", "aug_p", "mu", "num_timesteps"} <= seen
    assert trainer.state_dict()["augment"]["p"] == logs["aug_p"]


def test_gradient_accumulation_updates_target_once_per_optimizer_step():
    accelerator = Accelerator(gradient_accumulation_steps=2)
    trainer = make_trainer(ACTConfig(total_steps=10, s0=4, s1=4, gp_interval=1), accelerator)
    g0, d0, t0 = snapshot(trainer.unet), snapshot(trainer.discriminator), snapshot(trainer.target_unet)
    trainer.train_step(images(), 0, discriminator_images=images(8, 1))
    assert not changed(g0, trainer.unet) and not changed(d0, trainer.discriminator)
    assert not changed(t0, trainer.target_unet)
    trainer.train_step(images(seed=2), 0, discriminator_images=images(8, 3))
    assert changed(g0, trainer.unet) and changed(d0, trainer.discriminator) and changed(t0, trainer.target_unet)


def test_bf16_autocast_on_cpu():
    accelerator = Accelerator(mixed_precision="bf16")
    trainer = make_trainer(ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=1, augment=True, aug_p=0.5), accelerator)
    for step in range(2):
        logs = trainer.train_step(images(), step, discriminator_images=images(8, 1))
        assert all(math.isfinite(v) for v in logs.values())
    assert all(p.dtype == torch.float32 for p in trainer.unet.parameters())


def test_trainer_state_round_trip():
    trainer = make_trainer(ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=1, augment=True, aug_p=0.5))
    trainer.train_step(images(), 0, discriminator_images=images(8, 1))
    state = trainer.state_dict()
    other = make_trainer(ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=1, augment=True, aug_p=0.0))
    other.load_state_dict(state)
    assert other.state_dict() == state and other.augment.p == state["augment"]["p"]


def test_bad_setups_are_explained():
    with pytest.raises(ValueError, match="needs a `discriminator`"):
        ACTTrainer(tiny_unet(), tiny_unet(), ConsistencyACTScheduler(), None, ACTConfig(adv_weight=0.3))
    trainer = make_trainer(ACTConfig(total_steps=10, s0=4, s1=8))
    with pytest.raises(ValueError, match="discriminator_images"):
        trainer.train_step(images(), 0)
    with pytest.raises(ValueError, match="is odd: ACT's discriminator batch is half generated"):
        trainer.train_step(images(), 0, discriminator_images=images(5))


@pytest.mark.slow
def test_two_processes_end_with_identical_state(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on CPU (gloo): same weights, target, D and p on both ranks,
    after iterations on different data."""
    result = launch_two_cpu_processes(str(HERE / "distributed_train_script.py"), str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world_size"] == 2
    assert rank0["logs"]["loss_ct"] != rank1["logs"]["loss_ct"]  # the ranks did see different data
    for key in ("unet", "target", "discriminator"):
        assert rank0[key].keys() == rank1[key].keys()
        assert all(torch.equal(rank0[key][k], rank1[key][k]) for k in rank0[key]), key
    assert rank0["trainer"] == rank1["trainer"] and rank0["trainer"]["augment"]["p"] == pytest.approx(0.35)


def test_normalised_loss_weight_divides_by_its_mean():
    from diffusers_act.training import expected_consistency_loss_weight

    common = dict(
        total_steps=10,
        s0=8,
        s1=8,
        num_timesteps_schedule="official",
        adv_weight=0.0,
        index_distribution="lognormal",
        loss_weighting="inverse_delta",
    )
    plain = make_trainer(ACTConfig(**common))
    normalised = make_trainer(ACTConfig(**common, normalize_loss_weight=True))
    torch.manual_seed(0)
    a = float(plain.train_step(images(), 0)["loss_ct"])
    torch.manual_seed(0)
    b = float(normalised.train_step(images(), 0)["loss_ct"])
    mean_weight = expected_consistency_loss_weight(plain.scheduler.karras_sigmas(8), "inverse_delta", "lognormal")
    assert b == pytest.approx(a / mean_weight, rel=1e-5)


class HostReadError(RuntimeError):
    pass


@contextlib.contextmanager
def no_host_reads_from(package_dir: Path):
    """CPU stand-in for `torch.cuda.set_sync_debug_mode("error")`: any read of a tensor's value on the host
    (`item`, `cpu`, `tolist`, `numpy`, conversion to bool, float or int) made by code under `package_dir` raises."""
    names = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def guard(name):
        original = originals[name]

        def guarded(self, *args, **kwargs):
            caller = Path(sys._getframe(1).f_code.co_filename).resolve()
            if package_dir in caller.parents:
                raise HostReadError(f"Tensor.{name} called from {caller.name}:{sys._getframe(1).f_lineno}")
            return original(self, *args, **kwargs)

        return guarded

    for name in names:
        setattr(torch.Tensor, name, guard(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_an_iteration_reads_nothing_back_from_the_device():
    """ACT with everything on (log-normal n, normalised 1/dt weight, EMA, ACT-Aug, R1 every 2 iterations, class
    labels): iterations between logs make no host read; the window's values are read once, when logged."""
    import diffusers_act

    package = Path(diffusers_act.__file__).resolve().parent
    config = ACTConfig(
        total_steps=20, s0=4, s1=8, gp_interval=2, augment=True, aug_p=0.3, aug_target=0.0,
        index_distribution="lognormal", loss_weighting="inverse_delta", normalize_loss_weight=True, use_ema=True,
    )  # fmt: skip
    trainer = make_trainer(config, num_class_embeds=3)
    window = LogWindow(trainer.accelerator)
    for size in {trainer.curriculum(k)[0] for k in range(config.total_steps)}:
        trainer.grid(size, trainer.accelerator.device)  # built once per N, from the host's grid
    labels = torch.tensor([0, 1, 2, 0])
    with no_host_reads_from(package):
        for step in range(4):  # two of them with R1 and a controller update
            window.add(trainer.train_step(images(seed=step), step, labels, images(seed=10 + step), labels))
        with pytest.raises(HostReadError, match="tolist called from monitoring.py"):  # the guard itself works
            window.means()
    means = window.means()
    assert {"loss_ct", "loss_g", "loss_d", "loss_gp", "r1", "aug_p", "d_accuracy"} <= set(means)
    assert means["aug_p"] == pytest.approx((0.35 + 0.35 + 0.4 + 0.4) / 4)  # p rises by 0.05 at each R1 step
    assert window.all_finite(trainer.unet, trainer.discriminator)


@pytest.mark.slow
def test_torch_compile_gives_the_eager_losses_and_weights():
    """`--torch_compile` (generator, target, D without R1) computes the same iterations as eager code: the same seed
    gives the same losses, to float tolerance, over iterations with and without R1."""
    config = ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=2, augment=True, aug_p=0.2)
    runs = []
    for compiled in (False, True):
        trainer = make_trainer(config)
        if compiled:
            trainer.compile()
        torch.manual_seed(1)
        logs = [trainer.train_step(images(seed=k), k, None, images(seed=10 + k)) for k in range(1, 5)]
        runs.append((logs, snapshot(trainer.unet), snapshot(trainer.discriminator), trainer))
    (eager_logs, eager_unet, eager_d, _), (compiled_logs, compiled_unet, compiled_d, trainer) = runs
    assert set(trainer._compiled) == {"unet", "target", "generator_no_grad", "discriminator"}
    for a, b in zip(eager_logs, compiled_logs, strict=True):
        assert set(a) == set(b)
        for key in ("loss_ct", "loss_g", "loss_d"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
    assert "loss_gp" in eager_logs[1] and "loss_gp" in compiled_logs[1]  # iteration 2: R1, eager D in both
    for name in eager_unet:
        torch.testing.assert_close(compiled_unet[name], eager_unet[name], rtol=1e-3, atol=1e-5)
    for name in eager_d:
        torch.testing.assert_close(compiled_d[name], eager_d[name], rtol=1e-3, atol=1e-5)


def test_index_probabilities_are_computed_once_per_grid(monkeypatch):
    import diffusers_act.training.trainer as trainer_module
    from diffusers_act.training.curricula import lognormal_index_probabilities

    calls = []
    original = trainer_module.training_grid
    monkeypatch.setattr(trainer_module, "training_grid", lambda *a, **k: calls.append(1) or original(*a, **k))
    config = ACTConfig(total_steps=6, s0=4, s1=8, index_distribution="lognormal", adv_weight=0.0)
    trainer = make_trainer(config)
    for step in range(6):
        trainer.train_step(images(seed=step), step)
    sizes = {trainer.curriculum(k)[0] for k in range(6)}
    assert len(sizes) > 1 and len(calls) == len(sizes)  # one per N, not one per draw (two per iteration)
    grid = trainer.grid(trainer.curriculum(0)[0], torch.device("cpu"))
    torch.testing.assert_close(grid.index_probabilities, lognormal_index_probabilities(grid.sigmas))


def test_device_batches_read_nothing_back_from_the_device():
    """`--data_on_device`: drawing batches (shuffle, flips, labels) reads no tensor value on the host."""
    import diffusers_act
    from diffusers_act.training.batches import DeviceBatches

    package = Path(diffusers_act.__file__).resolve().parent
    data = {
        "pixel_values": torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8),
        "labels": torch.arange(40) % 10,
    }
    batches = DeviceBatches(data, 8, seed=0, device=torch.device("cpu"), random_flip=True).resumable(3)
    with no_host_reads_from(package):
        drawn = [next(batches) for _ in range(7)]  # across an epoch boundary
    assert [epoch for epoch, _ in drawn] == [0, 0, 1, 1, 1, 1, 1]
    assert all(b["pixel_values"].shape == (8, 1, 8, 8) and b["labels"].shape == (8,) for _, b in drawn)


class TimeRecordingDiscriminator(SignOfMeanDiscriminator):
    """SignOfMeanDiscriminator that records the time input of every call."""

    def __init__(self):
        super().__init__()
        self.times = []

    def forward(self, sample, timestep, class_labels=None):
        self.times.append(timestep.detach().clone())
        return super().forward(sample, timestep, class_labels)


@pytest.mark.parametrize("levels", ["shared", "independent"])
def test_discriminator_noise_levels_shared_or_drawn_for_the_reals(levels):
    """The paper's D step shares one n per fake/real pair; the authors' code draws the reals' own n. The loss is the
    lambda-weighted GAN loss with each image's own lambda, recomputed here from the trainer's draws."""
    config = ACTConfig(total_steps=10, s0=40, s1=40, adv_weight=0.6, adv_weight_mid=0.2, gp_weight=0.0,
                       discriminator_noise_levels=levels)  # fmt: skip
    trainer = make_trainer(config)
    trainer.discriminator = disc = TimeRecordingDiscriminator()
    trainer.discriminator_optimizer = torch.optim.SGD(disc.parameters(), lr=0.0)
    n_steps, _ = trainer.curriculum(0)
    sigmas = trainer.scheduler.karras_sigmas(n_steps)
    batch = images(16, seed=3)
    state = torch.random.get_rng_state()
    logs = trainer.discriminator_step(batch, None, sigmas, n_steps, step=1)
    torch.random.set_rng_state(state)
    fake_n = sample_timestep_indices(sigmas, 8)  # the trainer's draws, in its order: n and z, then the reals' n
    noise = torch.randn_like(batch[:8])
    real_n = sample_timestep_indices(sigmas, 8) if levels == "independent" else fake_n
    assert (real_n != fake_n).any() == (levels == "independent")
    expected_t = trainer.scheduler.precondition_noise(torch.cat([sigmas[fake_n + 1], sigmas[real_n + 1]]))
    assert torch.equal(disc.times[0], expected_t)
    t = sigmas[fake_n + 1]
    with torch.no_grad():
        fakes = consistency_function(trainer.unet, trainer.scheduler, batch[:8] + t.view(-1, 1, 1, 1) * noise, t)
    weight = lambda n: 0.6 * ((n + 1) / (n_steps - 1)) ** math.log(0.2 / 0.6, 0.5)  # noqa: E731 (paper Eq. 10)
    fake_logits, real_logits = fakes.mean(dim=(1, 2, 3)), batch[8:].mean(dim=(1, 2, 3))
    loss = weight(fake_n) * torch.nn.functional.softplus(fake_logits)
    loss = loss + weight(real_n) * torch.nn.functional.softplus(-real_logits)
    assert logs["loss_d"].item() == pytest.approx(loss.mean().item(), rel=1e-5)


def test_r1_is_taken_on_the_augmented_reals_when_augmentation_is_on():
    """With p = 1 the discriminator sees augmented reals, and R1 is the squared gradient of D w.r.t. what it saw: for
    D(x) = mean(x) + b that gradient is 1 / (C H W) per pixel, so ||grad||^2 = 1 / (C H W) exactly, whatever the
    augmentation did; against the un-augmented images (a wrong implementation) a gradient through the augmentation's
    resampling would differ."""
    from diffusers_act.training.augmentation import DifferentiableAugment

    config = ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=1, gp_weight=1.0, augment=True, aug_p=1.0,
                       aug_target=100.0)  # fmt: skip
    trainer = make_trainer(config)
    trainer.discriminator = disc = TimeRecordingDiscriminator()
    trainer.discriminator_optimizer = torch.optim.SGD(disc.parameters(), lr=0.0)
    seen = []
    augment = trainer.augment

    class Spy(torch.nn.Module):
        def forward(self, x):
            out = augment(x)
            seen.append(out.detach().clone())
            return out

    trainer.augment = Spy()
    trainer.augment.p = 1.0
    n_steps, _ = trainer.curriculum(0)
    sigmas = trainer.scheduler.karras_sigmas(n_steps)
    batch = images(8, seed=4)
    logs = trainer.discriminator_step(batch, None, sigmas, n_steps, step=1)
    assert not torch.allclose(seen[0][4:], batch[4:])  # the reals D saw were augmented
    assert logs["r1"].item() == pytest.approx(1 / (3 * 8 * 8), rel=1e-6)
    assert isinstance(augment, DifferentiableAugment) and float(augment.p) == 1.0


def test_ada_rule_sets_the_step_of_p_from_the_runs_batch():
    from diffusers_act.training.augmentation import ada_rate

    assert ada_rate(2 * 80, 16) == pytest.approx(0.00512)  # the authors' CIFAR-10 run: B = 80, one GPU, I_gp = 16
    config = ACTConfig(total_steps=10, s0=4, s1=8, gp_interval=2, augment=True, aug_rate=None, aug_target=0.0)
    trainer = make_trainer(config)
    trainer.train_step(images(4), 0, discriminator_images=images(4, seed=1))
    assert trainer.augment_controller.rate == pytest.approx(8 * 2 / 500_000)  # 2B images x I_gp / 500k
    assert float(trainer.augment_controller.p) == pytest.approx(8 * 2 / 500_000)  # R1 at or above tau 0: p up a step
