# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Host-device synchronisations inside ACT iterations and while drawing device batches, on a CUDA GPU
(torch.cuda.set_sync_debug_mode("error") turns each one into an error). Run by the GPU check scripts."""

import torch
from accelerate import Accelerator

from diffusers_act.presets import unet_config
from diffusers_act.training import ACTTrainer, LogWindow
from diffusers_act.training.batches import DeviceBatches
from diffusers_act.training.config import parse_args


def without_sync(what: str, work) -> None:
    """Runs `work()` with every host-device synchronisation an error, and prints whether one happened."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        work()
        print(f"no host-device synchronisation in {what}")
    except RuntimeError as error:
        print(f"SYNC in {what}: {error}")
    finally:
        torch.cuda.set_sync_debug_mode(0)


run, config = parse_args(["--preset", "cifar10", "--loss_type", "pseudo_huber", "--gp_interval", "2"])
accelerator = Accelerator()
trainer = ACTTrainer.build(unet_config("cifar10", 32, 3, None), config, accelerator)
window, device, b = LogWindow(accelerator), accelerator.device, run.train_batch_size


def iterations(steps):
    for step in steps:
        data = [torch.rand(b, 3, 32, 32, device=device) * 2 - 1 for _ in range(2)]
        window.add(trainer.train_step(data[0], step, None, data[1], None))


iterations(range(3))  # warm-up: cuDNN autotuning, the grid cache, the controller's p moving to the device
without_sync("4 ACT iterations (2 with R1 and a controller update)", lambda: iterations(range(3, 7)))
print({k: round(v, 4) for k, v in window.means().items()})

# the data path: shuffles, flips, epoch boundaries
images = {"pixel_values": torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8), "labels": torch.arange(1000)}
batches = DeviceBatches(images, 160, seed=0, device=device, random_flip=True).resumable(0)
next(batches)
without_sync("20 device batches (3 epochs)", lambda: [next(batches) for _ in range(20)])
