# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Latent ACT: a tiny AutoencoderKL built here (random weights), the pipelines with a `vae`, the encoded and cached
training set, and the training script end to end in latent space."""

import importlib.util
import json
import logging
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_unet
from diffusers import AutoencoderKL, DiffusionPipeline

from diffusers_act import (
    ACTDenoisingPipeline,
    ACTImg2ImgPipeline,
    ACTInterpolationPipeline,
    ACTPipeline,
    ACTSuperResolutionPipeline,
    ConsistencyACTScheduler,
)
from diffusers_act.pipelines.act.autoencoder import (
    PixelKnownCoordinates,
    decode_latents,
    encode_images,
    latent_repaint_mask,
    vae_scale_factor,
)
from diffusers_act.pipelines.act.editing import BlockAverageTransform, KnownCoordinates, replace_known
from diffusers_act.training.batches import DeviceBatches
from diffusers_act.training.latents import check_latent_run, encode_dataset, latent_cache_file

ROOT = Path(__file__).resolve().parents[1]


def tiny_vae(channels: int = 3, seed: int = 0, **overrides) -> AutoencoderKL:
    """An AutoencoderKL of ~40k parameters: 2 levels (factor 2), 4 latent channels."""
    torch.manual_seed(seed)
    config = dict(
        in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1, latent_channels=4,
        norm_num_groups=8, sample_size=16,
    )  # fmt: skip
    return AutoencoderKL(**{**config, **overrides}).eval()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def latent_pipe():
    """A class-conditional latent pipeline: 8x8x4 latents, 16x16 RGB images."""
    unet = tiny_unet(in_channels=4, out_channels=4, num_class_embeds=3)
    pipe = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler(), vae=tiny_vae())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_latents_are_scaled_and_shifted_as_in_diffusers():
    vae = tiny_vae(scaling_factor=0.5, shift_factor=0.25)
    images = torch.rand(2, 3, 16, 16, generator=gen(0)) * 2 - 1
    with torch.no_grad():
        mean = vae.encode(images).latent_dist.mode()
        latents = encode_images(vae, images)
        torch.testing.assert_close(latents, (mean - 0.25) * 0.5)
        torch.testing.assert_close(decode_latents(vae, latents), vae.decode(mean).sample)
        drawn = encode_images(vae, images, sample=True, generator=gen(1))
        assert not torch.allclose(drawn, latents)  # a draw from the Gaussian, not its mean
    assert vae_scale_factor(vae) == 2 and vae_scale_factor(tiny_vae(block_out_channels=(8, 8, 8))) == 4


def test_a_latent_pipeline_decodes_its_samples(latent_pipe):
    assert latent_pipe.latent_shape == (4, 8, 8) and latent_pipe.image_shape == (3, 16, 16)
    latents = latent_pipe(batch_size=2, class_labels=[0, 2], generator=gen(0), output_type="latent").images
    images = latent_pipe(batch_size=2, class_labels=[0, 2], generator=gen(0), output_type="pt").images
    assert latents.shape == (2, 4, 8, 8) and images.shape == (2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(images, (decode_latents(latent_pipe.vae, latents) / 2 + 0.5).clamp(0, 1))
    pil = latent_pipe(batch_size=1, class_labels=1, generator=gen(0)).images[0]
    assert pil.size == (16, 16) and pil.mode == "RGB"
    with pytest.raises(ValueError, match=r"`latents` has shape \(1, 3, 16, 16\) but this UNet"):
        latent_pipe(latents=torch.zeros(1, 3, 16, 16))  # the noise is latent-shaped, not image-shaped


def test_a_latent_pipeline_saves_and_loads_with_diffusers(latent_pipe, tmp_path):
    latent_pipe.save_pretrained(tmp_path)
    files = sorted(p.name for p in (tmp_path / "vae").iterdir())
    assert files == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert json.loads((tmp_path / "model_index.json").read_text())["vae"] == ["diffusers", "AutoencoderKL"]
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded) is ACTPipeline and isinstance(loaded.vae, AutoencoderKL)
    call = dict(batch_size=2, class_labels=[0, 1], num_inference_steps=2, output_type="pt")
    torch.testing.assert_close(loaded(**call, generator=gen(3)).images, latent_pipe(**call, generator=gen(3)).images)
    editor = ACTImg2ImgPipeline.from_pipe(loaded)
    assert editor.vae is loaded.vae  # from_pipe shares the VAE


def test_inpainting_keeps_the_latents_of_unmasked_cells(latent_pipe):
    image = torch.rand(1, 3, 16, 16, generator=gen(4))
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 0, 0] = 1  # one pixel: its whole 2x2 cell is repainted
    mask[..., 8:, :] = 1  # the bottom half
    out = latent_pipe(image=image, mask_image=mask, class_labels=1, num_inference_steps=3, generator=gen(5),
                      output_type="latent").images  # fmt: skip
    with torch.no_grad():
        known = encode_images(latent_pipe.vae, image * 2 - 1)
    repaint = latent_repaint_mask(mask.bool(), 2)
    assert repaint.shape == (1, 1, 8, 8) and repaint[0, 0, 0, 0] and not repaint[0, 0, 0, 1]
    assert repaint.sum() == 1 + 32  # the cell of the pixel, and the bottom 4 of 8 latent rows
    kept = ~repaint.expand_as(out)
    assert torch.equal(out[kept], known[kept])  # exactly, on the latent grid
    assert not torch.allclose(out[~kept], known[~kept])
    pixels = latent_pipe(image=image, mask_image=mask, class_labels=1, generator=gen(5), output_type="pt").images
    assert pixels.shape == (1, 3, 16, 16)


def test_pixel_edits_go_through_the_autoencoder():
    vae = tiny_vae()
    reference = torch.rand(2, 3, 16, 16, generator=gen(6)) * 2 - 1
    keep = KnownCoordinates.from_transform(reference, BlockAverageTransform(4))
    edit = PixelKnownCoordinates(keep, vae)
    denoised = torch.randn(2, 4, 8, 8, generator=gen(7))
    noise = 0.3 * torch.randn(2, 4, 8, 8, generator=gen(8))
    with torch.no_grad():
        latents, new_denoised = edit(denoised + noise, denoised)
        pixels = replace_known(decode_latents(vae, denoised), reference, keep.known, keep.transform)
        torch.testing.assert_close(new_denoised, encode_images(vae, pixels))
    torch.testing.assert_close(latents - new_denoised, noise)  # the step's noise is kept


def test_latent_editing_pipelines(latent_pipe):
    small = torch.rand(1, 3, 4, 4, generator=gen(9))
    upscaled = ACTSuperResolutionPipeline.from_pipe(latent_pipe)(
        image=small, class_labels=0, num_inference_steps=2, generator=gen(1), output_type="pt"
    ).images
    assert upscaled.shape == (1, 3, 16, 16)
    guide = torch.rand(2, 3, 16, 16, generator=gen(10))
    edited = ACTImg2ImgPipeline.from_pipe(latent_pipe)(
        image=guide, strength=0.3, class_labels=[0, 1], generator=gen(2), output_type="latent"
    ).images
    assert edited.shape == (2, 4, 8, 8)
    path = ACTInterpolationPipeline.from_pipe(latent_pipe)(
        num_images=3, generator=[gen(1), gen(2)], class_labels=0, output_type="pt"
    ).images
    assert path.shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="Denoising needs a pixel-space model"):
        ACTDenoisingPipeline.from_pipe(latent_pipe)(image=guide, sigma=0.5, class_labels=[0, 1])


def test_encoded_sets_flip_with_their_own_latents():
    latents = torch.arange(8 * 4 * 2 * 2, dtype=torch.float32).view(8, 4, 2, 2)
    data = {"latents": latents, "flipped_latents": -latents, "labels": torch.arange(8)}
    batches = DeviceBatches(data, 4, seed=0, device="cpu", random_flip=True)
    seen = [batch for batch in batches.epoch(0)]
    for batch in seen:
        index = batch["labels"]
        plain, flipped = latents[index], -latents[index]
        rows = [torch.equal(batch["pixel_values"][i], plain[i]) or torch.equal(batch["pixel_values"][i], flipped[i])
                for i in range(4)]  # fmt: skip
        assert all(rows)
    assert any(torch.equal(b["pixel_values"][i], -latents[b["labels"][i]]) for b in seen for i in range(4))
    again = [batch for batch in batches.epoch(0)]
    assert all(torch.equal(a["pixel_values"], b["pixel_values"]) for a, b in zip(seen, again, strict=True))


def test_the_cache_key_follows_the_vae_and_the_data(tmp_path):
    import datasets

    def run(**changes):
        return SimpleNamespace(**{"cache_dir": str(tmp_path), "resolution": 16, "center_crop": True,
                                  "random_flip": False, "vae_sample": False, "seed": 0, **changes})  # fmt: skip

    data = datasets.Dataset.from_dict({"x": [1, 2, 3]})
    path = latent_cache_file(run(), data, tiny_vae())
    assert path.parent == tmp_path / "diffusers_act_latents" and path.suffix == ".safetensors"
    assert latent_cache_file(run(), data, tiny_vae()) == path  # same weights, same key
    assert latent_cache_file(run(), data, tiny_vae(seed=1)) != path
    assert latent_cache_file(run(), data.select([0, 1]), tiny_vae()) != path
    assert latent_cache_file(run(random_flip=True), data, tiny_vae()) != path
    assert latent_cache_file(run(vae_sample=True, seed=0), data, tiny_vae()) != latent_cache_file(
        run(vae_sample=True, seed=1), data, tiny_vae()
    )


def test_encode_dataset_matches_the_pipeline_encoder():
    class Images(torch.utils.data.Dataset):
        def __init__(self, images):
            self.images = images

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            return {"pixel_values": self.images[i], "labels": i}

    images = torch.rand(5, 3, 16, 16, generator=gen(11)) * 2 - 1
    vae = tiny_vae()
    encoded = encode_dataset(Images(images), vae, torch.device("cpu"), flips=True, batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(encoded["latents"], encode_images(vae, images))
        torch.testing.assert_close(encoded["flipped_latents"], encode_images(vae, images.flip(-1)))
    assert encoded["labels"].tolist() == [0, 1, 2, 3, 4]


def test_latent_runs_refuse_pixel_options():
    vae = tiny_vae()
    config = SimpleNamespace(loss_type="pseudo_huber", augment=False)
    with pytest.raises(ValueError, match="--resolution 17 is not a multiple of the VAE's downsampling factor 2"):
        check_latent_run(SimpleNamespace(resolution=17), config, vae)
    with pytest.raises(ValueError, match="act on pixels"):
        check_latent_run(SimpleNamespace(resolution=16), SimpleNamespace(loss_type="lpips", augment=False), vae)
    from diffusers_act.training.config import RunConfig

    with pytest.raises(ValueError, match="pass --vae_name_or_path as well"):
        RunConfig(vae_sample=True)
    with pytest.raises(ValueError, match="Leave out --no-center_crop with --vae_name_or_path"):
        RunConfig(vae_name_or_path="some/vae", center_crop=False)


def test_training_in_latent_space_end_to_end(tmp_path, caplog):
    spec = importlib.util.spec_from_file_location("train_act", ROOT / "examples" / "train_act" / "train_act.py")
    train_act = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_act)
    tiny_vae(channels=1).save_pretrained(tmp_path / "vae")
    args = ["--vae_name_or_path", str(tmp_path / "vae"), "--resolution", "16", "--max_train_samples", "64",
            "--train_batch_size", "8", "--max_train_steps", "2", "--checkpointing_steps", "2", "--validation_steps",
            "2", "--report_to", "none", "--random_flip", "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    with caplog.at_level(logging.INFO):
        out = train_act.main([*args, "--output_dir", str(tmp_path / "run")])
    assert "Encoding 64 images with the VAE" in caplog.text
    cached = list((tmp_path / "cache" / "diffusers_act_latents").glob("*.safetensors"))
    assert len(cached) == 1
    pipe = DiffusionPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.vae, AutoencoderKL) and pipe.latent_shape == (4, 8, 8) and pipe.image_shape == (1, 16, 16)
    assert pipe(class_labels=3, generator=gen(0)).images[0].size == (16, 16)
    assert "in the latent space of the VAE" in (out / "README.md").read_text()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train_act.main([*args, "--output_dir", str(tmp_path / "again")])
    assert "read from the cache" in caplog.text and "Encoding" not in caplog.text
    # fine-tuning the latent pipeline takes its VAE along, without --vae_name_or_path
    tuned = train_act.main([
        "--pretrained_model_name_or_path", str(out), "--max_train_samples", "64", "--train_batch_size", "8",
        "--max_train_steps", "1", "--report_to", "none", "--cache_dir", str(tmp_path / "cache"),
        "--output_dir", str(tmp_path / "tuned"),
    ])  # fmt: skip
    tuned_pipe = DiffusionPipeline.from_pretrained(tuned)
    assert tuned_pipe.image_shape == (1, 16, 16) and tuned_pipe.latent_shape == (4, 8, 8)
    for name, tensor in tuned_pipe.vae.state_dict().items():
        assert torch.equal(tensor, pipe.vae.state_dict()[name]), name


@pytest.mark.slow  # a fresh interpreter (5 s)
def test_a_latent_pipeline_loads_as_remote_code_without_the_package(latent_pipe, tmp_path):
    latent_pipe.save_pretrained(tmp_path / "saved")
    code = f"""
    import sys, torch
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained({str(tmp_path / "saved")!r}, trust_remote_code=True)
    pipe.set_progress_bar_config(disable=True)
    assert "diffusers_act" not in sys.modules and type(pipe.vae).__name__ == "AutoencoderKL"
    torch.save(pipe(batch_size=2, class_labels=[0, 1], generator=torch.Generator().manual_seed(5),
                    output_type="pt").images, {str(tmp_path / "images.pt")!r})
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = latent_pipe(batch_size=2, class_labels=[0, 1], generator=gen(5), output_type="pt").images
    torch.testing.assert_close(torch.load(tmp_path / "images.pt", weights_only=True), expected)


def test_the_mask_of_a_latent_cell_covers_its_pixels():
    repaint = torch.zeros(1, 3, 8, 8, dtype=torch.bool)
    repaint[0, :, 3, 5] = True
    cells = latent_repaint_mask(repaint, 4)
    assert cells.shape == (1, 1, 2, 2) and cells.nonzero().tolist() == [[0, 0, 0, 1]]
    assert torch.equal(F.interpolate(cells.float(), scale_factor=4).bool()[0, 0, 3, 5], torch.tensor(True))


def test_evaluation_scores_the_decoded_samples(tmp_path):
    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "scripts" / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    unet = tiny_unet(in_channels=4, out_channels=4, sample_size=8, num_class_embeds=10)
    pipe = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler(), vae=tiny_vae(channels=1))
    pipe.save_pretrained(tmp_path / "pipe")
    result = evaluate.main([
        "--pipeline", str(tmp_path / "pipe"), "--num_samples", "32", "--batch_size", "16", "--reference", "digits",
        "--feature_extractor", "digits", "--save_samples", str(tmp_path / "samples.npz"),
        "--output", str(tmp_path / "m.json"),
    ])  # fmt: skip
    import numpy as np

    assert np.load(tmp_path / "samples.npz")["arr_0"].shape == (32, 16, 16, 1)  # decoded images, not 4x8x8 latents
    assert math.isfinite(result["fid"]) and result["num_samples"] == 32


def test_sigma_data_reaches_the_training_and_the_saved_scheduler(tmp_path):
    from accelerate import Accelerator

    from diffusers_act.training import ACTConfig, ACTTrainer

    trainer = ACTTrainer.build(tiny_unet(), ACTConfig(sigma_data=1.0, adv_weight=0.0), Accelerator(cpu=True))
    assert trainer.scheduler.config.sigma_data == 1.0
    sigma = torch.tensor([1.0])
    c_skip, c_out = trainer.scheduler.get_scalings_for_boundary_condition(sigma)
    assert c_skip.item() == pytest.approx(1.0 / ((1.0 - 0.002) ** 2 + 1.0))  # sigma_data^2 / ((s - s_min)^2 + sd^2)
    ACTPipeline(unet=trainer.shipped_unet(), scheduler=trainer.scheduler).save_pretrained(tmp_path)
    assert ConsistencyACTScheduler.from_pretrained(tmp_path, subfolder="scheduler").config.sigma_data == 1.0


def test_latents_of_another_spread_than_images_are_warned_about(caplog):
    from diffusers_act.training.latents import check_latent_scale

    latents, vae = {"latents": torch.randn(2000, 4, 2, 2, generator=gen(12))}, tiny_vae(scaling_factor=0.2)
    with caplog.at_level(logging.WARNING):
        spread = check_latent_scale(latents, vae)
    assert spread == pytest.approx(1.0, abs=0.03)
    assert f"a standard deviation of {spread:.3g}; ACT's noise schedule suits a spread of about 0.5" in caplog.text
    assert f"Pass --vae_scaling_factor {0.2 * 0.5 / spread:.4g}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert check_latent_scale({"latents": latents["latents"] / 2}, vae) == pytest.approx(spread / 2)
        assert check_latent_scale({}, None) is None
    assert caplog.text == ""


def test_a_replaced_scaling_factor_is_trained_with_and_saved(tmp_path):
    from diffusers_act.training.config import parse_args
    from diffusers_act.training.latents import load_vae

    tiny_vae(channels=1).save_pretrained(tmp_path / "vae")
    run, _ = parse_args(["--vae_name_or_path", str(tmp_path / "vae"), "--vae_scaling_factor", "0.25"])
    vae = load_vae(run)
    assert vae.config.scaling_factor == 0.25
    images = torch.rand(2, 1, 16, 16, generator=gen(13)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(encode_images(vae, images), vae.encode(images).latent_dist.mode() * 0.25)
    vae.save_pretrained(tmp_path / "saved")
    assert AutoencoderKL.from_pretrained(tmp_path / "saved").config.scaling_factor == 0.25
    with pytest.raises(ValueError, match="describe a VAE: pass --vae_name_or_path as well"):
        parse_args(["--vae_scaling_factor", "0.25"])
