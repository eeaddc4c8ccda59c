# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""scripts/convert_act_original_to_diffusers.py on checkpoints built here with the authors' key layout."""

import importlib.util
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DModel

from diffusers_act import ACTDiscriminator, ACTPipeline

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("convert", ROOT / "scripts" / "convert_act_original_to_diffusers.py")
convert = importlib.util.module_from_spec(spec)
spec.loader.exec_module(convert)

TINY = {"norm_num_groups": 4, "attention_head_dim": 4, "layers_per_block": 1}
SMALL = {
    "cifar10": {**TINY, "block_out_channels": (8, 8, 16, 16)},
    "imagenet64": {**TINY, "block_out_channels": (8, 8, 16, 16, 16), "num_class_embeds": 7},
    "lsun_cat256": {**TINY, "block_out_channels": (8, 8, 8, 16, 16, 16), "sample_size": 64},
}
DISC = {"block_out_channels": (8, 16, 16, 16)}


class Opaque:
    """A Python object that weights_only loading refuses to unpickle."""


def lightning_checkpoint(path, dataset, compiled=False, discriminator=True, extra=None):
    """A Lightning-style checkpoint: online and EMA networks and discriminators, plus training metadata."""
    config = {**convert.ORIGINAL_CONFIGS[dataset], **SMALL[dataset]}
    torch.manual_seed(1)
    online, ema = UNet2DModel(**config), UNet2DModel(**config)
    state = {f"model.unet.{k}": v for k, v in online.state_dict().items()}
    infix = "_orig_mod." if compiled else ""
    state.update({f"model_ema.unet.{infix}{k}": v for k, v in ema.state_dict().items()})
    if discriminator:
        d_config = {**config, "out_channels": 3}
        d = ACTDiscriminator.from_unet_config(d_config, **(DISC if dataset == "cifar10" else {}))
        for prefix in ("model._discriminator.", "model_ema._discriminator."):
            state.update({prefix + k: v for k, v in d.state_dict().items()})
    state.update(extra or {})
    torch.save({"state_dict": state, "epoch": 3, "global_step": 1200, "hyper_parameters": {"lr": 1e-4}}, path)
    return ema


def act_parametrisation(network, x, sigma, labels=None, channels=slice(None)):
    """One step of the authors' sampler: f = c_skip x + c_out F(c_in x, sigma)[channels], clipped."""
    c_in = 1 / (sigma**2 + 0.25) ** 0.5
    c_skip = 0.25 / ((sigma - 0.002) ** 2 + 0.25)
    c_out = (sigma - 0.002) * 0.5 / (sigma**2 + 0.25) ** 0.5
    with torch.no_grad():
        out = network(x * c_in, torch.tensor(sigma), class_labels=labels).sample[:, channels]
    return (c_skip * x + c_out * out).clamp(-1, 1)


@pytest.mark.parametrize("dataset, compiled", [("cifar10", False), ("imagenet64", True), ("lsun_cat256", False)])
def test_converted_pipeline_matches_the_original_network(tmp_path, dataset, compiled):
    ema = lightning_checkpoint(tmp_path / "act.ckpt", dataset, compiled=compiled).eval()
    pipe, discriminator = convert.convert(
        tmp_path / "act.ckpt", dataset, tmp_path / "out", unet_overrides=SMALL[dataset],
        discriminator_overrides=DISC if dataset == "cifar10" else None,
    )  # fmt: skip
    loaded = ACTPipeline.from_pretrained(tmp_path / "out")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.scheduler.config.noise_conditioning == "sigma"
    assert loaded.unet.config.out_channels == 3
    if dataset == "lsun_cat256":
        assert (loaded.unet.config.flip_sin_to_cos, loaded.unet.config.freq_shift) == (False, 1)
    size = loaded.unet.config.sample_size
    z = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([3, 5]) if dataset == "imagenet64" else None
    out = loaded(batch_size=2, latents=z, class_labels=labels, output_type="latent").images
    channels = convert.OUTPUT_CHANNELS.get(dataset, slice(None))
    expected = act_parametrisation(ema, 80.0 * z, 80.0, labels, channels)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert discriminator is not None and (tmp_path / "out" / "discriminator" / "config.json").is_file()


def test_the_online_weights_can_be_converted_instead(tmp_path):
    lightning_checkpoint(tmp_path / "act.ckpt", "imagenet64")
    ema_pipe, _ = convert.convert(
        tmp_path / "act.ckpt", "imagenet64", tmp_path / "a", unet_overrides=SMALL["imagenet64"]
    )
    online_pipe, _ = convert.convert(
        tmp_path / "act.ckpt", "imagenet64", tmp_path / "b", use_online_weights=True,
        unet_overrides=SMALL["imagenet64"],
    )  # fmt: skip
    a, b = ema_pipe.unet.state_dict(), online_pipe.unet.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_every_key_must_be_used(tmp_path):
    lightning_checkpoint(tmp_path / "act.ckpt", "cifar10", extra={"model_ema.unet.extra_layer.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"1 unused \(e.g. \['extra_layer.weight'\]\)"):
        convert.convert(tmp_path / "act.ckpt", "cifar10", tmp_path / "out", unet_overrides=SMALL["cifar10"])


def test_a_checkpoint_without_the_ema_network_is_explained(tmp_path):
    torch.save({"state_dict": {"model.net.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"No 'model_ema.unet.' weights .* holds \['model.net'\]"):
        convert.convert(tmp_path / "other.ckpt", "cifar10", tmp_path / "out")


def test_missing_keys_are_named(tmp_path):
    lightning_checkpoint(tmp_path / "act.ckpt", "cifar10")
    state = torch.load(tmp_path / "act.ckpt", weights_only=True)
    online = {k.replace("model_ema.", "model."): v for k, v in state["state_dict"].items() if "conv_out" not in k}
    torch.save({"state_dict": online}, tmp_path / "online.ckpt")
    with pytest.raises(ValueError, match=r"2 missing \(e.g. \['conv_out.bias', 'conv_out.weight'\]\)"):
        convert.convert(tmp_path / "online.ckpt", "cifar10", tmp_path / "out", use_online_weights=True,
                        unet_overrides=SMALL["cifar10"])  # fmt: skip


def test_no_code_is_unpickled(tmp_path):
    torch.save({"state_dict": {}, "callbacks": Opaque()}, tmp_path / "unsafe.ckpt")
    with pytest.raises(ValueError, match="weights_only=True"):
        convert.convert(tmp_path / "unsafe.ckpt", "cifar10", tmp_path / "out")


def test_a_discriminator_of_another_structure_is_reported_not_converted(tmp_path, capsys):
    lightning_checkpoint(tmp_path / "act.ckpt", "cifar10")
    pipe, discriminator = convert.convert(
        tmp_path / "act.ckpt", "cifar10", tmp_path / "out", unet_overrides=SMALL["cifar10"],
        discriminator_overrides={"block_out_channels": (8, 8, 16, 16)},  # not the widths the checkpoint has
    )  # fmt: skip
    assert discriminator is None and not (tmp_path / "out" / "discriminator").exists()
    assert "not converted" in capsys.readouterr().out
    assert (tmp_path / "out" / "model_index.json").is_file()
