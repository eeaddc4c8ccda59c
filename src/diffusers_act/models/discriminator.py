# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTDiscriminator: the time-conditioned discriminator D(x, t) of ACT (ACT, arXiv 2311.14097, Sec. 3.3;
docs/algorithm.md)."""

import contextlib
import math
from collections.abc import Mapping

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block
from torch import nn


def double_backward_attention() -> contextlib.AbstractContextManager:
    """
    A context in which attention supports a double backward (R1 differentiates D's input gradient): D's attention
    uses `scaled_dot_product_attention`, whose fused kernels (flash, memory-efficient) have no second derivative;
    inside this context it runs the math kernel, whose ops do. Use it around D's forward on R1 iterations only.
    """
    return torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH)


# UNet2DModel config keys that the discriminator takes over unchanged
_SHARED_KEYS = (
    "in_channels",
    "down_block_types",
    "block_out_channels",
    "attention_head_dim",
    "norm_num_groups",
    "norm_eps",
    "num_class_embeds",
    "flip_sin_to_cos",
    "freq_shift",
    "act_fn",
    "downsample_padding",
    "resnet_time_scale_shift",
    "sample_size",
)


class ACTDiscriminator(ModelMixin, ConfigMixin):
    r"""
    The down-sampling half of a DDPM UNet (conv_in, down blocks, mid block), conditioned on the noise level with
    the same sinusoidal embedding as the generator, and a head that gives one logit per image: GroupNorm, SiLU, global
    average pooling, linear (`head_type="mean"`), or the authors' head (`"pool2x2"`: GroupNorm, SiLU, 2x2 average
    pooling, flatten, linear `to_logit`; their ImageNet 64 discriminator has no GroupNorm, `final_norm=False`).
    It sees clean images (real ones or the generator's `f_theta`), never noisy ones, and has no skip connections
    between blocks.

    Build it to match a generator with [`ACTDiscriminator.from_unet_config`].

    Args:
        sample_size (`int` or `tuple[int, int]`, *optional*):
            Image size (informational; any size divisible by the down-sampling works).
        in_channels (`int`, defaults to 3):
            Image channels.
        down_block_types (`tuple[str]`):
            diffusers down-block names, e.g. `("DownBlock2D", "AttnDownBlock2D")`.
        block_out_channels (`tuple[int]`):
            Channels of each down block.
        layers_per_block (`int`, defaults to 3):
            ResNet layers per down block (1.5x the generator's 2 in the paper).
        attention_head_dim (`int`, *optional*, defaults to 8):
            Attention head size in attention blocks and the mid block.
        norm_num_groups (`int`, defaults to 32):
            GroupNorm groups.
        norm_eps (`float`, defaults to 1e-5):
            GroupNorm epsilon.
        num_class_embeds (`int`, *optional*):
            Number of classes for a class-conditional discriminator.
        flip_sin_to_cos (`bool`, defaults to `True`), freq_shift (`int`, defaults to 0):
            Sinusoidal embedding settings; copy them from the generator.
        act_fn (`str`, defaults to `"silu"`):
            Activation.
        downsample_padding (`int`, defaults to 1), resnet_time_scale_shift (`str`, defaults to `"default"`):
            As in `UNet2DModel`.
        head_type (`str`, defaults to `"mean"`):
            `"mean"` or `"pool2x2"` (the authors' structure, which loads their weights; see the converter).
        final_norm (`bool`, defaults to `True`):
            GroupNorm before the head's activation (the authors' ImageNet 64 discriminator has none).
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | tuple[int, int] | None = None,
        in_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        block_out_channels: tuple[int, ...] = (128, 128, 256, 256),
        layers_per_block: int = 3,
        attention_head_dim: int | None = 8,
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        num_class_embeds: int | None = None,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        act_fn: str = "silu",
        downsample_padding: int = 1,
        resnet_time_scale_shift: str = "default",
        head_type: str = "mean",
        final_norm: bool = True,
    ):
        super().__init__()
        if head_type not in ("mean", "pool2x2"):
            raise ValueError(f"`head_type` must be 'mean' or 'pool2x2', got {head_type!r}.")
        if len(down_block_types) != len(block_out_channels):
            raise ValueError(
                f"`down_block_types` ({len(down_block_types)}) and `block_out_channels` ({len(block_out_channels)}) "
                "must have the same length."
            )
        time_embed_dim = block_out_channels[0] * 4
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim)
        self.class_embedding = nn.Embedding(num_class_embeds, time_embed_dim) if num_class_embeds else None

        self.down_blocks = nn.ModuleList()
        output_channel = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            input_channel, output_channel = output_channel, block_out_channels[i]
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=layers_per_block,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    temb_channels=time_embed_dim,
                    add_downsample=i < len(block_out_channels) - 1,
                    resnet_eps=norm_eps,
                    resnet_act_fn=act_fn,
                    resnet_groups=norm_num_groups,
                    attention_head_dim=attention_head_dim or output_channel,
                    downsample_padding=downsample_padding,
                    resnet_time_scale_shift=resnet_time_scale_shift,
                )
            )
        self.mid_block = UNetMidBlock2D(
            in_channels=block_out_channels[-1],
            temb_channels=time_embed_dim,
            resnet_eps=norm_eps,
            resnet_act_fn=act_fn,
            resnet_time_scale_shift=resnet_time_scale_shift,
            attention_head_dim=attention_head_dim or block_out_channels[-1],
            resnet_groups=norm_num_groups,
        )
        channels = block_out_channels[-1]
        norm = nn.GroupNorm(norm_num_groups, channels, eps=norm_eps) if final_norm else nn.Identity()
        if head_type == "mean":
            self.norm_out, self.act, self.head = norm, nn.SiLU(), nn.Linear(channels, 1)
        else:  # the authors' head, with their module names so that their weights load
            self.conv_norm_out, self.conv_act = norm, nn.SiLU()
            self.adapter_pool2d, self.flatten = nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten()
            self.to_logit = nn.Linear(4 * channels, 1)
            self.to_logit_fx = nn.Linear(4 * channels, 1)  # unused, as in their code; kept so their weights load

    @classmethod
    def from_unet_config(
        cls, unet_config: Mapping, layers_per_block: int | None = None, **overrides
    ) -> "ACTDiscriminator":
        """
        A discriminator for a generator with this `UNet2DModel` config: the same down blocks, widths, time
        embedding and classes, with `layers_per_block` = ceil(1.5 x the generator's) unless given.

        Args:
            unet_config (`Mapping`):
                The generator's config (`unet.config`).
            layers_per_block (`int`, *optional*):
                ResNet layers per block; defaults to ceil(1.5 * unet_config["layers_per_block"]).
            overrides:
                Any other `ACTDiscriminator` config value, e.g. `block_out_channels=(128, 256, 256, 256)` for the
                authors' wider CIFAR-10 discriminator.
        """
        config = {key: unet_config[key] for key in _SHARED_KEYS if key in unet_config}
        if unet_config.get("time_embedding_type", "positional") != "positional":
            raise ValueError("ACTDiscriminator supports UNets with `time_embedding_type='positional'` only.")
        config["layers_per_block"] = layers_per_block or math.ceil(1.5 * unet_config.get("layers_per_block", 2))
        config.update(overrides)
        return cls(**config)

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor | float, class_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            sample (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
                Clean (real or generated) images in `[-1, 1]`.
            timestep (`torch.Tensor` or `float`):
                The noise-level input, one per image or one for all, in the generator's units
                (`scheduler.precondition_noise(sigma)`).
            class_labels (`torch.Tensor`, *optional*):
                Class indices, for a class-conditional discriminator.

        Returns:
            `torch.Tensor` of shape `(batch_size,)`: one logit per image (higher = more likely real).
        """
        timesteps = torch.as_tensor(timestep, device=sample.device)
        timesteps = timesteps.expand(sample.shape[0]) if timesteps.ndim == 0 else timesteps.reshape(-1)
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("This discriminator is class-conditional: pass `class_labels`.")
            emb = emb + self.class_embedding(class_labels).to(dtype=emb.dtype)

        hidden = self.conv_in(sample)
        for block in self.down_blocks:
            hidden, _ = block(hidden_states=hidden, temb=emb)
        hidden = self.mid_block(hidden, emb)
        if self.config.head_type == "mean":
            return self.head(self.act(self.norm_out(hidden)).mean(dim=(2, 3))).squeeze(-1)
        hidden = self.flatten(self.adapter_pool2d(self.conv_act(self.conv_norm_out(hidden))))
        return self.to_logit(hidden).squeeze(-1)
