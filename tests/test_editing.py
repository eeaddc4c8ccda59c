# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Zero-shot editing (Consistency Models, Algorithm 4): the pipelines against the algorithm written out, inpainting
parity with the loop before the editing core, the known-coordinate core and its tasks."""

import math

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_unet

from diffusers_act import (
    ACTColorizationPipeline,
    ACTDenoisingPipeline,
    ACTImg2ImgPipeline,
    ACTInterpolationPipeline,
    ACTPipeline,
    ACTSuperResolutionPipeline,
    BlockAverageTransform,
    ConsistencyACTScheduler,
    IdentityTransform,
    KnownCoordinates,
    LuminanceTransform,
    replace_known,
    slerp,
    strength_to_sigma,
)
from diffusers_act.pipelines.act.editing import editing_sigmas, sigma_to_strength


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(cls, **unet_overrides):
    pipe = cls(unet=tiny_unet(**unet_overrides), scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def rgb():
    return make(ACTPipeline)


def task(cls, base):
    pipe = cls.from_pipe(base)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def by_hand_f(pipe, x, sigma, class_labels=None):
    """clip(f(x, sigma)) from the scheduler's preconditioning helpers."""
    s = pipe.scheduler
    out = pipe.unet(
        s.precondition_inputs(x, sigma), s.precondition_noise(torch.tensor(sigma)), class_labels=class_labels
    ).sample
    return s.precondition_outputs(x, out, sigma).clamp(-1, 1)


# ---------------------------------------------------------------------------------------------------------------
# Consistency Models (Song et al. 2023), Algorithm 4, written out here independently of the library: the EDM / CM
# preconditioning, the Karras levels, and each task's known part and replacement (by their defining formulas, not
# through the library's orthogonal transforms). The pipelines must give its images with the same noise draws.
# ---------------------------------------------------------------------------------------------------------------
SIGMA_MIN, SIGMA_MAX, SIGMA_DATA, RHO, GRID = 0.002, 80.0, 0.5, 7.0, 40  # ConsistencyACTScheduler's defaults
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def karras(index):
    """Level `index` of the 40-point Karras grid, index 0 at sigma_max."""
    hi, lo = SIGMA_MAX ** (1 / RHO), SIGMA_MIN ** (1 / RHO)
    return (hi + index / (GRID - 1) * (lo - hi)) ** RHO


def cm_f(unet, x, t, labels=None):
    """The consistency function f(x, t) = c_skip x + c_out F(c_in x, c_noise), c_noise = 250 ln(t) ("log")."""
    c_skip = SIGMA_DATA**2 / ((t - SIGMA_MIN) ** 2 + SIGMA_DATA**2)
    c_out = (t - SIGMA_MIN) * SIGMA_DATA / math.sqrt(t**2 + SIGMA_DATA**2)
    c_in = 1 / math.sqrt(t**2 + SIGMA_DATA**2)
    c_noise = torch.tensor(1000 * 0.25 * math.log(t + 1e-44))
    return c_skip * x + c_out * unet(c_in * x, c_noise, class_labels=labels).sample


def randn(shape, generator):
    """Standard normal noise: one draw for the batch, or one per image from a list of generators."""
    if isinstance(generator, list):
        return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generator])
    return torch.randn(shape, generator=generator)


@torch.no_grad()
def algorithm_4(unet, taus, known_part, replace, z, generator, labels=None):
    """
    Start from x = y_known + tau_1 z (y_known: the reference's known part, zero elsewhere); for each level tau_i:
    x0 = clip(f(x, tau_i)), put the known part back, and, unless it is the last level, re-noise
    x = x0 + sqrt(tau_{i+1}^2 - eps^2) z' with fresh noise z' from `generator`.
    """
    x = known_part + taus[0] * z
    for i, tau in enumerate(taus):
        x0 = replace(cm_f(unet, x, tau, labels).clamp(-1, 1))
        if i + 1 == len(taus):
            return x0
        x = x0 + math.sqrt(taus[i + 1] ** 2 - SIGMA_MIN**2) * randn(x0.shape, generator)


def editing_task(name, batch=2):
    """(pipeline, UNet overrides, call arguments, y_known, replacement, class labels) of a task, by hand."""
    if name.startswith("inpainting"):  # A = identity, Omega = the repaint mask m: x0 <- m x0 + (1 - m) y
        rng = np.random.default_rng(1)
        image = rng.random((1, 8, 8, 3), dtype=np.float32)
        mask = np.zeros((1, 8, 8, 1), np.float32)
        mask[:, 1:5, 2:8] = 1
        y = torch.from_numpy(image).permute(0, 3, 1, 2) * 2 - 1
        m = torch.from_numpy(mask).permute(0, 3, 1, 2)
        conditional = name.endswith("conditional")
        labels = [3, 0][:batch] if conditional else None
        kwargs = {"image": image, "mask_image": mask, "batch_size": batch, "class_labels": labels}
        overrides = {"num_class_embeds": 4} if conditional else {}
        return ACTPipeline, overrides, kwargs, (1 - m) * y, lambda x0: m * x0 + (1 - m) * y, labels
    if name == "colorization":  # keep the luminance w . x = L: the component along w / |w| becomes L / |w|
        grey = torch.rand(batch, 1, 8, 8, generator=gen(0))
        lum, w2 = grey * 2 - 1, LUMA.square().sum()

        def replace(x0):
            return x0 + LUMA * (lum - (LUMA * x0).sum(1, keepdim=True)) / w2

        return ACTColorizationPipeline, {}, {"image": grey}, LUMA * lum / w2, replace, None
    # super-resolution by (2, 4): keep each block's mean, x0 <- x0 - up(mean(x0)) + up(low)
    low = torch.rand(batch, 3, 4, 2, generator=gen(0))

    def up(blocks):
        return F.interpolate(blocks, scale_factor=(2, 4), mode="nearest")

    def replace(x0):
        return x0 - up(F.avg_pool2d(x0, (2, 4))) + up(low * 2 - 1)

    return ACTSuperResolutionPipeline, {}, {"image": low}, up(low * 2 - 1), replace, None


TASKS = ["inpainting", "inpainting_conditional", "colorization", "super_resolution"]
# the scheduler's steps and the grid indices they visit (num_inference_steps = k: i * (40 // k), as diffusers)
STEPS = [
    ({"num_inference_steps": 1}, (0,)),
    ({"num_inference_steps": 3}, (0, 13, 26)),
    ({"timesteps": [33, 20, 9, 0]}, (0, 9, 20, 33)),
]


def run_task(name, steps, z=None, **call):
    """Runs a task's pipeline; with `z`, from `latents = z + y_known / tau_1`, i.e. from Algorithm 4's start
    y_known + tau_1 z (the pipelines scale `latents` by sigma_max)."""
    cls, overrides, kwargs, known_part, replace, labels = editing_task(name)
    if z is not None:
        call["latents"] = z + known_part / SIGMA_MAX
    pipe = make(cls, **overrides)
    out = pipe(**kwargs, **steps, **call, output_type="latent").images
    return pipe.unet, out, known_part, replace, None if labels is None else torch.tensor(labels)


def generators(name, seed):
    return [gen(seed), gen(seed + 1)] if name == "inpainting_conditional" else gen(seed)


@pytest.mark.parametrize("steps, indices", STEPS)
@pytest.mark.parametrize("name", TASKS)
def test_editing_is_algorithm_4_given_its_start(name, steps, indices):
    """Started where Algorithm 4 starts, x = y_known + tau_1 z, every step of the pipelines (f, clip, replacement,
    re-noising with the generator's draws, output) must be Algorithm 4's."""
    z = torch.randn(2, 3, 8, 8, generator=gen(3))
    unet, out, known_part, replace, labels = run_task(name, steps, z=z, generator=generators(name, 7))
    taus = [karras(i) for i in indices]
    expected = algorithm_4(unet, taus, known_part, replace, z, generators(name, 7), labels)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("steps, indices", STEPS)
@pytest.mark.parametrize("name", TASKS)
def test_editing_draws_its_own_start_from_pure_noise(name, steps, indices):
    """Drawing `z` itself (first from `generator`, then the re-noising noise), a pipeline starts from tau_1 z, without
    the reference's known part (Algorithm 4 starts from y_known + tau_1 z, which makes no practical difference at
    sigma_max = 80: docs/editing.md)."""
    unet, out, known_part, replace, labels = run_task(name, steps, generator=generators(name, 7))
    generator = generators(name, 7)
    z = randn(out.shape, generator)
    taus = [karras(i) for i in indices]
    expected = algorithm_4(unet, taus, torch.zeros_like(known_part), replace, z, generator, labels)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Inpainting parity: ACTPipeline's inpainting now goes through the editing core; a frozen copy of the loop it had
# before (written out here, independently of the new code) must give the same images, bit for bit.
# ---------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def frozen_inpainting_loop(unet, scheduler, known, repaint, batch_size, generator, class_labels=None, **steps):
    scheduler.set_timesteps(**steps)
    shape = (batch_size, *known.shape[1:])
    if isinstance(generator, list):
        latents = torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generator])
    else:
        latents = torch.randn(shape, generator=generator)
    latents = latents * scheduler.init_noise_sigma
    known, repaint = known.expand(shape), repaint.expand(shape)
    for t in scheduler.timesteps:
        model_output = unet(scheduler.scale_model_input(latents, t), t, class_labels=class_labels).sample
        latents, denoised = scheduler.step(model_output, t, latents, generator=generator, return_dict=False)
        latents = torch.where(repaint, latents, known + (latents - denoised))
        denoised = torch.where(repaint, denoised, known)
    return latents


@pytest.mark.parametrize(
    "steps, batch, conditional",
    [
        ({"num_inference_steps": 1}, 1, False),
        ({"timesteps": [39, 25, 5]}, 2, False),
        ({"num_inference_steps": 3}, 3, True),
    ],
)
def test_inpainting_is_unchanged_by_the_editing_core(steps, batch, conditional):
    pipe = make(ACTPipeline, **({"num_class_embeds": 4} if conditional else {}))
    rng = np.random.default_rng(1)
    known_np = rng.random((8, 8, 3)).astype(np.float32)
    mask_np = np.zeros((8, 8, 1), np.float32)
    mask_np[1:5, 2:8] = 1
    labels = [3, 0, 1][:batch] if conditional else None
    generator = [gen(5 + i) for i in range(batch)] if batch == 2 else gen(5)
    out = pipe(
        batch_size=batch, image=known_np[None], mask_image=mask_np[None], class_labels=labels, generator=generator,
        output_type="latent", **steps,
    ).images  # fmt: skip
    known = torch.from_numpy(known_np).permute(2, 0, 1)[None] * 2 - 1
    repaint = torch.from_numpy(mask_np > 0.5).permute(2, 0, 1)[None].expand(1, 3, 8, 8)
    generator = [gen(5 + i) for i in range(batch)] if batch == 2 else gen(5)
    labels = None if labels is None else torch.tensor(labels)
    expected = frozen_inpainting_loop(pipe.unet, pipe.scheduler, known, repaint, batch, generator, labels, **steps)
    assert torch.equal(out, expected)


# ---------------------------------------------------------------------------------------------------------------
# The core: orthogonal transforms and the replacement
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transform", [LuminanceTransform(), BlockAverageTransform(4), BlockAverageTransform((2, 4))])
def test_transforms_are_orthogonal_and_invert(transform):
    m = transform.matrix
    torch.testing.assert_close(m @ m.T, torch.eye(len(m), dtype=torch.float64), rtol=0, atol=1e-12)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    coefficients = transform(x)
    torch.testing.assert_close(transform.inverse(coefficients), x, rtol=0, atol=1e-12)
    assert coefficients.square().sum().item() == pytest.approx(x.square().sum().item(), rel=1e-12)  # isometry


def test_luminance_axis_and_block_average_coordinates():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    luminance = (x * w.view(1, 3, 1, 1)).sum(1)
    torch.testing.assert_close(LuminanceTransform()(x)[:, 0], luminance / w.norm(), rtol=0, atol=1e-12)
    blocks = BlockAverageTransform((2, 4))(x)
    assert blocks.shape == (2, 3, 4, 2, 8)
    torch.testing.assert_close(blocks[..., 0], F.avg_pool2d(x, (2, 4)) * 8**0.5, rtol=0, atol=1e-12)


def test_replace_known_keeps_known_coordinates_and_the_rest_of_the_sample():
    x, y = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randn(2, 3, 8, 8, dtype=torch.float64)
    transform = BlockAverageTransform(2)
    known = transform.known_mask(y)
    out = replace_known(x, y, known, transform)
    torch.testing.assert_close(transform(out)[..., 0], transform(y)[..., 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(transform(out)[..., 1:], transform(x)[..., 1:], rtol=0, atol=1e-12)
    # A = identity is a per-pixel selection
    mask = torch.rand(2, 3, 8, 8) > 0.5
    assert torch.equal(replace_known(x, y, mask, IdentityTransform(mask)), torch.where(mask, y, x))


def test_known_coordinates_re_noise_with_the_step_noise():
    """`(latents, denoised)` -> the replaced estimate and that estimate plus the same noise (Algorithm 4)."""
    transform = LuminanceTransform()
    y, x0, noise = (torch.randn(1, 3, 4, 4, dtype=torch.float64) for _ in range(3))
    keep = KnownCoordinates.from_transform(y, transform)
    latents, denoised = keep(x0 + 0.7 * noise, x0)
    torch.testing.assert_close(denoised, replace_known(x0, y, keep.known, transform), rtol=0, atol=1e-12)
    torch.testing.assert_close(latents, denoised + 0.7 * noise, rtol=0, atol=1e-12)


def test_slerp():
    a, b = torch.randn(3, 4, 4, generator=gen(0)), torch.randn(3, 4, 4, generator=gen(1))
    path = slerp(a, b, torch.tensor([0.0, 0.25, 1.0]))
    assert torch.equal(path[0], a) and torch.equal(path[2], b)
    theta = torch.arccos((a.flatten() @ b.flatten()) / (a.norm() * b.norm()))
    expected = (torch.sin(0.75 * theta) * a + torch.sin(0.25 * theta) * b) / torch.sin(theta)
    torch.testing.assert_close(path[1], expected, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Colorization
# ---------------------------------------------------------------------------------------------------------------
def test_colorization_keeps_luminance_exactly_and_regenerates_colour(rgb):
    pipe = task(ACTColorizationPipeline, rgb)
    grey = torch.rand(2, 1, 8, 8, generator=gen(0))
    out = pipe(image=grey, num_inference_steps=3, generator=gen(1), output_type="latent").images
    assert out.shape == (2, 3, 8, 8)
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((out * w).sum(1, keepdim=True), grey * 2 - 1, rtol=0, atol=2e-6)
    chroma = LuminanceTransform()(out)[:, 1:]
    assert chroma.abs().mean() > 0.05  # colour was made, not left grey
    again = pipe(image=grey, num_inference_steps=3, generator=gen(1), output_type="latent").images
    assert torch.equal(out, again)
    other = pipe(image=grey, num_inference_steps=3, generator=gen(2), output_type="latent").images
    assert not torch.allclose(other, out)
    # an RGB input keeps its own luminance (PIL's "L" weights), a PIL grey image works too
    colour = torch.rand(1, 3, 8, 8, generator=gen(3))
    out = pipe(image=colour, generator=gen(1), output_type="latent").images
    torch.testing.assert_close((out * w).sum(1), (colour * 2 - 1).mul(w).sum(1), rtol=0, atol=2e-6)
    pil = PIL.Image.fromarray((grey[0, 0].numpy() * 255).round().astype(np.uint8))
    (image,) = pipe(image=pil, generator=gen(1)).images
    assert image.mode == "RGB" and image.size == (8, 8)


def test_colorization_errors(rgb):
    grey_model = task(ACTColorizationPipeline, make(ACTPipeline, in_channels=1, out_channels=1))
    with pytest.raises(ValueError, match="needs an RGB model"):
        grey_model(image=torch.rand(1, 1, 8, 8))
    pipe = task(ACTColorizationPipeline, rgb)
    with pytest.raises(ValueError, match="pass 8x8 images"):
        pipe(image=torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        pipe(image=torch.full((1, 1, 8, 8), 2.0))


# ---------------------------------------------------------------------------------------------------------------
# Super-resolution
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("low_size, steps", [((4, 4), 1), ((2, 2), 3), ((1, 1), 1), ((4, 2), 2), ((8, 8), 1)])
def test_super_resolution_keeps_block_averages_exactly(rgb, low_size, steps):
    pipe = task(ACTSuperResolutionPipeline, rgb)
    small = torch.rand(2, 3, *low_size, generator=gen(0))
    out = pipe(image=small, num_inference_steps=steps, generator=gen(1), output_type="latent").images
    assert out.shape == (2, 3, 8, 8)
    factor = (8 // low_size[0], 8 // low_size[1])
    torch.testing.assert_close(F.avg_pool2d(out, factor), small * 2 - 1, rtol=0, atol=2e-6)
    nearest = F.interpolate(small * 2 - 1, scale_factor=factor, mode="nearest")
    if factor != (1, 1):
        assert (out - nearest).abs().mean() > 0.05  # the detail inside each block was regenerated
    else:
        torch.testing.assert_close(out, nearest, rtol=0, atol=2e-6)


def test_super_resolution_determinism_batch_and_grey_model():
    pipe = task(ACTSuperResolutionPipeline, make(ACTPipeline, in_channels=1, out_channels=1))
    small = PIL.Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16)
    a = pipe(image=small, batch_size=3, num_inference_steps=2, generator=gen(4), output_type="latent").images
    b = pipe(image=small, batch_size=3, num_inference_steps=2, generator=gen(4), output_type="latent").images
    assert a.shape == (3, 1, 8, 8) and torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # each image of the batch has its own noise
    expected = torch.from_numpy(np.asarray(small, np.float32) / 255 * 2 - 1)
    torch.testing.assert_close(F.avg_pool2d(a, 2)[:, 0], expected.expand(3, 4, 4), rtol=0, atol=2e-6)


@pytest.mark.parametrize(
    "shape, message",
    [((1, 3, 3, 3), "divide the UNet's 8x8"), ((1, 3, 16, 16), "divide the UNet's 8x8"), ((1, 1, 4, 4), "3 channel")],
)
def test_super_resolution_errors(rgb, shape, message):
    with pytest.raises(ValueError, match=message):
        task(ACTSuperResolutionPipeline, rgb)(image=torch.rand(shape))


# ---------------------------------------------------------------------------------------------------------------
# Guided editing (SDEdit) and denoising
# ---------------------------------------------------------------------------------------------------------------
def test_strength_maps_to_a_noise_level_on_the_karras_ramp():
    scheduler = ConsistencyACTScheduler()
    assert strength_to_sigma(0, scheduler) == pytest.approx(0.002)
    assert strength_to_sigma(1, scheduler) == pytest.approx(80.0)

    def by_hand(strength):  # (sigma_min^(1/rho) + strength (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho
        return (0.002 ** (1 / 7) + strength * (80 ** (1 / 7) - 0.002 ** (1 / 7))) ** 7

    assert strength_to_sigma(0.5, scheduler) == pytest.approx(by_hand(0.5), rel=1e-12)
    assert by_hand(0.5) == pytest.approx(2.515, abs=1e-3)
    assert sigma_to_strength(by_hand(0.3), scheduler) == pytest.approx(0.3, rel=1e-12)
    # the later steps divide the ramp below the start evenly
    levels = editing_sigmas(by_hand(0.6), 3, scheduler)
    assert levels == pytest.approx([by_hand(0.6), by_hand(0.4), by_hand(0.2)], rel=1e-12)
    for bad in (-0.1, 1.5, "0.5", None):
        with pytest.raises(ValueError, match=r"`strength` must be a number in \[0, 1\]"):
            strength_to_sigma(bad, scheduler)


# the values of sigma_to_strength and editing_sigmas before they used the scheduler's inverse ramp (sigma_to_ramp)
RAMP_REGRESSION = {
    "default": (
        {},
        [0.0, 0.0, 0.07294013882831818, 0.250110659387143, 0.4034385020715251, 0.499322139033084,
         0.7497657046012678, 0.8791218966368349, 1.0, 1.0],
        [[5.838947631011886, 0.9654169263318939, 0.08508720268939021],
         [5.0, 1.3770251028418055, 0.28308191117179154, 0.0365471213117475],
         [0.6, 0.06098287563331743]],
    ),
    "custom": (
        {"sigma_min": 0.01, "sigma_max": 40.0, "rho": 5.0},
        [0.0, 0.0, 0.0, 0.17924532805393087, 0.3554824038459917, 0.4742679978355914, 0.8117781807863926,
         1.0, 1.0, 1.0],
        [[5.652790796702341, 1.438141393334427, 0.21705802109884945],
         [5.0, 1.877957151786986, 0.5550211316036147, 0.11035345284480738],
         [0.6, 0.11647047442960962]],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RAMP_REGRESSION))
def test_editing_noise_levels_are_unchanged(case):
    config, strengths, levels = RAMP_REGRESSION[case]
    scheduler = ConsistencyACTScheduler(**config)
    sigmas = (0.001, 0.002, 0.01, 0.17, 1.0, 2.5, 17.5, 40.0, 80.0, 100.0)
    assert [sigma_to_strength(s, scheduler) for s in sigmas] == pytest.approx(strengths, rel=1e-12, abs=1e-15)
    starts = (strength_to_sigma(0.6, scheduler), 5.0, 0.6)
    for start, steps, expected in zip(starts, (3, 4, 2), levels, strict=True):
        assert editing_sigmas(start, steps, scheduler) == pytest.approx(expected, rel=1e-12)
    # what an img2img pipeline then samples at
    pipe = make(ACTImg2ImgPipeline)
    pipe.scheduler = ConsistencyACTScheduler(**config)
    pipe(image=torch.rand(1, 3, 8, 8, generator=gen(0)), strength=0.6, num_inference_steps=3, generator=gen(1))
    np.testing.assert_allclose(pipe.scheduler.sigmas[:-1].numpy(), levels[0], rtol=1e-7)


def test_img2img_one_step_is_f_of_the_noised_guide(rgb):
    pipe = task(ACTImg2ImgPipeline, rgb)
    guide = torch.rand(2, 3, 8, 8, generator=gen(0))
    z = torch.randn(2, 3, 8, 8, generator=gen(1))
    out = pipe(image=guide, strength=0.6, latents=z, output_type="latent").images
    sigma = strength_to_sigma(0.6, pipe.scheduler)
    with torch.no_grad():
        expected = by_hand_f(pipe, guide * 2 - 1 + sigma * z, sigma)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    from_generator = pipe(image=guide, strength=0.6, generator=gen(1), output_type="latent").images
    torch.testing.assert_close(from_generator, out, rtol=0, atol=0)
    # multistep visits the levels of `editing_sigmas`; the strength changes the result
    three = pipe(image=guide, strength=0.6, num_inference_steps=3, generator=gen(1), output_type="latent").images
    torch.testing.assert_close(
        pipe.scheduler.sigmas[:-1].double(),
        torch.tensor(editing_sigmas(sigma, 3, pipe.scheduler), dtype=torch.float64),
        rtol=1e-6,
        atol=0,
    )
    assert not torch.allclose(three, out)
    weaker = pipe(image=guide, strength=0.2, generator=gen(1), output_type="latent").images
    assert (weaker - (guide * 2 - 1)).abs().mean() < (out - (guide * 2 - 1)).abs().mean()


@pytest.mark.parametrize("strength", [-0.01, 1.01])
def test_img2img_strength_out_of_range(rgb, strength):
    with pytest.raises(ValueError, match="strength"):
        task(ACTImg2ImgPipeline, rgb)(image=torch.rand(1, 3, 8, 8), strength=strength)


def test_denoising_is_one_consistency_step_at_sigma(rgb):
    pipe = task(ACTDenoisingPipeline, rgb)
    clean = torch.rand(2, 3, 8, 8, generator=gen(0))
    noisy = clean + 0.3 * torch.randn(2, 3, 8, 8, generator=gen(1))  # outside [0, 1]: allowed here
    out = pipe(image=noisy, sigma=0.6, output_type="latent").images
    with torch.no_grad():
        expected = by_hand_f(pipe, noisy * 2 - 1, 0.6)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert pipe.scheduler.sigmas.tolist() == pytest.approx([0.6, 0.002])
    for bad in (0.001, 81.0, None):
        with pytest.raises(ValueError, match="`sigma` must be the images' noise level"):
            pipe(image=noisy, sigma=bad)
    with pytest.raises(ValueError, match="NaN"):
        pipe(image=torch.full((1, 3, 8, 8), float("nan")), sigma=0.5)


# ---------------------------------------------------------------------------------------------------------------
# Interpolation
# ---------------------------------------------------------------------------------------------------------------
def test_interpolation_ends_are_the_seeds_images(rgb):
    pipe = task(ACTInterpolationPipeline, rgb)
    path = pipe(num_images=5, generator=[gen(1), gen(2)], output_type="latent").images
    assert path.shape == (5, 3, 8, 8)
    for end, seed in ((path[0], 1), (path[-1], 2)):
        alone = rgb(generator=gen(seed), output_type="latent").images[0]
        torch.testing.assert_close(end, alone, rtol=0, atol=1e-5)
    # the path moves: neighbouring images are closer than the ends
    steps = (path[1:] - path[:-1]).abs().mean(dim=(1, 2, 3))
    assert steps.max() < (path[0] - path[-1]).abs().mean()
    # multistep: the first end is ACTPipeline's image for its seed, re-noising noise included
    path = pipe(num_images=3, num_inference_steps=3, generator=[gen(1), gen(2)], output_type="latent").images
    alone = rgb(num_inference_steps=3, generator=gen(1), output_type="latent").images[0]
    torch.testing.assert_close(path[0], alone, rtol=0, atol=1e-5)


def test_interpolation_shares_the_re_noising_noise_along_the_path(rgb):
    pipe = task(ACTInterpolationPipeline, rgb)
    z = torch.randn(1, 3, 8, 8, generator=gen(0)).expand(2, -1, -1, -1)
    path = pipe(num_images=3, latents=z, num_inference_steps=4, generator=gen(1), output_type="latent").images
    torch.testing.assert_close(path[1], path[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(path[2], path[0], rtol=0, atol=1e-5)


def test_interpolation_class_labels_and_errors():
    pipe = task(ACTInterpolationPipeline, make(ACTPipeline, num_class_embeds=5))
    seen = []
    pipe.unet.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["class_labels"].clone()), with_kwargs=True)
    pipe(num_images=3, class_labels=4, generator=gen(0), output_type="latent")
    assert seen[-1].tolist() == [4, 4, 4]
    pipe(num_images=3, class_labels=[0, 1, 2], generator=gen(0), output_type="latent")
    assert seen[-1].tolist() == [0, 1, 2]
    g = gen(9)
    torch.randn(2, 3, 8, 8, generator=g)
    pipe(num_images=3, generator=gen(9), output_type="latent")
    assert seen[-1].tolist() == [torch.randint(0, 5, (1,), generator=g).item()] * 3
    for kwargs, message in (
        ({"num_images": 1}, "at least 2"),
        ({"generator": [gen(0)] * 3}, "pass two"),
        ({"latents": torch.zeros(3, 3, 8, 8)}, "the two ends need"),
    ):
        with pytest.raises(ValueError, match=message):
            pipe(**kwargs)


# ---------------------------------------------------------------------------------------------------------------
# What every editing pipeline shares with ACTPipeline
# ---------------------------------------------------------------------------------------------------------------
def test_from_pipe_shares_components_and_from_pretrained_loads(rgb, tmp_path):
    for cls in (ACTColorizationPipeline, ACTSuperResolutionPipeline, ACTImg2ImgPipeline, ACTInterpolationPipeline):
        pipe = cls.from_pipe(rgb)
        assert pipe.unet is rgb.unet and isinstance(pipe.scheduler, ConsistencyACTScheduler)
    rgb.save_pretrained(tmp_path)
    loaded = ACTSuperResolutionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    small = torch.rand(1, 3, 4, 4, generator=gen(0))
    ours = task(ACTSuperResolutionPipeline, rgb)(image=small, generator=gen(0), output_type="latent").images
    theirs = loaded(image=small, generator=gen(0), output_type="latent").images
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-6)


def test_output_types_class_labels_and_callbacks():
    pipe = task(ACTSuperResolutionPipeline, make(ACTPipeline, num_class_embeds=3))
    small = torch.rand(2, 3, 4, 4, generator=gen(0))
    latent = pipe(image=small, class_labels=[2, 0], generator=gen(1), output_type="latent").images
    pt = pipe(image=small, class_labels=[2, 0], generator=gen(1), output_type="pt").images
    np_images = pipe(image=small, class_labels=[2, 0], generator=gen(1), output_type="np").images
    pil = pipe(image=small, class_labels=[2, 0], generator=gen(1)).images
    torch.testing.assert_close(pt, (latent / 2 + 0.5).clamp(0, 1))
    np.testing.assert_allclose(np_images, pt.permute(0, 2, 3, 1).numpy())
    assert len(pil) == 2 and pil[0].size == (8, 8)
    other = pipe(image=small, class_labels=[1, 0], generator=gen(1), output_type="latent").images
    assert not torch.allclose(other[0], latent[0])
    calls = []

    def callback(p, i, t, kwargs):
        calls.append((i, sorted(kwargs)))
        return {"latents": torch.zeros_like(kwargs["latents"])} if i == 1 else {}

    (out,) = pipe(
        image=small, class_labels=0, num_inference_steps=2, generator=gen(1), output_type="latent", return_dict=False,
        callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents", "denoised"],
    )  # fmt: skip
    assert calls == [(0, ["denoised", "latents"]), (1, ["denoised", "latents"])]
    assert torch.equal(out, torch.zeros_like(out))
    with pytest.raises(ValueError, match="on offer"):
        pipe(image=small, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["noise"])
    with pytest.raises(ValueError, match="one generator per image"):
        pipe(image=small, generator=[gen(0)])
    with pytest.raises(ValueError, match="set `batch_size=2`"):
        pipe(image=small, batch_size=3)


def test_scheduler_takes_explicit_sigmas():
    scheduler = ConsistencyACTScheduler()
    scheduler.set_timesteps(sigmas=[5.0, 0.5])
    assert scheduler.sigmas.tolist() == pytest.approx([5.0, 0.5, 0.002])
    torch.testing.assert_close(
        scheduler.timesteps, scheduler.sigma_to_t(torch.tensor([5.0, 0.5], dtype=torch.float64))
    )
    for sigmas, message in (([0.5, 5.0], "strictly decreasing"), ([100.0], "must lie in"), ([], "non-empty")):
        with pytest.raises(ValueError, match=message):
            scheduler.set_timesteps(sigmas=sigmas)
    with pytest.raises(ValueError, match="not both"):
        scheduler.set_timesteps(num_inference_steps=2, sigmas=[1.0])


@pytest.mark.parametrize("pipeline_class, kwargs", [(ACTImg2ImgPipeline, {}), (ACTDenoisingPipeline, {"sigma": 1.0})])
def test_editing_by_strength_with_diffusers_scheduler_says_to_convert_back(pipeline_class, kwargs):
    from diffusers import CMStochasticIterativeScheduler

    pipe = pipeline_class(tiny_unet(), CMStochasticIterativeScheduler())
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match=r"Use ConsistencyACTScheduler: `pipe.scheduler = ConsistencyACTScheduler"):
        pipe(image=torch.zeros(1, 3, 8, 8), **kwargs)
