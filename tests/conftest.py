import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub; fail fast instead of retrying

import pytest
import torch
from diffusers import UNet2DModel

from diffusers_act import ACTPipeline, ConsistencyACTScheduler


def tiny_unet(seed: int = 0, **overrides) -> UNet2DModel:
    """A UNet of a few thousand parameters with random (seeded) weights, for fast CPU tests."""
    config = dict(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=4,
    )
    config.update(overrides)
    torch.manual_seed(seed)
    return UNet2DModel(**config).eval()


@pytest.fixture
def unet():
    return tiny_unet()


@pytest.fixture
def pipe(unet):
    pipe = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe
