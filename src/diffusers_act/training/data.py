# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Training data: a datasets Hub dataset, a `save_to_disk` folder, a local image folder or scikit-learn's bundled
digits, decoded to images in [-1, 1] (and labels); [`TrainingData`] takes a run from loading to batches."""

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

from ..sklearn_digits import digits_dataset
from .batches import DeviceBatches, decode_dataset, make_dataloader, resumable_batches, use_data_on_device
from .config import DATA_ON_DEVICE_LIMIT
from .disk import format_bytes
from .latents import cached_latents

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator
    from diffusers import AutoencoderKL

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


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


def check_batch_fits_in_memory(run, width: int, device: str | torch.device, size: int | None = None) -> None:
    """
    Stops, before any work, a run whose batch cannot fit at all: one fp32 activation of the UNet's first level
    (`--train_batch_size` x `width` x `size`^2, `size` the UNet's, `--resolution` unless given) must fit in the
    device's memory. A run needs many such activations, so this catches only the impossible (e.g. a resolution typed
    with extra zeros), never a run that fits.
    """
    device, side = torch.device(device), size or run.resolution
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    needed = run.train_batch_size * width * side**2 * 4
    if needed > total:
        raise ValueError(
            f"--resolution {run.resolution} with --train_batch_size {run.train_batch_size} cannot fit: one activation "
            f"of the UNet's first level ({run.train_batch_size} x {width} x {side} x {side} fp32) "
            f"takes {format_bytes(needed)}, more than the {format_bytes(total)} of {device.type} memory. Lower "
            "--resolution or --train_batch_size."
        )


class TrainingData:
    """
    A run's training images, from loading to batches: the dataset of `--dataset_name` / `--train_data_dir` (or the
    digits), its labels when training class-conditionally, and, after [`prepare`], endless `(epoch, batch)` pairs
    from any micro-batch on, decoded once and kept on the device when the set is small ([`DeviceBatches`]) or
    streamed by a data loader, sharded per process either way.

    Args:
        run ([`RunConfig`]): The run's settings.
        accelerator (`Accelerator`): The run's accelerator (loading happens on the main process first).

    Attributes:
        dataset: The `datasets.Dataset`, its image column undecoded until [`prepare`] sets the transform.
        conditional (`bool`): Whether the run is class-conditional (labels given, or asked for).
        num_classes (`int` or None), id2label (`dict` or None): The classes and their names (an image folder's
            sub-folders, a `ClassLabel` column).
    """

    def __init__(self, run, accelerator: "Accelerator"):
        with accelerator.main_process_first():
            dataset = load_training_dataset(
                run.dataset_name, run.train_data_dir, run.dataset_config_name, run.image_column, run.cache_dir,
                run.max_train_samples, run.verify_images,
            )  # fmt: skip
        label = run.label_column
        if run.class_label is not None:  # every image as one class, e.g. a flat folder fine-tuning a conditional model
            dataset = dataset.remove_columns([c for c in dataset.column_names if c == label])
            dataset = dataset.add_column(label, [run.class_label] * len(dataset))
        has_labels = label in dataset.column_names
        # an explicit --label_column asks for labels: a misspelled one is an error, not an unconditional run
        conditional = has_labels or "label_column" in run.explicit
        self.conditional = conditional if run.class_conditional is None else run.class_conditional
        if self.conditional and not has_labels:
            raise ValueError(
                f"--label_column {label!r} is not in the dataset; its columns are {dataset.column_names}. Pass "
                "--label_column, or --no-class_conditional for unconditional training."
            )
        self.num_classes = count_classes(dataset, label) if self.conditional else None
        self.id2label = class_names(dataset, label) if self.conditional else None
        self.source = run.train_data_dir or run.dataset_name or "scikit-learn digits"
        self.dataset, self.run, self.accelerator, self.batches_per_epoch, self._channels, self.vae = (
            dataset, run, accelerator, None, None, None
        )  # fmt: skip

    @property
    def channels(self) -> int:
        """The data's channel count ([`image_channels`]: 3 when any image is in colour)."""
        if self._channels is None:
            self._channels = image_channels(self.dataset, self.run.image_column)
        return self._channels

    def relabel(self, mapping: dict[int, int], num_classes: int) -> None:
        """Trains label `i` as class `mapping[i]` (the data's classes onto a pretrained model's, by name)."""
        labels = [mapping[int(i)] for i in self.dataset[self.run.label_column]]
        self.dataset = self.dataset.remove_columns(self.run.label_column).add_column(self.run.label_column, labels)
        self.num_classes = num_classes

    def prepare(self, unet_config: dict, batch_size: int, vae: "AutoencoderKL | None" = None) -> None:
        """Sets the transform to the UNet's input channels (the VAE's, for a latent run) at `--resolution`, and
        decodes the set onto the device (small sets, `--data_on_device`), makes the data loader, or encodes the set
        with `vae` once ([`~diffusers_act.training.latents.cached_latents`]; on the device when it fits), for batches
        of `batch_size` per process. A batch that cannot fit in the device's memory is an error first
        ([`check_batch_fits_in_memory`])."""
        run, accelerator, self.vae = self.run, self.accelerator, vae
        size = unet_config["sample_size"]
        check_batch_fits_in_memory(run, unet_config["block_out_channels"][0], accelerator.device, size)
        channels = unet_config["in_channels"] if vae is None else vae.config.in_channels
        self.on_device = vae is not None or use_data_on_device(run, len(self.dataset), channels)
        self.dataset = self.dataset.with_transform(
            make_transform(
                run.image_column, channels, run.resolution, run.center_crop, run.random_flip and not self.on_device,
                run.label_column if self.conditional else None,
            )
        )  # fmt: skip
        if vae is not None:  # latents in memory, flipped ones beside them: batches never touch the VAE
            self.decoded = cached_latents(run, self.dataset, vae, accelerator)
            fits = run.data_on_device == "yes" or sum(v.nbytes for v in self.decoded.values()) <= DATA_ON_DEVICE_LIMIT
            self.loader = DeviceBatches(
                self.decoded, batch_size, run.seed, accelerator.device if fits else "cpu", run.random_flip,
                accelerator.process_index, accelerator.num_processes, output_device=accelerator.device,
            )  # fmt: skip
        elif self.on_device:  # flips are drawn on the device
            self.decoded = decode_dataset(self.dataset, num_workers=run.dataloader_num_workers)
            self.loader = DeviceBatches(
                self.decoded, batch_size, run.seed, accelerator.device, run.random_flip, accelerator.process_index,
                accelerator.num_processes,
            )  # fmt: skip
        else:
            self.loader = accelerator.prepare(
                make_dataloader(
                    self.dataset, batch_size, run.seed, run.dataloader_num_workers,
                    pin_memory=accelerator.device.type == "cuda",
                )
            )  # fmt: skip
        self.batches_per_epoch = len(self.loader)

    def batches(self, start: int = 0) -> Iterator[tuple[int, dict]]:
        """`(epoch, batch)` pairs without end from micro-batch `start` on, as an uninterrupted run sees them."""
        if self.on_device:
            return self.loader.resumable(start)
        return resumable_batches(self.loader, self.accelerator, start)

    def reference_images(self, limit: int = 50_000) -> torch.Tensor:
        """Up to `limit` training images in [0, 1] (the FID reference when no statistics are given)."""
        if self.on_device and self.vae is None:
            return (self.decoded["pixel_values"][:limit].float() / 127.5 - 1) / 2 + 0.5
        return torch.stack([self.dataset[i]["pixel_values"] for i in range(min(len(self.dataset), limit))]) / 2 + 0.5

    def describe(self) -> str:
        where = "on the device" if self.on_device else "streamed"
        if self.vae is not None:
            kept_on_device = self.loader.images.device == self.accelerator.device
            where = f"their latents, {'on' if kept_on_device else 'off'} the device"
        return f"{len(self.dataset)} images ({where})"
