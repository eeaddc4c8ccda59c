# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import math

import numpy as np
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
    """resample="bilinear" (for "ada", see the tests below: its flips and 90-degree rotations filter slightly)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    augment = DifferentiableAugment(3, resample="bilinear")
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


# PyWavelets' sym6 decomposition low-pass (dec_lo), written out here so that the reference below is independent
SYM6_DEC_LO = np.array([
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
    0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
    0.0017677118642428036, -0.007800708325034148,
])  # fmt: skip


def numpy_geometric_matrix(scale, rotations, aniso, xfrac, height, width):
    """Output-to-input pixel map (origin at the centre) of ADA's scale, rotate, aniso, rotate, xfrac, in NumPy."""

    def rotation(angle):
        return np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])

    shift = np.array([[1, 0, -xfrac[0] * width], [0, 1, -xfrac[1] * height], [0, 0, 1]])
    return (np.diag([1 / scale, 1 / scale, 1]) @ rotation(rotations[0]) @ np.diag([1 / aniso, aniso, 1])
            @ rotation(rotations[1]) @ shift)  # fmt: skip


def numpy_ada_resample(images, matrices):
    """
    StyleGAN2-ADA's geometric resampling written out in NumPy, for `(batch, channels, h, w)` images: reflect-pad by
    the batch's corner reach plus 6 pixels, 2x upsample (sample 2i is pixel i), sample each 2x output point
    bilinearly (zeros outside), 2x downsample (pixel i is the 2x output sample 2i + 6, 3 pixels of border).
    """
    _, _, h, w = images.shape
    taps = SYM6_DEC_LO / SYM6_DEC_LO.sum()
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = np.array([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]])
    reach = np.concatenate([m @ corners for m in matrices], 1)[:2]  # (xy, batch * 4)
    left, top = (int(np.ceil(np.clip(-reach[i].min() + 6 - c, 0, n - 1))) for i, c, n in ((0, cx, w), (1, cy, h)))
    right, bottom = (int(np.ceil(np.clip(reach[i].max() + 6 - c, 0, n - 1))) for i, c, n in ((0, cx, w), (1, cy, h)))

    def reflect(index, n):  # mirror about the edge pixels, which are not repeated
        index = np.abs(index)
        return np.where(index > n - 1, 2 * (n - 1) - index, index)

    def upsample(signal):  # zero-stuff, convolve with 2 * taps; the filter's delay of 5 puts sample 2i at pixel i
        stuffed = np.zeros(2 * len(signal))
        stuffed[::2] = signal
        return np.convolve(stuffed, 2 * taps)[5 : 5 + len(stuffed)]

    def downsample(signal):  # correlate with the taps (the flipped filter), keeping 1x pixel i at 2x sample 2i + 6
        return np.array([np.dot(taps, signal[2 * i + 1 : 2 * i + 13]) for i in range((len(signal) - 12) // 2)])

    out = np.zeros(images.shape)
    for b, (image, matrix) in enumerate(zip(images, matrices, strict=True)):
        padded = image[:, reflect(np.arange(-top, h + bottom), h)][:, :, reflect(np.arange(-left, w + right), w)]
        big = np.apply_along_axis(upsample, 2, np.apply_along_axis(upsample, 1, padded))
        rows, cols = np.meshgrid(np.arange(2 * h + 12), np.arange(2 * w + 12), indexing="ij")
        u, v = cols / 2 - 3 - cx, rows / 2 - 3 - cy  # 1x output coordinates, origin at the centre
        src_x = matrix[0, 0] * u + matrix[0, 1] * v + matrix[0, 2]
        src_y = matrix[1, 0] * u + matrix[1, 1] * v + matrix[1, 2]
        col, row = 2 * (src_x + cx + left), 2 * (src_y + cy + top)  # 2x sample indices of the padded image
        col0, row0 = np.floor(col).astype(int), np.floor(row).astype(int)
        sampled = np.zeros((image.shape[0], *col.shape))
        for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
            r, c = row0 + dr, col0 + dc
            weight = (1 - np.abs(row - r)) * (1 - np.abs(col - c))
            valid = (r >= 0) & (r < big.shape[1]) & (c >= 0) & (c < big.shape[2])
            sampled += np.where(valid, weight * big[:, r.clip(0, big.shape[1] - 1), c.clip(0, big.shape[2] - 1)], 0)
        out[b] = np.apply_along_axis(downsample, 2, np.apply_along_axis(downsample, 1, sampled))
    return out


ADA_CASES = (  # (scale, (pre-rotation, post-rotation), aniso, xfrac) per image of a batch of two
    (1.0, (0.5, -1.1), 1.3, (0.031, -0.047)),
    (0.85, (-2.3, 0.4), 0.8, (-0.09, 0.013)),
)


def ada_params(cases, dtype=torch.float64) -> dict:
    ops = ("scale", "rotate", "aniso", "xfrac")
    return {op: torch.tensor(values, dtype=dtype) for op, values in zip(ops, zip(*cases, strict=True), strict=True)}


def test_ada_resampling_matches_a_numpy_reference():
    """Pre-rotation, anisotropic and isotropic scaling, post-rotation and a fractional shift, float64, to 1e-10."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 3, 16, 16))
    matrices = [numpy_geometric_matrix(*case, 16, 16) for case in ADA_CASES]
    out = DifferentiableAugment(3)(torch.from_numpy(images), ada_params(ADA_CASES))
    assert np.abs(out.numpy() - numpy_ada_resample(images, matrices)).max() < 1e-10
    # a batch of one: the padding from its own corners only
    alone = DifferentiableAugment(3)(torch.from_numpy(images[:1]), ada_params(ADA_CASES[:1]))
    assert np.abs(alone.numpy() - numpy_ada_resample(images[:1], matrices[:1])).max() < 1e-10


def test_ada_identity_and_integer_ops_map_pixels_as_ada_does():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    augment = DifferentiableAugment(3, resample="ada")
    # image 0 at every op's identity value comes back untouched, though image 1 is rotated (what p < 1 draws)
    identity = {"xflip": 0.0, "rotate90": 0.0, "xint": [0.0, 0.0], "scale": 1.0, "aniso": 1.0, "xfrac": [0.0, 0.0]}
    params = {op: only(op, value, 2)[op].double() for op, value in identity.items()}
    params["rotate"] = torch.tensor([[0.0, 0.0], [0.3, 0.0]], dtype=torch.float64)
    assert torch.equal(augment(x, params)[0], x[0])
    assert torch.equal(augment(x.float(), {op: value.float() for op, value in params.items()})[0], x[0].float())
    # 2 pixels right and down, the uncovered border mirrored about the edge pixel (reflect padding). This one goes
    # through the filters: their 2x up- then down-sampling is the identity because sym6 is orthogonal, but only to
    # float precision: measured 3.4e-12 in float64 (the published coefficients are orthogonal to ~1e-12) and 4.5e-6
    # in float32 (grid_sample's float32 coordinates; the bilinear path measures 1.5e-6 on an identity)
    expected = torch.nn.functional.pad(x, [2, 0, 2, 0], mode="reflect")[..., :16, :16]
    assert (augment(x, only("xint", [0.125, 0.125], 2)) - expected).abs().max() < 1e-10
    assert (augment(x.float(), only("xint", [0.125, 0.125], 2)) - expected.float()).abs().max() < 1e-5
    # flips and 90-degree rotations go through the same filtered path, and sym6 is not symmetric, so they are not
    # exact permutations (measured: 0.25 to 0.39 off torch.flip / rot90 on this noise, as with ADA's own code);
    # they match the reference
    flip = np.diag([-1.0, 1.0, 1.0])
    assert np.abs(augment(x, only("xflip", 1.0, 2)).numpy() - numpy_ada_resample(x.numpy(), [flip] * 2)).max() < 1e-10
    for k in (1, 2, 3):
        turn = numpy_geometric_matrix(1.0, (-math.pi / 2 * k, 0.0), 1.0, (0.0, 0.0), 16, 16)
        reference = numpy_ada_resample(x.numpy(), [turn] * 2)
        assert np.abs(augment(x, only("rotate90", float(k), 2)).numpy() - reference).max() < 1e-10


def test_ada_keeps_more_high_frequencies_than_bilinear():
    """White noise rotated by 10 degrees: energy above half Nyquist (radius 0.25 cycles per pixel) kept."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 64, 64, dtype=torch.float64)
    params = {"rotate": torch.tensor([[math.radians(10), 0.0]] * 8, dtype=torch.float64)}
    freq = torch.fft.fftfreq(64, dtype=torch.float64)
    high = (freq[:, None] ** 2 + freq[None, :] ** 2).sqrt() > 0.25

    def energy(images):
        return torch.fft.fft2(images).abs().square()[..., high].sum()

    kept = {mode: float(energy(DifferentiableAugment(3, resample=mode)(x, params)) / energy(x))
            for mode in ("ada", "bilinear")}  # fmt: skip
    # measured: ada 0.558, bilinear 0.352
    assert kept["ada"] > 0.52 and kept["bilinear"] < 0.39 and kept["ada"] > 1.4 * kept["bilinear"]


def test_ada_gradients_are_the_reference_transpose_and_twice_differentiable():
    augment = DifferentiableAugment(1)
    case = ((0.9, (0.4, -0.2), 1.2, (0.03, -0.05)),)
    params = ada_params(case)
    x = (torch.rand(1, 1, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda images: augment(images, params), (x,))
    assert torch.autograd.gradgradcheck(lambda images: augment(images, params), (x,))
    # the map is linear: its Jacobian is the reference applied to each basis image (64 channels of one image)
    basis = np.eye(64).reshape(1, 64, 8, 8)
    jacobian = numpy_ada_resample(basis, [numpy_geometric_matrix(*case[0], 8, 8)]).reshape(64, 64)
    weights = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    (grad,) = torch.autograd.grad((augment(x, params) * weights).sum(), x)
    assert np.abs(grad.flatten().numpy() - jacobian @ weights.flatten().numpy()).max() < 1e-10
    # R1 through the augmentation: a double backward of the squared input-gradient of a nonlinear critic
    (grad,) = torch.autograd.grad((torch.tanh(augment(x, params)) * weights).sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


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
