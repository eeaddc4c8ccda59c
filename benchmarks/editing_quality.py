#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Measured quality of zero-shot super-resolution and inpainting on the held-out digits.

python benchmarks/editing_quality.py --model /path/to/digits-model --model_description "..."

The model must not have seen the test digits: train it with `--preset digits --max_train_samples 1347` (the first
1,347 digits; the bare quickstart trains on all 1,797), e.g. the ACT run of `benchmarks/digits_act_vs_ct.py`.

For each of the 450 test digits (at the model's resolution, 8x8 for the digits preset), the edit's input is made (the
digit average-pooled to a quarter and to half its side, 2x2 and 4x4 for 8x8 digits; the digit with a part masked out),
the digit is restored, and the digits classifier at the model's resolution (`train_digits_classifier(size, seed=0)`)
is asked which digit it sees. The table gives the share assigned to the true label: ACT with the true label given to
the model, ACT with a random label (what a class-conditional model gets when no label is given), and a simple
baseline (bicubic upsampling; filling the hole with the mean training digit). It is written into docs/benchmarks.md.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import shown_command, write_section  # noqa: E402

from diffusers_act import ACTPipeline, ACTSuperResolutionPipeline  # noqa: E402
from diffusers_act.evaluation import digits_tensors, train_digits_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def masks(size: int) -> dict[str, torch.Tensor]:
    """Repaint masks (True = repainted) of the inpainting rows."""
    bottom, centre = torch.zeros(1, 1, size, size, dtype=torch.bool), torch.zeros(1, 1, size, size, dtype=torch.bool)
    bottom[..., size // 2 :, :] = True
    centre[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    return {"bottom half": bottom, f"centre {size // 2}x{size // 2}": centre}


@torch.no_grad()
def measure(model: str, steps: tuple[int, ...], seed: int) -> tuple[list[tuple], float]:
    pipe = ACTPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    sr = ACTSuperResolutionPipeline.from_pipe(pipe)
    sr.set_progress_bar_config(disable=True)
    size = pipe.unet.config.sample_size
    classifier, accuracy = train_digits_classifier(size, seed=0)
    digits, labels = digits_tensors(size, "test")
    train_digits, _ = digits_tensors(size, "train")

    def share(images: torch.Tensor) -> float:
        return (classifier.logits(images.clamp(0, 1)).argmax(1) == labels).float().mean().item()

    rows = []
    for factor in (4, 2):  # from a quarter and from half the side
        small = F.avg_pool2d(digits, factor)
        edit = f"super-resolution {size // factor}x{size // factor} -> {size}x{size}"
        bicubic = F.interpolate(small, size=(size, size), mode="bicubic", align_corners=False)
        rows.append((edit, "bicubic upsampling", "-", share(bicubic), None))
        for n in steps:
            for given, class_labels in (("true", labels), ("random", None)):
                generator = torch.Generator().manual_seed(seed)
                out = sr(image=small, class_labels=class_labels, num_inference_steps=n, generator=generator,
                         output_type="latent").images  # fmt: skip
                error = (F.avg_pool2d(out, factor) - (small * 2 - 1)).abs().max().item()  # the kept block averages
                rows.append((edit, f"ACT, {given} label", n, share(out / 2 + 0.5), error))
    mean_digit = train_digits.mean(0, keepdim=True)
    for name, repaint in masks(size).items():
        filled = torch.where(repaint, mean_digit, digits)
        rows.append((f"inpainting, {name}", "mean training digit", "-", share(filled), None))
        for n in steps:
            for given, class_labels in (("true", labels), ("random", None)):
                out = pipe(
                    batch_size=len(digits), image=digits, mask_image=repaint.float(), class_labels=class_labels,
                    num_inference_steps=n, generator=torch.Generator().manual_seed(seed), output_type="latent",
                ).images  # fmt: skip
                error = (out - (digits * 2 - 1))[~repaint.expand_as(out)].abs().max().item()  # the kept pixels
                rows.append((f"inpainting, {name}", f"ACT, {given} label", n, share(out / 2 + 0.5), error))
    return rows, accuracy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a digits model (a saved ACTPipeline)")
    parser.add_argument(
        "--model_description",
        default="a digits model trained on the 1,347 training digits only",
        help="how the model was trained, for the report",
    )
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4], help="numbers of sampling steps to measure")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (and of the random labels)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to write")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    started = time.time()
    rows, accuracy = measure(args.model, tuple(args.steps), args.seed)
    lines = [
        "## Zero-shot editing quality on held-out digits",
        "",
        f"`{shown_command('benchmarks/editing_quality.py', argv, ('--model', '--output'))}`"
        f" with {args.model_description}. The 450 test digits are edited and "
        f"the digits classifier (test accuracy {accuracy:.3f} on the clean digits) is asked which digit it sees: the "
        'share assigned to the true label. "Random label": the class-conditional model gets a label drawn at random '
        '(what it gets when none is given). "Kept error": the largest deviation of the kept part (block averages; '
        "known pixels) from the input, before the final clip ([-1, 1] units). See docs/editing.md.",
        "",
        "| edit | method | steps | true-label share | kept error |",
        "|---|---|---|---|---|",
    ]
    for edit, method, steps, value, error in rows:
        lines.append(f"| {edit} | {method} | {steps} | {value:.3f} | {'-' if error is None else f'{error:.1e}'} |")
    lines += ["", f"({time.time() - started:.0f} s on CPU.)"]
    write_section(args.output, "editing-quality", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
