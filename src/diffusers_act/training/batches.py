# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Batches of training images: a shuffled data loader that resumes at any micro-batch, or the whole (small) set
decoded once and kept on the device ([`DeviceBatches`]); both give the same order on one process."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from .config import DATA_ON_DEVICE_LIMIT

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = {"pixel_values": torch.stack([e["pixel_values"] for e in examples])}
    if "labels" in examples[0]:
        batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=torch.long)
    return batch


def make_dataloader(
    dataset: "datasets.Dataset", batch_size: int, seed: int, num_workers: int = 0, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """Shuffled batches (the last incomplete one dropped) with their own generator: starting an epoch must not draw
    from the global random state, or resuming would shift every later draw. `pin_memory` (for a GPU) lets the
    copies to the device overlap the iteration (with accelerate's `non_blocking`)."""
    if len(dataset) < batch_size:
        raise ValueError(
            f"The dataset has {len(dataset)} images, fewer than one batch ({batch_size}). Lower --train_batch_size "
            "(ACT loads 2 x --train_batch_size images per iteration) or add images."
        )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )


def resumable_batches(
    dataloader: torch.utils.data.DataLoader, accelerator: "Accelerator", start: int = 0
) -> Iterator[tuple[int, dict]]:
    """
    `(epoch, batch)` pairs without end, from micro-batch `start` on. Epoch e reshuffles with the seed and e
    (accelerate's seedable sampler), so a run resumed at micro-batch `start` sees the batches an uninterrupted run
    would.
    """
    epoch, skip = divmod(start, len(dataloader))
    while True:
        dataloader.set_epoch(epoch)
        for batch in accelerator.skip_first_batches(dataloader, skip) if skip else dataloader:
            yield epoch, batch
        epoch, skip = epoch + 1, 0


def decode_dataset(dataset: "datasets.Dataset", batch_size: int = 256, num_workers: int = 0) -> dict:
    """
    Every image of a dataset whose transform gives `pixel_values` in [-1, 1] (without random flips or crops),
    decoded once: `{"pixel_values": uint8 tensor (N, C, H, W)}` and `"labels"` when the transform gives them. The
    uint8 values are exact: the transform's values are `u / 127.5 - 1` of the resized 8-bit image.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate, num_workers=num_workers)
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in loader:
        parts.setdefault("pixel_values", []).append(((batch["pixel_values"] + 1) * 127.5).round().to(torch.uint8))
        if "labels" in batch:
            parts.setdefault("labels", []).append(batch["labels"])
    return {key: torch.cat(values) for key, values in parts.items()}


class DeviceBatches:
    """
    Shuffled batches of a training set held on the device as one uint8 tensor (decoded once, [`decode_dataset`]),
    with random horizontal flips drawn on the device: no decoding, no host-to-device copy and no host work per
    iteration. The order is the one `make_dataloader` gives under accelerate's seedable sampler (epoch e shuffles
    with `torch.randperm(N, generator=seed + e)`, the last incomplete batch dropped), so on one process the batches
    equal the data loader's, flips aside. With several processes, process r takes batches r, r + P, ... of each epoch.

    Args:
        data (`dict`): [`decode_dataset`]'s output, or the latents of a latent run (`"latents"`, and
            `"flipped_latents"` of the mirrored images for flips; `diffusers_act.training.latents`), yielded as
            `"pixel_values"`.
        batch_size (`int`): Images per batch (per process).
        seed (`int`): The data seed (`--seed`).
        device (`torch.device`): Where the images are kept and the batches are made.
        random_flip (`bool`): Flip each image horizontally with probability 1/2, drawn per epoch from a generator
            seeded by `seed`, the epoch and the process, so that a resumed run draws the same flips.
        process_index (`int`), num_processes (`int`): This process and how many there are.
        output_device (`torch.device`, *optional*): Where the batches go, when the set is kept elsewhere (latents
            too large for the accelerator stay on the CPU); defaults to `device`.
    """

    def __init__(
        self,
        data: dict,
        batch_size: int,
        seed: int,
        device: torch.device,
        random_flip: bool = False,
        process_index: int = 0,
        num_processes: int = 1,
        output_device: torch.device | None = None,
    ):
        self.images = data["pixel_values"].to(device) if "pixel_values" in data else data["latents"].to(device)
        self.flipped = data["flipped_latents"].to(device) if "flipped_latents" in data else None
        self.labels = data["labels"].to(device) if "labels" in data else None
        self.batch_size, self.seed, self.device, self.random_flip = batch_size, seed, torch.device(device), random_flip
        self.output_device = torch.device(output_device or device)
        self.process_index, self.num_processes = process_index, num_processes
        if len(self) == 0:
            raise ValueError(
                f"The dataset has {len(self.images)} images, fewer than one batch of {batch_size} for each of "
                f"{num_processes} process(es). Lower --train_batch_size (ACT loads 2 x --train_batch_size images per "
                "iteration) or add images."
            )

    def __len__(self) -> int:
        """Batches per process per epoch."""
        return len(self.images) // self.batch_size // self.num_processes

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict]:
        """The batches of `epoch`, from batch `skip` on."""
        size, count = self.batch_size, len(self) * self.num_processes
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(self.seed + epoch))
        order = order[: count * size].view(count, size)[self.process_index :: self.num_processes]
        if self.device.type == "cuda":  # a pageable copy would wait for the device
            order = order.pin_memory().to(self.device, non_blocking=True)
        else:
            order = order.to(self.device)
        flips = None
        if self.random_flip:
            seed = ((self.seed * 1_000_003 + epoch) * 1_009 + self.process_index) % 2**63
            generator = torch.Generator(self.device).manual_seed(seed)
            flips = torch.rand(order.shape, generator=generator, device=self.device) < 0.5
        for i in range(skip, len(order)):
            images = self.images[order[i]]
            images = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images
            if flips is not None:
                mirrored = images.flip(-1) if self.flipped is None else self.flipped[order[i]]
                images = torch.where(flips[i, :, None, None, None], mirrored, images)
            batch = {"pixel_values": images}
            if self.labels is not None:
                batch["labels"] = self.labels[order[i]]
            yield {key: value.to(self.output_device, non_blocking=True) for key, value in batch.items()}

    def resumable(self, start: int = 0) -> Iterator[tuple[int, dict]]:
        """`(epoch, batch)` pairs without end, from batch `start` on (as [`resumable_batches`])."""
        epoch, skip = divmod(start, len(self))
        while True:
            yield from ((epoch, batch) for batch in self.epoch(epoch, skip))
            epoch, skip = epoch + 1, 0


def use_data_on_device(run, num_images: int, channels: int) -> bool:
    """Whether to train from [`DeviceBatches`]: `--data_on_device yes`, or `auto` with a center crop and at most
    `DATA_ON_DEVICE_LIMIT` bytes of uint8 images (random crops are drawn by the data loader)."""
    if run.data_on_device == "no" or not run.center_crop:  # `yes` with random crops is refused by `RunConfig`
        return False
    return run.data_on_device == "yes" or num_images * channels * run.resolution**2 <= DATA_ON_DEVICE_LIMIT
