#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Makes the user guide's pictures from a trained digits model: multistep samples and inpainting.

python scripts/make_guide_images.py --model act-model --output_dir docs/images
"""

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from diffusers_act import ACTPipeline
from diffusers_act.evaluation import digits_tensors


def grid(rows: list[list[np.ndarray]], scale: int = 4) -> PIL.Image.Image:
    """uint8 grey images in rows, with a 1-pixel white border, enlarged `scale` times (nearest-neighbour)."""
    lines = [np.concatenate([np.pad(im, 1, constant_values=255) for im in row], axis=1) for row in rows]
    image = np.concatenate(lines, axis=0)
    return PIL.Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), PIL.Image.NEAREST)


def to_uint8(images: np.ndarray) -> list[np.ndarray]:
    return [(im[..., 0] * 255).round().astype(np.uint8) for im in images]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="act-model", help="a digits ACTPipeline (the quickstart's output)")
    parser.add_argument("--output_dir", default="docs/images")
    args = parser.parse_args(argv)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    pipe = ACTPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    size = pipe.unet.config.sample_size

    # the same noise and digits 0-9 with 1, 2 and 4 steps
    rows = []
    for steps in (1, 2, 4):
        generator = torch.Generator().manual_seed(0)
        out = pipe(batch_size=10, class_labels=list(range(10)), num_inference_steps=steps, generator=generator,
                   output_type="np").images  # fmt: skip
        rows.append(to_uint8(out))
    scale = max(4, 64 // size)  # 8x8 digits shown at 64x64
    grid(rows, scale).save(output / "quickstart_multistep.png")

    # held-out digits with their lower half repainted (4 steps), conditioned on their labels
    known, labels = digits_tensors(size, "test")
    known, labels = known[:10], labels[:10].tolist()
    mask = np.zeros((size, size), np.uint8)
    mask[size // 2 :, :] = 255
    shown = to_uint8(known.permute(0, 2, 3, 1).numpy())
    masked = [np.where(mask > 0, 128, im).astype(np.uint8) for im in shown]
    out = pipe(batch_size=10, image=known, mask_image=PIL.Image.fromarray(mask), class_labels=labels,
               num_inference_steps=4, generator=torch.Generator().manual_seed(0), output_type="np").images  # fmt: skip
    grid([shown, masked, to_uint8(out)], scale).save(output / "quickstart_inpainting.png")


if __name__ == "__main__":
    main()
