"""UNet configurations of the paper's models (ACT_SPEC section 9, paper Table 5)."""

from copy import deepcopy

from diffusers import UNet2DModel

UNET_PRESETS: dict[str, dict] = {
    # CIFAR-10 32x32, unconditional: 4 levels, attention at 16x16.
    "cifar10": dict(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        layers_per_block=2,
        block_out_channels=(128, 128, 256, 256),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
    ),
    # ImageNet 64x64, class-conditional: 5 levels, attention at 16x16.
    "imagenet64": dict(
        sample_size=64,
        in_channels=3,
        out_channels=3,
        layers_per_block=2,
        block_out_channels=(128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=16,
        num_class_embeds=1000,
    ),
}


def unet_from_preset(name: str, **overrides) -> UNet2DModel:
    """Builds a randomly initialised `UNet2DModel` from a preset of `UNET_PRESETS`, with config overrides."""
    if name not in UNET_PRESETS:
        raise ValueError(f"Unknown UNet preset {name!r}; choose one of {sorted(UNET_PRESETS)}.")
    return UNet2DModel(**{**deepcopy(UNET_PRESETS[name]), **overrides})
