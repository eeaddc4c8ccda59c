# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""scripts/convert_act_original_to_diffusers.py on checkpoints built here with the authors' key layout."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block
from torch import nn

from diffusers_act import ACTDiscriminator, ACTPipeline, ConsistencyACTScheduler
from diffusers_act.presets import PRESETS
from diffusers_act.training.curricula import num_timesteps

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


class AuthorsDiscriminator(nn.Module):
    """
    The authors' discriminator as their code builds it (kong13661/ACT, models/discriminator_cifar10.py and
    discriminator_imagenet.py), written here from diffusers' blocks, independently of ACTDiscriminator: their module
    names, the raw-sigma sinusoidal time embedding, down blocks and mid block, then [GroupNorm] SiLU, 2x2 average
    pooling, flatten and `to_logit` (an unused `to_logit_fx` beside it); ImageNet 64's has no final GroupNorm.
    """

    def __init__(self, widths, block_types, layers, heads, groups, num_class_embeds=None, final_norm=True):
        super().__init__()
        temb = 4 * widths[0]
        self.conv_in = nn.Conv2d(3, widths[0], 3, padding=1)
        self.time_proj = Timesteps(widths[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(widths[0], temb)
        self.class_embedding = nn.Embedding(num_class_embeds, temb) if num_class_embeds else None
        self.down_blocks = nn.ModuleList(
            get_down_block(
                kind, num_layers=layers, in_channels=widths[max(i - 1, 0)], out_channels=width, temb_channels=temb,
                add_downsample=i < len(widths) - 1, resnet_eps=1e-5, resnet_act_fn="silu", resnet_groups=groups,
                attention_head_dim=heads, downsample_padding=1,
            )
            for i, (kind, width) in enumerate(zip(block_types, widths, strict=True))
        )  # fmt: skip
        self.mid_block = UNetMidBlock2D(
            in_channels=widths[-1], temb_channels=temb, resnet_eps=1e-5, resnet_act_fn="silu",
            output_scale_factor=1, attention_head_dim=heads, resnet_groups=groups,
        )  # fmt: skip
        if final_norm:
            self.conv_norm_out = nn.GroupNorm(groups, widths[-1], eps=1e-5)
        self.to_logit, self.to_logit_fx = nn.Linear(4 * widths[-1], 1), nn.Linear(4 * widths[-1], 1)

    def forward(self, x, sigma, labels=None):
        emb = self.time_embedding(self.time_proj(sigma))
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(labels)
        h = self.conv_in(x)
        for block in self.down_blocks:
            h, _ = block(hidden_states=h, temb=emb)
        h = self.mid_block(h, emb)
        h = self.conv_norm_out(h) if hasattr(self, "conv_norm_out") else h
        return self.to_logit(F.adaptive_avg_pool2d(F.silu(h), (2, 2)).flatten(1)).squeeze(-1)


def authors_discriminator(dataset):
    config = {**convert.ORIGINAL_CONFIGS[dataset], **SMALL[dataset]}
    torch.manual_seed(2)
    return AuthorsDiscriminator(
        DISC["block_out_channels"] if dataset == "cifar10" else config["block_out_channels"],
        config["down_block_types"], layers=2, heads=4, groups=4, num_class_embeds=config.get("num_class_embeds"),
        final_norm=dataset == "cifar10",
    ).eval()  # fmt: skip


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
    if discriminator and dataset in ("cifar10", "imagenet64"):
        d = authors_discriminator(dataset)
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
    if dataset == "lsun_cat256":  # the authors ship no LSUN discriminator
        return
    assert (tmp_path / "out" / "discriminator" / "config.json").is_file()
    loaded_d = ACTDiscriminator.from_pretrained(tmp_path / "out" / "discriminator").eval()
    assert loaded_d.config.head_type == "pool2x2" and loaded_d.config.final_norm == (dataset == "cifar10")
    images, sigma = torch.rand(2, 3, size, size) * 2 - 1, torch.tensor([0.5, 30.0])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded_d(images, sigma, labels), authors_discriminator(dataset)(images, sigma, labels)
        )


# (s0, s1, K) of the authors' runs: paper Table 6 and their code (LSUN Cat 256: their training defaults)
AUTHORS_RUNS = {"cifar10": (2, 150, 300_000), "imagenet64": (2, 200, 400_000), "lsun_cat256": (2, 150, 800_000)}


@pytest.mark.parametrize("dataset, expected", [("cifar10", 150), ("imagenet64", 200), ("lsun_cat256", 150)])
def test_the_scheduler_grid_is_the_one_the_authors_run_ended_on(tmp_path, dataset, expected):
    s0, s1, total = AUTHORS_RUNS[dataset]
    # their curriculum, written out: N(k) = round(sqrt(k/K (s1^2 - s0^2) + s0^2)), at k = K
    authors_final = round(math.sqrt(total / total * (s1**2 - s0**2) + s0**2))
    assert authors_final == expected == num_timesteps(total, total, s0, s1, "official")
    lightning_checkpoint(tmp_path / "act.ckpt", dataset)
    convert.convert(
        tmp_path / "act.ckpt", dataset, tmp_path / "out", unet_overrides=SMALL[dataset],
        discriminator_overrides=DISC if dataset == "cifar10" else None,
    )  # fmt: skip
    scheduler = ConsistencyACTScheduler.from_pretrained(tmp_path / "out" / "scheduler")
    assert scheduler.config.num_train_timesteps == expected  # not the paper formula's s1 + 1 (151 / 201)
    # so multistep sampling visits only noise levels of the training grid (on a 151-point grid, 2 steps would
    # sample at karras(75 / 150), between two of the 150 points the network was trained at)
    grid = scheduler.karras_sigmas(expected, dtype=torch.float64)
    for steps in (2, 3, 4, 7):
        scheduler.set_timesteps(steps)
        for sigma in scheduler.sigmas[:-1].double():
            assert torch.isclose(grid, sigma, rtol=1e-6, atol=0).any(), (steps, sigma.item())


def test_the_grid_follows_the_preset_not_a_fixed_number(monkeypatch):
    assert convert.final_num_timesteps("imagenet64") == 200
    monkeypatch.setitem(PRESETS["imagenet64"], "s1", 120)
    assert convert.final_num_timesteps("imagenet64") == 120


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
