# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Training data: a datasets Hub dataset, a local image folder or scikit-learn's bundled digits, turned into batches
of images in [-1, 1] (and labels), with an endless batch iterator that resumes at any iteration."""

import io
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import PIL.Image
import torch

from .disk import format_bytes

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DIGITS_TRAIN_SIZE = 1347  # the first 1,347 of scikit-learn's 1,797 digits; the last 450 are held out


def digits_pil_images() -> tuple[list[PIL.Image.Image], list[int]]:
    """The 1,797 digits as 8x8 grey PIL images (0-16 scaled to 0-255) and their labels, in scikit-learn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [PIL.Image.fromarray((img * 255 / 16).round().astype(np.uint8), mode="L") for img in digits.images]
    return images, digits.target.tolist()


def digits_tensors(resolution: int = 16, split: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
    """
    The digits resized (bicubic, as the training data is) to `resolution`, in `[0, 1]`, shape `(N, 1, R, R)`, with
    labels. `split`: `"train"` (first 1,347), `"test"` (last 450) or `"all"`.
    """
    images, labels = digits_pil_images()
    selection = {"train": slice(0, DIGITS_TRAIN_SIZE), "test": slice(DIGITS_TRAIN_SIZE, None), "all": slice(None)}
    if split not in selection:
        raise ValueError(f"`split` must be 'train', 'test' or 'all', got {split!r}.")
    images, labels = images[selection[split]], labels[selection[split]]
    arrays = [np.asarray(im.resize((resolution, resolution), PIL.Image.BICUBIC), np.float32) for im in images]
    return torch.from_numpy(np.stack(arrays))[:, None] / 255, torch.tensor(labels)


def digits_dataset() -> "datasets.Dataset":
    """The digits as a `datasets.Dataset` with an `image` and a `label` column (1,797 images, 10 classes)."""
    import datasets

    images, labels = digits_pil_images()
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in range(10)])}
    )
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def load_training_dataset(
    dataset_name: str | None = None,
    train_data_dir: str | None = None,
    dataset_config_name: str | None = None,
    image_column: str = "image",
    cache_dir: str | None = None,
    max_train_samples: int | None = None,
    verify_images: bool = False,
) -> "datasets.Dataset":
    """
    The training images as a `datasets.Dataset` whose image column is left undecoded (so a broken file can be named
    when it is read): an image folder (`train_data_dir`; class sub-folders give a `label` column), a Hub dataset
    or a local folder written by `save_to_disk` (`dataset_name`; of a `DatasetDict`, its `train` split), or, with
    neither, the digits. `verify_images` reads every image first and lists all the
    unreadable ones (otherwise the first one stops training when it is drawn).
    """
    import datasets

    if train_data_dir:
        if not Path(train_data_dir).is_dir():
            raise ValueError(f"--train_data_dir {train_data_dir!r} is not a folder.")
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in Path(train_data_dir).rglob("*")):
            raise ValueError(
                f"No images found in --train_data_dir {train_data_dir} (looked for {', '.join(IMAGE_SUFFIXES)})."
            )
        dataset = datasets.load_dataset("imagefolder", data_dir=train_data_dir, cache_dir=cache_dir, split="train")
    elif dataset_name and (Path(dataset_name) / "state.json").is_file():  # a `Dataset.save_to_disk` folder
        dataset = datasets.load_from_disk(dataset_name)
    elif dataset_name:
        try:
            dataset = datasets.load_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir, split="train")
        except Exception as error:
            raise ValueError(
                f"Could not load --dataset_name {dataset_name!r}: the name is unknown or the Hub cannot be reached "
                f"(no network?). To train on local images, pass --train_data_dir DIR (an image folder; class "
                f"sub-folders give labels). Original error: {type(error).__name__}: {error}"
            ) from error
    else:
        dataset = digits_dataset()
    if image_column not in dataset.column_names:
        raise ValueError(
            f"--image_column {image_column!r} is not in the dataset; its columns are {dataset.column_names}."
        )
    if max_train_samples is not None:
        dataset = dataset.select(range(min(max_train_samples, len(dataset))))
    dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    if verify_images:
        unreadable = unreadable_images(dataset, image_column)
        if unreadable:
            listed = "; ".join(unreadable[:20]) + (
                f"; and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
            )
            raise ValueError(f"{len(unreadable)} of {len(dataset)} training images cannot be read: {listed}.")
    return dataset


def unreadable_images(dataset: "datasets.Dataset", image_column: str, workers: int | None = None) -> list[str]:
    """Reads every image of an undecoded image column in parallel; returns one line per unreadable image."""

    def problem(index: int) -> str | None:
        try:
            decode_image(dataset[index][image_column], channels=0, index=index)
        except ValueError as error:
            return str(error).split(". Remove")[0].removeprefix("Could not read training image ")
        return None

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return [p for p in pool.map(problem, range(len(dataset))) if p is not None]


def count_classes(dataset: "datasets.Dataset", label_column: str) -> int:
    """The number of classes of a label column (its `ClassLabel` names, else the largest label + 1)."""
    feature = dataset.features[label_column]
    return feature.num_classes if hasattr(feature, "num_classes") else int(max(dataset[label_column])) + 1


GREY_BANDS = {"1", "L", "I", "F", "A"}  # PIL bands of greyscale images, with or without alpha
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit greyscale (PNG, TIFF) as PIL opens it


def class_names(dataset: "datasets.Dataset", label_column: str) -> dict[int, str] | None:
    """`{class id: name}` of a `ClassLabel` column (an image folder's class sub-folders), else None."""
    names = getattr(dataset.features.get(label_column), "names", None)
    return dict(enumerate(names)) if names else None


def image_channels(dataset: "datasets.Dataset", image_column: str, chunk: int = 1024) -> int:
    """
    What a UNet for this data takes: 3 when any image of the whole set is in colour (greyscale ones are then
    converted to RGB), else 1. Reads only image headers, and stops at the first colour image; logs the decision.
    """
    for start in range(0, len(dataset), chunk):
        for offset, value in enumerate(dataset[start : start + chunk][image_column]):
            try:
                with PIL.Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]) as image:
                    colour = not set(image.getbands()) <= GREY_BANDS
            except Exception:  # an unreadable file is named when it is read (or by --verify_images)
                continue
            if colour:
                index = start + offset
                before = f"; the {index} images before it are greyscale and are converted" if index else ""
                source = value.get("path") or f"image #{index}"
                logger.info(f"Training on 3 channels (RGB): {source} is in colour{before}.")
                return 3
    logger.info(f"Training on 1 channel: all {len(dataset)} images are greyscale.")
    return 1


def decode_image(value: dict, channels: int, index: int) -> PIL.Image.Image:
    """Decodes an undecoded `datasets.Image` value; `channels` 1 gives "L", 3 gives "RGB", 0 keeps the mode."""
    source = value.get("path") or f"image #{index}"
    try:
        image = PIL.Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"])
        image.load()
    except Exception as error:
        raise ValueError(f"Could not read training image {source}: {error}. Remove or replace the file.") from error
    if channels and image.mode in SIXTEEN_BIT_MODES:  # scaled to 8 bits (convert("L") would clip at 255)
        eight_bits = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257), 0, 255).astype(np.uint8)
        image = PIL.Image.fromarray(eight_bits, mode="L")
    return image if channels == 0 else image.convert("L" if channels == 1 else "RGB")


def image_to_tensor(image: PIL.Image.Image, resolution: int, center_crop: bool, random_flip: bool) -> torch.Tensor:
    """Resize (shorter side), crop to a square, maybe flip, scale to [-1, 1]: a tensor of shape (C, H, W)."""
    scale = resolution / min(image.size)
    size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
    if image.size != size:
        image = image.resize(size, PIL.Image.BICUBIC)
    if center_crop:
        left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
    else:
        left = int(torch.randint(0, image.width - resolution + 1, ()))
        top = int(torch.randint(0, image.height - resolution + 1, ()))
    array = np.asarray(image.crop((left, top, left + resolution, top + resolution)), dtype=np.float32)
    if random_flip and torch.rand(()) < 0.5:
        array = array[:, ::-1]
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1) / 127.5 - 1


def make_transform(
    image_column: str,
    channels: int,
    resolution: int,
    center_crop: bool = True,
    random_flip: bool = False,
    label_column: str | None = None,
) -> Callable[[dict], dict]:
    """A `datasets` transform to `pixel_values` in [-1, 1] (and `labels` when `label_column` is given)."""

    def transform(batch: dict) -> dict:
        values = batch[image_column]
        out = {
            "pixel_values": [
                image_to_tensor(decode_image(value, channels, i), resolution, center_crop, random_flip)
                for i, value in enumerate(values)
            ]
        }
        if label_column is not None:
            out["labels"] = batch[label_column]
        return out

    return transform


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
        data (`dict`): [`decode_dataset`]'s output.
        batch_size (`int`): Images per batch (per process).
        seed (`int`): The data seed (`--seed`).
        device (`torch.device`): Where the images are kept and the batches are made.
        random_flip (`bool`): Flip each image horizontally with probability 1/2, drawn per epoch from a generator
            seeded by `seed`, the epoch and the process, so that a resumed run draws the same flips.
        process_index (`int`), num_processes (`int`): This process and how many there are.
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
    ):
        self.images = data["pixel_values"].to(device)
        self.labels = data["labels"].to(device) if "labels" in data else None
        self.batch_size, self.seed, self.device, self.random_flip = batch_size, seed, torch.device(device), random_flip
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
            images = self.images[order[i]].float() / 127.5 - 1
            if flips is not None:
                images = torch.where(flips[i, :, None, None, None], images.flip(-1), images)
            batch = {"pixel_values": images}
            if self.labels is not None:
                batch["labels"] = self.labels[order[i]]
            yield batch

    def resumable(self, start: int = 0) -> Iterator[tuple[int, dict]]:
        """`(epoch, batch)` pairs without end, from batch `start` on (as [`resumable_batches`])."""
        epoch, skip = divmod(start, len(self))
        while True:
            yield from ((epoch, batch) for batch in self.epoch(epoch, skip))
            epoch, skip = epoch + 1, 0


def check_batch_fits_in_memory(run, width: int, device: str | torch.device) -> None:
    """
    Stops, before any work, a run whose batch cannot fit at all: one fp32 activation of the UNet's first level
    (`--train_batch_size` x `width` x `--resolution`^2) must fit in the device's memory. A run needs many such
    activations, so this catches only the impossible (e.g. a resolution typed with extra zeros), never a run that fits.
    """
    device = torch.device(device)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    needed = run.train_batch_size * width * run.resolution**2 * 4
    if needed > total:
        raise ValueError(
            f"--resolution {run.resolution} with --train_batch_size {run.train_batch_size} cannot fit: one activation "
            f"of the UNet's first level ({run.train_batch_size} x {width} x {run.resolution} x {run.resolution} fp32) "
            f"takes {format_bytes(needed)}, more than the {format_bytes(total)} of {device.type} memory. Lower "
            "--resolution or --train_batch_size."
        )


DATA_ON_DEVICE_LIMIT = 2 * 2**30  # bytes of uint8 images that `--data_on_device auto` keeps on the device


def use_data_on_device(run, num_images: int, channels: int) -> bool:
    """Whether to train from [`DeviceBatches`]: `--data_on_device yes`, or `auto` with a center crop and at most
    2 GiB of uint8 images. `yes` with random crops is an error (crops are drawn by the data loader)."""
    if run.data_on_device == "no":
        return False
    if not run.center_crop:
        if run.data_on_device == "yes":
            raise ValueError(
                "--data_on_device yes keeps center-cropped images; random crops (--no-center_crop) need the data "
                "loader: pass --data_on_device no (or auto)."
            )
        return False
    return run.data_on_device == "yes" or num_images * channels * run.resolution**2 <= DATA_ON_DEVICE_LIMIT
