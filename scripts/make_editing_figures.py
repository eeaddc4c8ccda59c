#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Makes the pictures of docs/editing.md (and, through benchmarks/editing_quality.py, its quality table).

python scripts/make_editing_figures.py --model /path/to/quickstart-model

The digits pictures use the quickstart model (`--preset digits`, 8x8 grey, class-conditional), shown enlarged with
nearest-neighbour pixels. Colorization needs an
RGB model: unless `--rgb_model` holds one, a tiny one is trained on CPU (a few minutes) on the training digits tinted
with random colours, with examples/train_act/train_act.py.
"""

import argparse
import colorsys
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
import torch.nn.functional as F

from diffusers_act import (
    UNET_PRESETS,
    ACTColorizationPipeline,
    ACTDenoisingPipeline,
    ACTImg2ImgPipeline,
    ACTInterpolationPipeline,
    ACTPipeline,
    ACTSuperResolutionPipeline,
)
from diffusers_act.evaluation import digits_tensors

ROOT = Path(__file__).resolve().parents[1]


def tint(digits: torch.Tensor, seed: int) -> torch.Tensor:
    """Grey digits `(N, 1, H, W)` in `[0, 1]` times a random saturated colour each: `(N, 3, H, W)`."""
    rng = np.random.default_rng(seed)
    colours = [colorsys.hsv_to_rgb(rng.random(), 0.6 + 0.4 * rng.random(), 1.0) for _ in range(len(digits))]
    return digits * torch.tensor(colours, dtype=digits.dtype)[:, :, None, None]


def train_rgb_model(output_dir: Path, steps: int, size: int) -> None:
    """Writes the training digits, tinted, as an image folder and trains a tiny unconditional RGB model on them."""
    data_dir = output_dir.parent / f"{output_dir.name}-data"
    images, _ = digits_tensors(size, "train")
    folder = data_dir / "tinted"
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(tint(images, seed=0)):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        PIL.Image.fromarray(array, "RGB").save(folder / f"{i:04d}.png")
    # the digits preset's UNet with 3 channels (the preset alone would make a 1-channel model)
    unet_config = {**UNET_PRESETS["digits"], "in_channels": 3, "out_channels": 3}
    (data_dir / "unet_config.json").write_text(json.dumps({"_class_name": "UNet2DModel", **unet_config}))
    command = [sys.executable, str(ROOT / "examples/train_act/train_act.py"), "--preset", "digits",
               "--model_config_name_or_path", str(data_dir / "unet_config.json"),
               "--train_data_dir", str(data_dir), "--resolution", str(size), "--no-class_conditional",
               "--max_train_steps", str(steps), "--output_dir", str(output_dir), "--report_to", "none",
               "--checkpointing_steps", str(steps), "--validation_steps", str(steps)]  # fmt: skip
    print(" ".join(command))
    subprocess.run(command, check=True)


def upscale(images: torch.Tensor, size: int = 64) -> torch.Tensor:
    """`[0, 1]` images `(N, C, h, w)` -> `(N, 3, size, size)` with nearest-neighbour pixels (for display)."""
    images = F.interpolate(images.float().clamp(0, 1), size=(size, size), mode="nearest")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def save_grid(rows: list[torch.Tensor], labels: list[str], path: Path, size: int = 64, pad: int = 2) -> None:
    """Rows of images, each row with a text label on the left."""
    label_width = 150
    columns = max(len(r) for r in rows)
    grid = PIL.Image.new("RGB", (label_width + columns * (size + pad), len(rows) * (size + pad)), "white")
    draw = PIL.ImageDraw.Draw(grid)
    for y, (row, label) in enumerate(zip(rows, labels, strict=True)):
        draw.text((4, y * (size + pad) + size // 2 - 6), label, fill="black")
        for x, image in enumerate(upscale(row, size)):
            array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            grid.paste(PIL.Image.fromarray(array), (label_width + x * (size + pad), y * (size + pad)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    print("wrote", path)


def strokes(size: int) -> tuple[torch.Tensor, list[int]]:
    """Rough stroke drawings of a few digits (thick lines on black), as a user might paint them: drawn on a 16x16
    canvas and area-resized to `size`."""
    drawings = {
        0: [[(5, 3), (10, 3), (12, 8), (10, 13), (5, 13), (3, 8), (5, 3)]],
        1: [[(8, 2), (8, 14)], [(6, 4), (8, 2)]],
        4: [[(10, 2), (4, 10), (12, 10)], [(10, 2), (10, 14)]],
        7: [[(3, 3), (12, 3), (6, 14)]],
        2: [[(4, 5), (7, 2), (11, 4), (11, 7), (4, 13), (12, 13)]],
        3: [[(4, 3), (11, 3), (8, 8), (12, 11), (8, 14), (4, 13)]],
    }
    images = []
    for lines in drawings.values():
        canvas = PIL.Image.new("L", (16, 16), 0)
        draw = PIL.ImageDraw.Draw(canvas)
        for line in lines:
            draw.line(line, fill=255, width=2)
        canvas = canvas.resize((size, size), PIL.Image.BOX)
        images.append(torch.from_numpy(np.asarray(canvas, np.float32) / 255)[None])
    return torch.stack(images), list(drawings)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the digits quickstart model (a saved ACTPipeline)")
    parser.add_argument("--rgb_model", default="act-tinted-digits", help="an RGB model; trained here if missing")
    parser.add_argument("--rgb_train_steps", type=int, default=500, help="iterations of the RGB model's training")
    parser.add_argument("--output_dir", default=str(ROOT / "docs" / "images"), help="where the pictures go")
    parser.add_argument("--skip_quality", action="store_true", help="do not run benchmarks/editing_quality.py")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    torch.set_grad_enabled(False)

    pipe = ACTPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    size = pipe.unet.config.sample_size
    test_x, test_y = digits_tensors(size, "test")
    picks = torch.arange(0, 450, 450 // 8)[:8]
    digits, labels = test_x[picks], test_y[picks]

    # super-resolution from a quarter and from half the side (2x2 and 4x4 for 8x8 digits)
    sr = ACTSuperResolutionPipeline.from_pipe(pipe)
    sr.set_progress_bar_config(disable=True)
    rows, names = [], []
    for factor in (4, 2):
        small = F.avg_pool2d(digits, factor)
        bicubic = F.interpolate(small, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        with_label = sr(image=small, class_labels=labels, num_inference_steps=4, generator=gen(0), output_type="pt")
        no_label = sr(image=small, num_inference_steps=4, generator=gen(0), output_type="pt")
        side = f"{size // factor}x{size // factor}"
        rows += [small, bicubic, with_label.images, no_label.images]
        names += [f"{side} input", f"{side}, bicubic", f"{side}, ACT, true label", f"{side}, ACT, random label"]
    save_grid([*rows, digits], [*names, f"original {size}x{size}"], out / "editing_super_resolution.png")

    # guided editing from strokes
    img2img = ACTImg2ImgPipeline.from_pipe(pipe)
    img2img.set_progress_bar_config(disable=True)
    guides, guide_labels = strokes(size)
    rows, names = [guides], ["strokes"]
    for strength, steps in ((0.45, 1), (0.6, 1), (0.6, 2), (0.75, 2)):
        edited = img2img(image=guides, strength=strength, class_labels=guide_labels, num_inference_steps=steps,
                         generator=gen(1), output_type="pt").images  # fmt: skip
        rows.append(edited)
        names.append(f"strength {strength}, {steps} step{'s' * (steps > 1)}")
    save_grid(rows, names, out / "editing_guided.png")

    # interpolation between two seeds
    interpolate = ACTInterpolationPipeline.from_pipe(pipe)
    interpolate.set_progress_bar_config(disable=True)
    rows, names = [], []
    for (a, b), label, steps in (((1, 2), 3, 1), ((3, 4), 8, 1), ((5, 6), 5, 1), ((5, 6), 5, 2)):
        path = interpolate(num_images=8, generator=[gen(a), gen(b)], class_labels=label, num_inference_steps=steps,
                           output_type="pt").images  # fmt: skip
        rows.append(path)
        names.append(f"seeds {a}->{b}, {label}, {steps} step{'s' * (steps > 1)}")
    save_grid(rows, names, out / "editing_interpolation.png")

    # denoising at a known sigma, one step
    denoise = ACTDenoisingPipeline.from_pipe(pipe)
    denoise.set_progress_bar_config(disable=True)
    rows, names = [digits], ["clean"]
    for sigma in (0.5, 1.0):
        noisy = digits + sigma / 2 * torch.randn(digits.shape, generator=gen(2))
        rows += [noisy, denoise(image=noisy, sigma=sigma, class_labels=labels, output_type="pt").images]
        names += [f"noisy, sigma {sigma}", "denoised, 1 step"]
    save_grid(rows, names, out / "editing_denoising.png")

    # colorization on a tiny RGB model
    rgb_dir = Path(args.rgb_model)
    if not (rgb_dir / "model_index.json").is_file():
        train_rgb_model(rgb_dir, args.rgb_train_steps, size)
    colorize = ACTColorizationPipeline.from_pipe(ACTPipeline.from_pretrained(rgb_dir))
    colorize.set_progress_bar_config(disable=True)
    tinted = tint(digits, seed=1)
    grey = (tinted * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)
    rows, names = [grey], ["grey input"]
    for seed in (0, 1):
        rows.append(colorize(image=grey, num_inference_steps=2, generator=gen(seed), output_type="pt").images)
        names.append(f"colorized, seed {seed}")
    rows.append(tinted)
    names.append("original colours")
    save_grid(rows, names, out / "editing_colorization.png")

    if not args.skip_quality:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "editing_quality.py"), "--model", args.model],
                       check=True)  # fmt: skip


if __name__ == "__main__":
    main()
