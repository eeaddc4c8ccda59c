# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import math

import pytest
import torch

from diffusers_act.training import AugmentController, DifferentiableAugment
from diffusers_act.training.augmentation import COLOUR_OPS, GEOMETRIC_OPS

ALL_OPS = GEOMETRIC_OPS + COLOUR_OPS
LUMA = torch.ones(3) / math.sqrt(3)


def only(op: str, value, batch: int = 1) -> dict:
    return {op: torch.as_tensor(value, dtype=torch.float32).expand(batch, *torch.as_tensor(value).shape).clone()}


@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_identity(channels):
    x = torch.rand(4, channels, 8, 8) * 2 - 1
    assert DifferentiableAugment(channels, p=0.0)(x) is x
    # a tensor p of 0 (what the controller keeps) draws parameters but changes nothing
    assert torch.equal(DifferentiableAugment(channels, p=torch.tensor(0.0))(x), x)


def test_parameter_distributions_are_adas():
    """p = 1: every op fires; each parameter has StyleGAN2-ADA's distribution (20,000 draws)."""
    n = 20_000
    params = DifferentiableAugment(3, p=1.0).sample_params(n, torch.device("cpu"), torch.Generator().manual_seed(0))
    tol = 4 / math.sqrt(n)  # about 4 standard errors of a mean with unit spread
    assert set(params) == set(ALL_OPS)
    for op in ("xflip", "lumaflip"):  # 0 or 1 with equal odds
        assert set(params[op].unique().tolist()) == {0.0, 1.0} and abs(params[op].mean() - 0.5) < tol
    counts = torch.bincount(params["rotate90"].long(), minlength=4) / n
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=tol)
    uniform_std = 1 / math.sqrt(3)  # std of U(-1, 1)
    xint = params["xint"]
    assert xint.abs().max() <= 0.125 and abs(xint.std() - 0.125 * uniform_std) < 0.125 * tol
    assert abs(params["xfrac"].std() - 0.125) < 0.125 * tol and abs(params["xfrac"].mean()) < 0.125 * tol
    for op, log2_std in (("scale", 0.2), ("aniso", 0.2), ("contrast", 0.5), ("saturation", 1.0)):
        log2 = torch.log2(params[op])
        assert abs(log2.std() - log2_std) < log2_std * tol and abs(log2.mean()) < log2_std * tol, op
    assert abs(params["brightness"].std() - 0.2) < 0.2 * tol and abs(params["brightness"].mean()) < 0.2 * tol
    for angles in (params["hue"], params["rotate"][:, 0], params["rotate"][:, 1]):
        assert angles.abs().max() <= math.pi and abs(angles.std() - math.pi * uniform_std) < math.pi * tol


def test_each_op_fires_with_probability_p_and_rotations_with_one_minus_sqrt():
    n, p = 20_000, 0.3
    params = DifferentiableAugment(3, p=p).sample_params(n, torch.device("cpu"), torch.Generator().manual_seed(1))
    tol = 4 * math.sqrt(p * (1 - p) / n)
    identity = {"scale": 1.0, "aniso": 1.0, "contrast": 1.0, "saturation": 1.0}
    for op in ("xint", "scale", "aniso", "xfrac", "brightness", "contrast", "hue", "saturation"):
        value = params[op] if params[op].dim() == 1 else params[op][:, 0]
        assert abs((value != identity.get(op, 0.0)).float().mean() - p) < tol, op
    # flips and 90-degree rotations fire with p, then pick the identity half / a quarter of the time
    assert abs((params["xflip"] != 0).float().mean() - p / 2) < tol
    assert abs((params["rotate90"] != 0).float().mean() - 3 * p / 4) < tol
    p_rot = 1 - math.sqrt(1 - p)  # so that at least one of the two rotations fires with probability p
    fired = params["rotate"] != 0
    assert torch.allclose(fired.float().mean(0), torch.tensor([p_rot, p_rot]), atol=tol)
    assert abs(fired.any(1).float().mean() - p) < tol


def test_geometric_ops_are_exact_where_they_should_be():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    augment = DifferentiableAugment(3)
    assert torch.allclose(augment(x, only("xflip", 1.0)), torch.flip(x, [3]), atol=1e-5)
    assert torch.allclose(augment(x, only("xflip", 0.0)), x, atol=1e-5)
    quarter = augment(x, only("rotate90", 1.0))
    assert min((quarter - torch.rot90(x, k, (2, 3))).abs().max() for k in (1, 3)) < 1e-5
    assert torch.allclose(augment(x, only("rotate90", 2.0)), torch.rot90(x, 2, (2, 3)), atol=1e-5)
    # xint of 0.125 of 16 pixels = 2 pixels right and down; the uncovered border is reflected
    shifted = augment(x, only("xint", [0.125, 0.125]))
    assert torch.allclose(shifted[..., 2:, 2:], x[..., :-2, :-2], atol=1e-5)
    # isotropic scaling by s: output pixel u samples the input at u / s (origin at the centre)
    matrix = DifferentiableAugment.geometric_matrix(only("scale", 2.0), 16, 16, torch.zeros(1))
    assert torch.allclose(matrix[0], torch.diag(torch.tensor([0.5, 0.5, 1.0])))
    matrix = DifferentiableAugment.geometric_matrix(only("aniso", 2.0), 16, 16, torch.zeros(1))
    assert torch.allclose(matrix[0], torch.diag(torch.tensor([0.5, 2.0, 1.0])))
    # a half-pixel fractional shift interpolates neighbours bilinearly
    half = augment(x, only("xfrac", [0.5 / 16, 0.0]))
    assert torch.allclose(half[..., 1:], (x[..., 1:] + x[..., :-1]) / 2, atol=1e-5)


def test_colour_ops_follow_ada_on_rgb_and_grey():
    torch.manual_seed(0)
    rgb, grey = torch.rand(1, 3, 4, 4) * 2 - 1, torch.rand(1, 1, 4, 4) * 2 - 1
    augment, augment_grey = DifferentiableAugment(3), DifferentiableAugment(1)
    assert torch.allclose(augment(rgb, only("brightness", 0.3)), rgb + 0.3, atol=1e-6)
    assert torch.allclose(augment(rgb, only("contrast", 1.5)), rgb * 1.5, atol=1e-6)  # around 0, mid-range
    luma = torch.einsum("c,bchw->bhw", LUMA, rgb)[:, None]
    assert torch.allclose(augment(rgb, only("lumaflip", 1.0)), rgb - 2 * LUMA[:, None, None] * luma, atol=1e-6)
    hue = augment(rgb, only("hue", 2.0))
    assert torch.allclose(hue.sum(1), rgb.sum(1), atol=1e-5)  # luma kept
    chroma = rgb - LUMA[:, None, None] * luma
    assert torch.allclose(hue.norm(dim=1), rgb.norm(dim=1), atol=1e-5) and not torch.allclose(hue, rgb, atol=1e-2)
    saturated = augment(rgb, only("saturation", 3.0))
    assert torch.allclose(saturated, rgb + 2 * chroma, atol=1e-5)
    # grey: brightness and contrast as on RGB, luma flip negates, hue and saturation do nothing
    assert torch.allclose(augment_grey(grey, only("brightness", -0.2)), grey - 0.2, atol=1e-6)
    assert torch.allclose(augment_grey(grey, only("contrast", 0.5)), grey * 0.5, atol=1e-6)
    assert torch.allclose(augment_grey(grey, only("lumaflip", 1.0)), -grey, atol=1e-6)
    assert torch.allclose(augment_grey(grey, {**only("hue", 1.0), **only("saturation", 4.0)}), grey, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_differentiable_for_every_op(channels):
    augment = DifferentiableAugment(channels, p=1.0)
    params = augment.sample_params(2, torch.device("cpu"), torch.Generator().manual_seed(3))
    params = {k: v.double() for k, v in params.items()}
    x = (torch.rand(2, channels, 6, 6, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda images: augment(images, params), (x,))


def test_one_call_draws_independent_parameters_for_every_image():
    """Fakes and reals go through one call: the same image twice in a batch is augmented differently."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16).expand(8, -1, -1, -1) * 2 - 1
    out = DifferentiableAugment(3, p=1.0)(x)
    differences = (out[:4] - out[4:]).abs().flatten(1).amax(1)
    assert torch.all(differences > 1e-2)


def test_unknown_op_and_colour_ops_dropped_for_other_channel_counts():
    with pytest.raises(ValueError, match="Unknown augmentation op"):
        DifferentiableAugment(3, ops=("cutout",))
    assert DifferentiableAugment(4).ops == GEOMETRIC_OPS


def test_controller_moves_p_with_the_r1_ema():
    controller = AugmentController(target=0.55, rate=0.05, ema=0.93, p=0.5)
    assert float(controller.r1_ema) == 0.55  # starts at the target, as in the authors' code
    assert float(controller.update(1.0)) == pytest.approx(0.55)
    assert float(controller.r1_ema) == pytest.approx(0.93 * 0.55 + 0.07 * 1.0)
    for _ in range(200):
        controller.update(0.0)
    assert float(controller.p) == 0.0 and float(controller.r1_ema) < 0.55
    for _ in range(200):
        controller.update(torch.tensor(10.0))
    assert float(controller.p) == 1.0


def test_controller_lowers_p_below_target():
    controller = AugmentController(target=0.55, rate=0.05, ema=0.93, p=0.5, r1_ema=0.1)
    assert float(controller.update(0.2)) == pytest.approx(0.45)


def test_controller_state_round_trip():
    controller = AugmentController(p=0.3, r1_ema=0.7)
    controller.update(2.0)
    other = AugmentController()
    other.load_state_dict(controller.state_dict())
    state = {"p": float(controller.p), "r1_ema": float(controller.r1_ema)}
    assert other.state_dict() == controller.state_dict() == state
