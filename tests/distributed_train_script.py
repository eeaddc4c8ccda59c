# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Run by tests/test_trainer.py under `accelerate launch --multi_gpu --num_processes 2` (gloo on CPU): a few ACT
iterations with augmentation and R1 on every iteration, each rank on different data; each rank then saves its
generator, target and discriminator weights and its augmentation state for the test to compare."""

import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tiny_unet  # noqa: E402

from diffusers_act.training import ACTConfig, ACTTrainer  # noqa: E402


def main(output_dir: str, steps: int = 3) -> None:
    accelerator = Accelerator()
    set_seed(0)  # the same initial weights on every rank
    config = ACTConfig(
        total_steps=10, s0=4, s1=8, augment=True, aug_p=0.2, gp_interval=1, aug_target=0.0, learning_rate=1e-3
    )
    trainer = ACTTrainer.build(tiny_unet(num_class_embeds=4).train(), config, accelerator)
    unet, target, discriminator = trainer.unet, trainer.target_unet, trainer.discriminator

    set_seed(100 + accelerator.process_index)  # different data and noise on each rank
    for step in range(steps):
        images = torch.rand(4, 3, 8, 8) * 2 - 1
        labels = torch.randint(0, 4, (4,))
        logs = trainer.train_step(images, step, labels, torch.rand(4, 3, 8, 8) * 2 - 1, torch.randint(0, 4, (4,)))

    state = {
        "unet": accelerator.unwrap_model(unet).state_dict(),
        "target": target.state_dict(),
        "discriminator": accelerator.unwrap_model(discriminator).state_dict(),
        "trainer": trainer.state_dict(),
        "logs": logs,
        "world_size": accelerator.num_processes,
    }
    torch.save(state, Path(output_dir) / f"rank{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()  # tear the process group down together (an early exit can abort in gloo)
    del trainer, unet, discriminator  # DDP reducers freed after their gloo group can deadlock in its destructor
    accelerator.free_memory()
    accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1])
