# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import pytest
import torch
from conftest import tiny_unet

from diffusers_act import ACTDiscriminator, ConsistencyACTScheduler, unet_from_preset


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_built_from_the_generator_config():
    unet = tiny_unet(num_class_embeds=5)
    d = ACTDiscriminator.from_unet_config(unet.config)
    assert d.config.layers_per_block == 2  # ceil(1.5 * 1)
    assert tuple(d.config.block_out_channels) == (8, 16)
    assert tuple(d.config.down_block_types) == ("DownBlock2D", "AttnDownBlock2D")
    assert d.config.num_class_embeds == 5 and d.config.flip_sin_to_cos == unet.config.flip_sin_to_cos
    assert len(d.down_blocks) == 2 and all(len(b.resnets) == 2 for b in d.down_blocks)
    assert ACTDiscriminator.from_unet_config(unet.config, layers_per_block=4).config.layers_per_block == 4


def test_paper_sized_discriminators():
    """Sizes against the paper's Table 5 (D: 14.1M for CIFAR-10, 54M for ImageNet 64) and the authors' code (their
    wider CIFAR-10 D, about 18M), to the precision those numbers are given in."""
    cifar = unet_from_preset("cifar10").config
    same_width = ACTDiscriminator.from_unet_config(cifar)
    authors = ACTDiscriminator.from_unet_config(cifar, block_out_channels=(128, 256, 256, 256), head_type="pool2x2")
    imagenet = ACTDiscriminator.from_unet_config(unet_from_preset("imagenet64").config)
    assert same_width.config.layers_per_block == 3  # 1.5 x the generator's 2
    assert round(count(same_width) / 1e5) == 141  # 14.1M
    assert round(count(authors) / 1e6) == 18  # about 18M
    assert round(count(imagenet) / 1e6) == 54  # 54M
    # the authors' head: two 4C -> 1 linear layers (one unused) instead of one C -> 1
    mean_head = ACTDiscriminator.from_unet_config(cifar, block_out_channels=(128, 256, 256, 256))
    assert count(authors) - count(mean_head) == 2 * (4 * 256 + 1) - (256 + 1)


def test_one_logit_per_image_conditioned_on_time_and_class():
    torch.manual_seed(0)
    d = ACTDiscriminator.from_unet_config(tiny_unet(num_class_embeds=3).config).eval()
    x = torch.randn(4, 3, 8, 8)
    scheduler = ConsistencyACTScheduler()
    t = scheduler.precondition_noise(torch.tensor([0.01, 0.5, 2.0, 80.0]))
    labels = torch.tensor([0, 1, 2, 0])
    logits = d(x, t, labels)
    assert logits.shape == (4,)
    assert not torch.allclose(d(x, t.flip(0), labels), logits)
    assert not torch.allclose(d(x, t, labels.roll(1)), logits)
    # a scalar time input is broadcast; each image is scored independently
    torch.testing.assert_close(d(x, t[0], labels)[0], logits[0])
    torch.testing.assert_close(d(x[1:2], t[1:2], labels[1:2]), logits[1:2], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="class-conditional"):
        d(x, t)


def test_save_and_load_round_trip(tmp_path):
    d = ACTDiscriminator.from_unet_config(tiny_unet().config)
    d.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = ACTDiscriminator.from_pretrained(tmp_path)
    assert loaded.config.layers_per_block == d.config.layers_per_block
    state, loaded_state = d.state_dict(), loaded.state_dict()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)


def r1_gradients(d, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x, 1.0).sum(), x, create_graph=True)
    d.zero_grad(set_to_none=True)
    grad.square().sum().backward()
    return {name: p.grad.clone() for name, p in d.named_parameters() if p.grad is not None}


def test_r1_double_backward_through_attention():
    """D's attention is SDPA (fused kernels outside R1); inside `double_backward_attention` R1's double backward
    runs and gives the gradients of plain-matmul attention (diffusers' AttnProcessor, the reference)."""
    from diffusers.models.attention_processor import Attention, AttnProcessor

    from diffusers_act.models.discriminator import double_backward_attention

    d = ACTDiscriminator.from_unet_config(tiny_unet().config)
    x = torch.randn(2, 3, 8, 8)
    attention = d.down_blocks[1].attentions[0]
    assert type(attention.processor).__name__ == "AttnProcessor2_0"  # SDPA
    with pytest.raises(RuntimeError, match="derivative for .*scaled_dot_product"):  # the fused CPU kernel
        r1_gradients(d, x)
    with double_backward_attention():
        grads = r1_gradients(d, x)
    for module in d.modules():
        if isinstance(module, Attention):
            module.set_processor(AttnProcessor())
    reference = r1_gradients(d, x)
    assert set(grads) == set(reference)
    for name in grads:
        torch.testing.assert_close(grads[name], reference[name], rtol=1e-4, atol=1e-6)
    for weight in (attention.to_q.weight, attention.to_k.weight, attention.to_v.weight):
        assert weight.grad.abs().sum() > 0


def test_mismatched_config_is_rejected():
    with pytest.raises(ValueError, match="same length"):
        ACTDiscriminator(block_out_channels=(8, 16, 32), down_block_types=("DownBlock2D",))
