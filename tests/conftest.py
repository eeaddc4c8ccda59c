# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub; fail fast instead of retrying
# the digits classifier's disk cache: one per test session (shared with the scripts the tests start), not ~/.cache
os.environ.setdefault("DIFFUSERS_ACT_CACHE", tempfile.mkdtemp(prefix="diffusers_act_cache_"))

import socket
import subprocess
import sys

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
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


def launch_two_cpu_processes(*script_and_args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 ...` as two CPU processes over gloo (no GPU needed)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with socket.socket() as probe:  # a free port, so that runs close together never meet on the default one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(port)]  # fmt: skip
    return subprocess.run([*launcher, *script_and_args], env=env, capture_output=True, text=True, timeout=timeout)


def reset_accelerator_state() -> None:
    """Forget accelerate's process-wide state, so that the next Accelerator starts with its own settings."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def fresh_accelerator_state():
    """Each test builds its own Accelerator (accumulation steps, precision)."""
    reset_accelerator_state()
    yield
    reset_accelerator_state()
