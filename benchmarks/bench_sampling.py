# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""One-step sampling throughput: ACTPipeline vs diffusers' ConsistencyModelPipeline vs a bare UNet loop.

All three run the same UNet with the same preconditioning and return `[0, 1]` tensors; the bare loop is the floor
that a pipeline's overhead is measured against. Rounds are interleaved (each round runs every variant once, in a
rotating order) and the median over rounds is reported, so that load on a shared machine hits all variants alike.

    python benchmarks/bench_sampling.py                  # CIFAR-10 preset UNet and a small UNet, batch 64
    python benchmarks/bench_sampling.py --quick --output /tmp/bench.md   # seconds; for the test suite
"""

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline, UNet2DModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

from diffusers_act import ACTPipeline, ConsistencyACTScheduler, unet_from_preset

SMALL_UNET = dict(
    sample_size=32,
    block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    layers_per_block=1,
    norm_num_groups=8,
    attention_head_dim=8,
)
TINY_UNET = dict(SMALL_UNET, sample_size=8, block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=4)


def bare_loop(unet: UNet2DModel, scheduler: ConsistencyACTScheduler, batch_size: int, generator: torch.Generator):
    """One-step sampling written out by hand: noise, c_in, UNet, c_skip/c_out, clip, to [0, 1]."""
    sigma = scheduler.config.sigma_max
    c_skip, c_out = scheduler.get_scalings_for_boundary_condition(torch.tensor(sigma))
    c_in = 1 / (sigma**2 + scheduler.config.sigma_data**2) ** 0.5
    c_noise = scheduler.precondition_noise(torch.tensor(sigma, dtype=torch.float64))
    size = unet.config.sample_size
    x = torch.randn(batch_size, unet.config.in_channels, size, size, generator=generator) * sigma
    with torch.no_grad():
        out = unet(x * c_in, c_noise).sample
    return ((c_skip * x + c_out * out).clamp(-1, 1) / 2 + 0.5).clamp(0, 1)


class UNetTimer:
    """Accumulates the wall time spent inside `unet.forward`, to separate a sampler's own cost from the UNet's."""

    def __init__(self, unet: UNet2DModel):
        self.total = 0.0
        unet.register_forward_pre_hook(self._start)
        unet.register_forward_hook(self._stop)

    def _start(self, *args):
        self._t0 = time.perf_counter()

    def _stop(self, *args):
        self.total += time.perf_counter() - self._t0


def measure(unet: UNet2DModel, batch_size: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Per variant: median images/s and median time outside the UNet per batch (s), over interleaved rounds."""
    act = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler())
    cm = ConsistencyModelPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler())
    for pipe in (act, cm):
        pipe.set_progress_bar_config(disable=True)
    variants = {
        "bare UNet loop": lambda g: bare_loop(unet, act.scheduler, batch_size, g),
        "ACTPipeline": lambda g: act(batch_size=batch_size, generator=g, output_type="pt").images,
        "diffusers ConsistencyModelPipeline": lambda g: (
            cm(batch_size=batch_size, generator=g, output_type="pt").images
        ),
    }
    timer = UNetTimer(unet)
    times = {name: [] for name in variants}
    outside = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(rounds + 1):
        # rotate the order every round so that no variant always runs first (caches, clock boost)
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            run = variants[name]
            timer.total = 0.0
            start = time.perf_counter()
            images = run(torch.Generator().manual_seed(round_index))
            elapsed = time.perf_counter() - start
            assert images.shape[0] == batch_size
            if round_index > 0:  # round 0 warms up
                times[name].append(elapsed)
                outside[name].append(elapsed - timer.total)
    return {name: (batch_size / statistics.median(times[name]), statistics.median(outside[name])) for name in names}


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds per variant (median reported)")
    parser.add_argument("--quick", action="store_true", help="a tiny UNet, batch 4, 2 rounds: checks the script")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    if args.quick:
        models = {"tiny (test)": UNet2DModel(**TINY_UNET).eval()}
        args.batch_size, args.rounds = 4, 2
    else:
        models = {"CIFAR-10 preset": unet_from_preset("cifar10").eval(), "small": UNet2DModel(**SMALL_UNET).eval()}

    rows = []
    for model_name, unet in models.items():
        params = sum(p.numel() for p in unet.parameters()) / 1e6
        result = measure(unet, args.batch_size, args.rounds)
        base_ips, base_outside = result["bare UNet loop"]
        for name, (ips, outside) in result.items():
            extra = (outside - base_outside) / (args.batch_size / base_ips)
            rows.append(
                f"| {model_name} ({params:.1f}M) | {name} | {ips:.2f} | {ips / base_ips:.3f} | "
                f"{outside * 1e3:.2f} | {extra * 100:+.2f}% |"
            )

    command = "python benchmarks/bench_sampling.py" + (" --quick" if args.quick else "")
    body = "\n".join(
        [
            "## One-step sampling throughput (`benchmarks/bench_sampling.py`)",
            "",
            f"Command: `{command}`. Batch {args.batch_size}, median of {args.rounds} interleaved rounds after a "
            "warm-up, "
            f"fp32, {platform.processor() or platform.machine()} CPU with {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}.",
            "",
            "Whole-batch timings on a shared 2-core machine vary by a few percent from round to round, more than the",
            "samplers differ, so the ratio column is noise-limited. The overhead column is the robust measure: the",
            "median time a sampler spends outside `unet.forward` (timed with forward hooks) minus the bare loop's,",
            "relative to the bare loop's time per batch.",
            "",
            "| UNet | sampler | images/s | ratio to bare loop | ms per batch outside the UNet "
            "| overhead vs bare loop |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    write_section(args.output, "bench_sampling", body)
    return body


if __name__ == "__main__":
    main()
