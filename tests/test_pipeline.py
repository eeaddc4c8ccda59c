# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import json

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_unet
from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline

from diffusers_act import ACTPipeline, ConsistencyACTScheduler


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def diffusers_pipe(unet):
    pipe = ConsistencyModelPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------------------------
# Parity with diffusers
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "steps",
    [{"num_inference_steps": 1}, {"num_inference_steps": 2}, {"timesteps": [22, 0]}, {"timesteps": [39, 20, 3]}],
)
def test_parity_with_diffusers_consistency_pipeline(pipe, unet, steps):
    ours = pipe(batch_size=3, generator=gen(7), output_type="pt", **steps).images
    theirs = diffusers_pipe(unet)(batch_size=3, generator=gen(7), output_type="pt", **steps).images
    assert ours.shape == theirs.shape == (3, 3, 8, 8)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_parity_class_conditional():
    unet = tiny_unet(num_class_embeds=5)
    pipe = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    ours = pipe(batch_size=3, class_labels=[4, 0, 2], num_inference_steps=2, generator=gen(3), output_type="pt")
    theirs = diffusers_pipe(unet)(
        batch_size=3, class_labels=[4, 0, 2], num_inference_steps=2, generator=gen(3), output_type="pt"
    )
    torch.testing.assert_close(ours.images, theirs.images, rtol=0, atol=1e-5)


def test_one_step_is_f_of_sigma_max_noise(pipe, unet):
    """One step returns clip(f(80 z, 80)), computed here by hand from the scheduler's helpers."""
    scheduler = pipe.scheduler
    z = torch.randn(2, 3, 8, 8, generator=gen(1))
    x = 80.0 * z
    with torch.no_grad():
        model_out = unet(
            scheduler.precondition_inputs(x, 80.0), scheduler.precondition_noise(torch.tensor(80.0))
        ).sample
    expected = scheduler.precondition_outputs(x, model_out, 80.0).clamp(-1, 1)
    out = pipe(batch_size=2, latents=z, output_type="latent").images
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Sampling behaviour
# ---------------------------------------------------------------------------------------------------------------
def test_fixed_seed_reproduces_and_seeds_differ(pipe):
    a = pipe(batch_size=2, num_inference_steps=3, generator=gen(11), output_type="latent").images
    b = pipe(batch_size=2, num_inference_steps=3, generator=gen(11), output_type="latent").images
    c = pipe(batch_size=2, num_inference_steps=3, generator=gen(12), output_type="latent").images
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_generator_list_gives_each_image_its_own_stream(pipe):
    batch = pipe(batch_size=2, num_inference_steps=2, generator=[gen(1), gen(2)], output_type="latent").images
    for i, seed in enumerate((1, 2)):
        single = pipe(batch_size=1, num_inference_steps=2, generator=gen(seed), output_type="latent").images
        torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-6)


def test_multistep_differs_from_one_step(pipe):
    one = pipe(batch_size=2, generator=gen(0), output_type="latent").images
    two = pipe(batch_size=2, num_inference_steps=2, generator=gen(0), output_type="latent").images
    assert one.shape == two.shape
    assert (one - two).abs().mean() > 1e-3


def test_output_types(pipe):
    pil = pipe(batch_size=2, generator=gen(0)).images
    assert len(pil) == 2 and all(isinstance(im, PIL.Image.Image) and im.size == (8, 8) for im in pil)
    np_images = pipe(batch_size=2, generator=gen(0), output_type="np").images
    pt = pipe(batch_size=2, generator=gen(0), output_type="pt").images
    latent = pipe(batch_size=2, generator=gen(0), output_type="latent").images
    assert np_images.shape == (2, 8, 8, 3) and pt.shape == (2, 3, 8, 8)
    assert latent.min() >= -1 and latent.max() <= 1
    torch.testing.assert_close(pt, latent / 2 + 0.5)
    np.testing.assert_allclose(np_images, pt.permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(np.asarray(pil[0]), (np_images[0] * 255).round().astype(np.uint8))
    (as_tuple,) = pipe(batch_size=1, generator=gen(0), output_type="pt", return_dict=False)
    torch.testing.assert_close(as_tuple, pt[:1])


def test_grayscale_and_non_square_unet():
    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=(8, 16))
    pipe = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=2, generator=gen(0)).images
    assert images[0].mode == "L" and images[0].size == (16, 8)
    assert pipe(batch_size=2, generator=gen(0), output_type="pt").images.shape == (2, 1, 8, 16)


def test_user_latents_are_scaled_by_sigma_max(pipe):
    z = torch.randn(2, 3, 8, 8, generator=gen(4))
    from_latents = pipe(batch_size=2, latents=z, output_type="latent").images
    from_generator = pipe(batch_size=2, generator=gen(4), output_type="latent").images
    torch.testing.assert_close(from_latents, from_generator, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------
# Class-conditional sampling
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def cond_pipe():
    pipe = ACTPipeline(unet=tiny_unet(num_class_embeds=10), scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def record_labels(pipe):
    seen = []
    pipe.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["class_labels"].clone()), with_kwargs=True
    )
    return seen


def test_class_labels_are_honoured(cond_pipe):
    seen = record_labels(cond_pipe)
    batch = cond_pipe(batch_size=2, class_labels=[3, 7], generator=[gen(1), gen(2)], output_type="latent").images
    assert seen[-1].tolist() == [3, 7]
    for i, (label, seed) in enumerate(((3, 1), (7, 2))):
        single = cond_pipe(batch_size=1, class_labels=label, generator=gen(seed), output_type="latent").images
        torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-6)
        other = cond_pipe(batch_size=1, class_labels=(label + 1) % 10, generator=gen(seed), output_type="latent")
        assert not torch.allclose(other.images, single)
    # a single int or a tensor is accepted and broadcast
    cond_pipe(batch_size=3, class_labels=torch.tensor(5), generator=gen(0), output_type="latent")
    assert seen[-1].tolist() == [5, 5, 5]


def test_random_labels_come_from_the_generator(cond_pipe):
    seen = record_labels(cond_pipe)
    cond_pipe(batch_size=4, generator=gen(9), output_type="latent")
    first = seen[-1]
    cond_pipe(batch_size=4, generator=gen(9), output_type="latent")
    assert torch.equal(seen[-1], first)
    # drawn after the noise, one label per draw from the same generator
    g = gen(9)
    torch.randn(4, 3, 8, 8, generator=g)
    expected = torch.cat([torch.randint(0, 10, (1,), generator=g) for _ in range(4)])
    assert torch.equal(first, expected)
    assert first.min() >= 0 and first.max() < 10


# ---------------------------------------------------------------------------------------------------------------
# Inpainting
# ---------------------------------------------------------------------------------------------------------------
def make_known_and_mask(channels=3, size=8):
    rng = np.random.default_rng(0)
    known = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[2:6, 3:7] = 255  # white = repaint
    return known, mask


def reference_inpaint(pipe, known, repaint, timesteps, generator):
    """Consistency Models Algorithm 4, written out with the scheduler's helpers."""
    scheduler, unet = pipe.scheduler, pipe.unet
    scheduler.set_timesteps(timesteps=timesteps)
    sigmas = scheduler.sigmas[:-1].tolist()
    x = 80.0 * torch.randn(known.shape, generator=generator)
    for i, sigma in enumerate(sigmas):
        with torch.no_grad():
            out = unet(
                scheduler.precondition_inputs(x, sigma), scheduler.precondition_noise(torch.tensor(sigma))
            ).sample
        x0 = scheduler.precondition_outputs(x, out, sigma).clamp(-1, 1)
        x0 = torch.where(repaint, x0, known)
        if i + 1 < len(sigmas):
            x = x0 + (sigmas[i + 1] ** 2 - 0.002**2) ** 0.5 * torch.randn(known.shape, generator=generator)
    return x0


@pytest.mark.parametrize("timesteps", [[0], [22, 0], [39, 30, 10]])
def test_inpainting_matches_algorithm_4_and_keeps_known_pixels(pipe, timesteps):
    known_np, mask_np = make_known_and_mask()
    out = pipe(
        image=PIL.Image.fromarray(known_np),
        mask_image=PIL.Image.fromarray(mask_np),
        timesteps=timesteps,
        generator=gen(3),
        output_type="latent",
    ).images
    known = torch.from_numpy(known_np).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    repaint = torch.from_numpy(mask_np > 127)[None, None].expand(1, 3, 8, 8)
    assert torch.equal(out[~repaint], known[~repaint])  # every known pixel exactly
    assert (out[repaint] - known[repaint]).abs().min() > 0  # every repainted pixel changed
    expected = reference_inpaint(pipe, known, repaint, timesteps, gen(3))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_inpainting_pil_output_returns_known_pixels_unchanged(pipe):
    known_np, mask_np = make_known_and_mask()
    for image, mask in (
        (PIL.Image.fromarray(known_np), PIL.Image.fromarray(mask_np)),
        (known_np[None].astype(np.float32) / 255, (mask_np[None, ..., None] / 255).astype(np.float32)),
        (torch.from_numpy(known_np).permute(2, 0, 1)[None] / 255, torch.from_numpy(mask_np)[None, None] / 255),
    ):
        (result,) = pipe(image=image, mask_image=mask, num_inference_steps=2, generator=gen(0)).images
        result = np.asarray(result)
        keep = mask_np == 0
        np.testing.assert_array_equal(result[keep], known_np[keep])
        assert np.any(result[~keep] != known_np[~keep])


def test_inpainting_mask_extremes(pipe):
    known_np, _ = make_known_and_mask()
    image = PIL.Image.fromarray(known_np)
    black = PIL.Image.fromarray(np.zeros((8, 8), np.uint8))
    white = PIL.Image.fromarray(np.full((8, 8), 255, np.uint8))
    kept = pipe(image=image, mask_image=black, num_inference_steps=2, generator=gen(0)).images[0]
    np.testing.assert_array_equal(np.asarray(kept), known_np)
    repainted = pipe(image=image, mask_image=white, num_inference_steps=2, generator=gen(0), output_type="latent")
    plain = pipe(num_inference_steps=2, generator=gen(0), output_type="latent")
    assert torch.equal(repainted.images, plain.images)


def test_inpainting_grayscale_batch(pipe):
    pipe = ACTPipeline(unet=tiny_unet(in_channels=1, out_channels=1), scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    known_np, mask_np = make_known_and_mask(channels=1)
    images = pipe(
        batch_size=3,
        image=PIL.Image.fromarray(known_np[..., 0]),
        mask_image=PIL.Image.fromarray(mask_np),
        generator=gen(0),
    ).images
    assert len(images) == 3
    for im in images:
        np.testing.assert_array_equal(np.asarray(im)[mask_np == 0], known_np[..., 0][mask_np == 0])
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))


# ---------------------------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------------------------
def test_callback_on_step_end_sees_and_replaces_tensors(pipe):
    calls = []

    def callback(p, i, t, kwargs):
        calls.append((i, float(t), sorted(kwargs)))
        if i == 1:
            return {"latents": torch.zeros_like(kwargs["latents"])}
        return {}

    out = pipe(
        num_inference_steps=2,
        generator=gen(0),
        output_type="latent",
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "denoised"],
    ).images
    assert [c[0] for c in calls] == [0, 1]
    assert [c[1] for c in calls] == pytest.approx(pipe.scheduler.timesteps.tolist())
    assert calls[0][2] == ["denoised", "latents"]
    assert torch.equal(out, torch.zeros_like(out))


# ---------------------------------------------------------------------------------------------------------------
# Saving, loading, devices and dtypes
# ---------------------------------------------------------------------------------------------------------------
def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.scheduler = ConsistencyACTScheduler(noise_conditioning="sigma", num_train_timesteps=20)
    pipe.save_pretrained(tmp_path)
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert "unet/diffusion_pytorch_model.safetensors" in files
    assert not any(f.endswith(".bin") for f in files)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_act", "ACTPipeline"]  # diffusers' custom-pipeline form
    # a diffusers custom component whose code is in the folder (see tests/test_pipeline_loading.py)
    assert index["scheduler"] == ["scheduling_consistency_act", "ConsistencyACTScheduler"]
    loaded = ACTPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert (
        isinstance(loaded.scheduler, ConsistencyACTScheduler) and loaded.scheduler.config.noise_conditioning == "sigma"
    )
    assert_same_weights(loaded.unet, pipe.unet)
    before = pipe(batch_size=2, num_inference_steps=2, generator=gen(0), output_type="latent").images
    after = loaded(batch_size=2, num_inference_steps=2, generator=gen(0), output_type="latent").images
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


def assert_same_weights(a, b):
    """Bit-identical parameters. (Outputs are compared to 1e-6: CPU kernels may round differently on
    differently aligned memory, such as the memory-mapped tensors that loading gives.)"""
    sd_a, sd_b = a.state_dict(), b.state_dict()
    assert sd_a.keys() == sd_b.keys()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)


def test_from_pretrained_loads_a_hub_repo(pipe, tmp_path, monkeypatch):
    """A repo pushed by a training run (pipeline, discriminator, card) loads from huggingface_hub's cache, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo_dir = tmp_path / "cache" / "models--user--act-digits"
    snapshot = repo_dir / "snapshots" / ("0" * 40)
    pipe.save_pretrained(snapshot)
    (snapshot / "discriminator").mkdir()  # a training run pushes this beside the pipeline; sampling does not need it
    (snapshot / "discriminator" / "diffusion_pytorch_model.safetensors").write_bytes(b"not needed")
    (snapshot / "README.md").write_text("model card")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("0" * 40)
    loaded = ACTPipeline.from_pretrained("user/act-digits", cache_dir=tmp_path / "cache", revision="main")
    assert type(loaded) is ACTPipeline and type(loaded.scheduler) is ConsistencyACTScheduler
    loaded.set_progress_bar_config(disable=True)
    assert_same_weights(loaded.unet, pipe.unet)
    torch.testing.assert_close(
        loaded(generator=gen(0), output_type="pt").images,
        pipe(generator=gen(0), output_type="pt").images,
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_to_dtype(pipe, dtype):
    z = torch.randn(2, 3, 8, 8, generator=gen(0))
    reference = pipe(batch_size=2, latents=z, output_type="latent").images
    pipe.to(dtype=dtype)
    assert pipe.unet.dtype == dtype
    out = pipe(batch_size=2, latents=z, output_type="latent").images
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), reference, rtol=0, atol=1e-5 if dtype == torch.float64 else 0.1)
    assert pipe.to("cpu").device.type == "cpu"


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image": np.zeros((8, 8, 3))}, "`mask_image` is missing"),
        ({"mask_image": np.zeros((8, 8))}, "`image` is missing"),
        ({"image": PIL.Image.new("RGB", (16, 16)), "mask_image": PIL.Image.new("L", (16, 16))}, "resize it to 8x8"),
        ({"image": PIL.Image.new("RGB", (8, 8)), "mask_image": PIL.Image.new("L", (4, 4))}, "`mask_image` has shape"),
        ({"num_inference_steps": 2, "timesteps": [22, 0]}, "not both"),
        ({"timesteps": [0, 22]}, "strictly decreasing"),
        ({"timesteps": [40, 0]}, r"lie in \[0, 39\]"),
        ({"num_inference_steps": 0}, "between 1 and"),
        ({"num_inference_steps": 100}, "between 1 and"),
        ({"class_labels": 3}, "unconditional"),
        ({"batch_size": 0}, "`batch_size` must be a positive integer"),
        ({"batch_size": 2, "generator": [torch.Generator()]}, "one generator per image"),
        ({"latents": torch.zeros(1, 3, 4, 4)}, r"need \(1, 3, 8, 8\)"),
        ({"output_type": "jpg"}, "output_type"),
        ({"callback_on_step_end": lambda *a: {}, "callback_on_step_end_tensor_inputs": ["noise"]}, "on offer"),
    ],
)
def test_bad_input_errors(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


@pytest.mark.parametrize(
    "labels, message",
    [
        (10, r"lie in \[0, 9\]"),
        ([-1], r"lie in \[0, 9\]"),
        ([1, 2, 3], "holds 3 labels"),
        ([0.5], "must be an int"),
        ("3", r"\['3'\] are not class names; they are none: this pipeline has no `id2label`"),
        ([], "non-empty"),
    ],
)
def test_bad_class_labels(cond_pipe, labels, message):
    with pytest.raises(ValueError, match=message):
        cond_pipe(batch_size=2, class_labels=labels)


def test_image_batch_must_match(pipe):
    images = np.zeros((3, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="set `batch_size=3`"):
        pipe(batch_size=2, image=images, mask_image=np.zeros((1, 8, 8, 1), np.float32))


def test_class_names_are_saved_and_accepted_as_class_labels(tmp_path):
    """`id2label` as diffusers' DiTPipeline has it: saved in model_index.json, names accepted by `class_labels`."""
    from diffusers import DiffusionPipeline

    from diffusers_act.pipelines.act.pipeline_act_colorization import ACTColorizationPipeline

    names = {0: "cat", 1: "dog", 2: "fox"}
    pipe = ACTPipeline(tiny_unet(num_class_embeds=3), ConsistencyACTScheduler(), id2label=names)
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["id2label"] == {"0": "cat", "1": "dog", "2": "fox"}
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.labels == {"cat": 0, "dog": 1, "fox": 2} and loaded.get_label_ids(["fox", "cat"]) == [2, 0]
    by_name = loaded(batch_size=2, class_labels=["dog", "fox"], generator=torch.Generator().manual_seed(0),
                     output_type="pt").images  # fmt: skip
    by_id = loaded(batch_size=2, class_labels=[1, 2], generator=torch.Generator().manual_seed(0), output_type="pt")
    by_id = by_id.images
    assert torch.equal(by_name, by_id)
    assert ACTColorizationPipeline.from_pipe(loaded).labels == loaded.labels  # the editing pipelines keep them
    with pytest.raises(ValueError, match=r"\['wolf'\] are not class names; they are 'cat', 'dog', 'fox'"):
        loaded(batch_size=1, class_labels="wolf")


def test_inpainting_makes_one_image_per_given_image_unless_told(pipe):
    """As diffusers' inpainting pipelines: the batch follows `image` (or `latents`) when `batch_size` is not given."""
    images, mask = np.full((3, 8, 8, 3), 0.5, np.float32), np.zeros((1, 8, 8, 1), np.float32)
    assert len(pipe(image=images, mask_image=mask, output_type="np").images) == 3
    assert len(pipe(image=[images[0], images[1]], mask_image=mask, output_type="np").images) == 2
    assert len(pipe(image=images[0], mask_image=np.zeros((4, 8, 8, 1), np.float32), output_type="np").images) == 4
    assert len(pipe(latents=torch.zeros(5, *pipe.image_shape), output_type="np").images) == 5
    assert len(pipe(output_type="np").images) == 1
    kept = pipe(image=images, mask_image=mask, output_type="np").images  # black mask: every pixel kept
    np.testing.assert_allclose(kept, images, atol=1 / 255)
