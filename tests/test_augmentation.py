# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import pytest
import torch

from diffusers_act.training import AugmentController, DifferentiableAugment


@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_identity(channels):
    x = torch.rand(4, channels, 8, 8) * 2 - 1
    assert DifferentiableAugment(channels, p=0.0)(x) is x


@pytest.mark.parametrize("channels", [1, 3])
def test_p_one_changes_every_image_and_passes_gradients(channels):
    torch.manual_seed(0)
    x = (torch.rand(16, channels, 16, 16) * 2 - 1).requires_grad_(True)
    out = DifferentiableAugment(channels, p=1.0)(x)
    assert out.shape == x.shape
    per_image_change = (out - x).detach().abs().flatten(1).amax(1)
    assert torch.all(per_image_change > 1e-2)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_intermediate_p_augments_some_images_only():
    torch.manual_seed(0)
    augment = DifferentiableAugment(3, p=0.05)
    x = torch.rand(64, 3, 8, 8) * 2 - 1
    changed = ((augment(x) - x).abs().flatten(1).amax(1) > 1e-6).float().mean().item()
    # each of 11 ops fires with probability 0.05: 1 - 0.95^11 = 43% of images expected to change
    assert 0.15 < changed < 0.75


def test_controller_moves_p_with_the_r1_ema():
    controller = AugmentController(target=0.55, rate=0.05, ema=0.93, p=0.5)
    assert controller.r1_ema == 0.55  # starts at the target, as in the authors' code
    assert controller.update(1.0) == pytest.approx(0.55)
    assert controller.r1_ema == pytest.approx(0.93 * 0.55 + 0.07 * 1.0)
    for _ in range(200):
        controller.update(0.0)
    assert controller.p == 0.0 and controller.r1_ema < 0.55
    for _ in range(200):
        controller.update(10.0)
    assert controller.p == 1.0


def test_controller_lowers_p_below_target():
    controller = AugmentController(target=0.55, rate=0.05, ema=0.93, p=0.5, r1_ema=0.1)
    assert controller.update(0.2) == pytest.approx(0.45)


def test_controller_state_round_trip():
    controller = AugmentController(p=0.3, r1_ema=0.7)
    controller.update(2.0)
    other = AugmentController()
    other.load_state_dict(controller.state_dict())
    assert other.state_dict() == controller.state_dict() == {"p": controller.p, "r1_ema": controller.r1_ema}
