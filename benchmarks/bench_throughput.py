# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Training and sampling throughput of the paper's models: CT and ACT iterations per second, precision variants,
peak memory and model-FLOPs utilisation (MFU).

For each preset UNet (and its discriminator) it times `ACTTrainer.train_step` (the code the training script runs)
for consistency training (adv_weight 0) and ACT, in fp32, bf16 autocast, bf16 + channels_last and
bf16 + torch.compile, then one-step sampling with `ACTPipeline`. Images/s counts generator images (B per
iteration; an ACT iteration also loads B more for its discriminator). MFU = the FLOPs of one iteration (counted with
`torch.utils.flop_counter`) per second, over the dense matmul rate measured on the same device in the same run
(bf16 on GPU, fp32 on CPU).

    python benchmarks/bench_throughput.py --device cuda                  # on a GPU: CIFAR-10 and ImageNet 64 presets
    python benchmarks/bench_throughput.py --quick --output /tmp/t.md     # CPU, small batch: checks the script
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import shown_command, write_section  # noqa: E402

from diffusers_act import ACTDiscriminator, ACTPipeline, ConsistencyACTScheduler, unet_from_preset  # noqa: E402
from diffusers_act.training import ACTConfig, ACTTrainer  # noqa: E402

VARIANTS = {
    "fp32": {"mixed_precision": "no", "channels_last": False, "compile": False},
    "tf32": {"mixed_precision": "no", "channels_last": False, "compile": False, "tf32": True},
    "fp16": {"mixed_precision": "fp16", "channels_last": False, "compile": False},
    "bf16": {"mixed_precision": "bf16", "channels_last": False, "compile": False},
    "bf16 + channels_last": {"mixed_precision": "bf16", "channels_last": True, "compile": False},
    "bf16 + torch.compile": {"mixed_precision": "bf16", "channels_last": False, "compile": True},
}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device, dtype, size=4096, repeats=10) -> float:
    """Measured dense matmul FLOP/s (2 n^3 per product), median of `repeats`."""
    size = size if device.type == "cuda" else 1024
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times[2:])


def make_trainer(preset, adversarial, variant, device, batch, overrides):
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    accelerator = Accelerator(mixed_precision=variant["mixed_precision"], cpu=device.type == "cpu")
    torch.manual_seed(0)
    unet = unet_from_preset(preset, **overrides)
    disc = ACTDiscriminator.from_unet_config(unet.config) if adversarial else None
    if variant["channels_last"]:
        for module in (unet, disc):
            if module is not None:
                module.to(memory_format=torch.channels_last)
    config = ACTConfig(total_steps=1000, adv_weight=0.3 if adversarial else 0.0, gp_interval=16, loss_type="l2")
    trainer = ACTTrainer.build(unet, config, accelerator, discriminator=disc)
    if variant["compile"]:  # the discriminator stays eager: R1's double backward does not run through compiled code
        trainer.unet, trainer.target_unet = torch.compile(trainer.unet), torch.compile(trainer.target_unet)
    cfg = accelerator.unwrap_model(trainer.unet).config
    shape = (batch, cfg.in_channels, cfg.sample_size, cfg.sample_size)
    labels = torch.randint(0, cfg.num_class_embeds, (batch,), device=device) if cfg.num_class_embeds else None
    memory_format = torch.channels_last if variant["channels_last"] else torch.contiguous_format
    data = torch.rand(shape, device=device).contiguous(memory_format=memory_format) * 2 - 1
    d_data = torch.rand((2 * (batch // 2), *shape[1:]), device=device) * 2 - 1 if adversarial else None
    return trainer, data, labels, d_data


def time_training(trainer, data, labels, d_data, device, steps, warmup) -> float:
    """Mean seconds per iteration over `steps` iterations after `warmup` (16 steps = one R1 interval, so the
    discriminator's gradient penalty is paid in its true share)."""
    times = []
    for step in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        logs = trainer.train_step(data, step + 1, labels, d_data, labels if d_data is not None else None)
        synchronize(device)
        times.append(time.perf_counter() - start)
        bad = [k for k, v in logs.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:  # a precision variant that breaks training is reported as failed, not timed
            raise FloatingPointError(f"non-finite {', '.join(bad)} at iteration {step + 1}")
    return statistics.mean(times[warmup:])


def count_flops(trainer, data, labels, d_data) -> float:
    # iteration 1 (not a multiple of the R1 interval): the usual iteration
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(data, 1, labels, d_data, labels if d_data is not None else None)
    return float(counter.get_total_flops())


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", default="cifar10,imagenet64")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 64 on GPU, 4 on CPU")
    parser.add_argument("--steps", type=int, default=16, help="timed iterations (16 = one R1 interval)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="a tiny UNet, 2 steps, fp32 and bf16 only")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    batch = args.batch_size or (64 if device.type == "cuda" else 4)
    overrides = {}
    if args.quick:
        args.presets, args.steps, args.variants = "cifar10", 2, "fp32,bf16"
        overrides = {"block_out_channels": (16, 16, 32, 32), "norm_num_groups": 8, "layers_per_block": 1}
    warmup = 3 if device.type == "cuda" else 1
    peak_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = matmul_rate(device, peak_dtype)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"

    presets, variants = args.presets.split(","), args.variants.split(",")
    jobs = [(p, m, v) for p in presets for m in ("CT", "ACT") for v in variants if not VARIANTS[v]["compile"]]
    jobs += [(p, "sampling", dtype) for p in presets for dtype in ("float32", "bfloat16")]
    # compiled variants last: compiling takes minutes, and a run cut short still reports every other row
    jobs += [(p, m, v) for p in presets for m in ("CT", "ACT") for v in variants if VARIANTS[v]["compile"]]
    order = {name: i for i, name in enumerate([*VARIANTS, "float32", "bfloat16"])}
    rows, flops_of = {}, {}
    for preset, mode, variant_name in jobs:
        if mode == "sampling":
            rate = time_sampling(preset, getattr(torch, variant_name), device, batch, overrides, args.steps, warmup)
            row = f"| {preset} | 1-step sampling | {variant_name} | {rate:.1f} | | | |"
        else:
            row = time_variant(
                preset, mode, variant_name, device, batch, overrides, args.steps, warmup, peak, flops_of
            )
        print(row, flush=True)
        rows[(presets.index(preset), ("CT", "ACT", "sampling").index(mode), order[variant_name])] = row
        body = write_report(args, argv, device, name, batch, warmup, peak, peak_dtype, [rows[k] for k in sorted(rows)])
    print(body)
    return body


def time_variant(preset, mode, variant_name, device, batch, overrides, steps, warmup, peak, flops_of) -> str:
    variant = VARIANTS[variant_name]
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = variant.get("tf32", False)
        trainer, data, labels, d_data = make_trainer(preset, mode == "ACT", variant, device, batch, overrides)
        seconds = time_training(trainer, data, labels, d_data, device, steps, warmup)
        if (preset, mode) not in flops_of:  # same math in every variant; the flop counter cannot see compiled code
            flops_of[(preset, mode)] = count_flops(trainer, data, labels, d_data)
        flops = flops_of[(preset, mode)]
        memory = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f}" if device.type == "cuda" else "n/a"
        return (
            f"| {preset} | {mode} | {variant_name} | {batch / seconds:.1f} | {memory} | {flops / 1e9:.1f} | "
            f"{100 * flops / seconds / peak:.1f}% |"
        )
    except Exception as error:  # e.g. torch.compile unavailable, or out of memory
        message = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
        return f"| {preset} | {mode} | {variant_name} | failed: {message} | | | |"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


def time_sampling(preset, dtype, device, batch, overrides, steps, warmup) -> float:
    unet = unet_from_preset(preset, **overrides).to(device=device, dtype=dtype).eval()
    pipe = ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler())
    pipe.set_progress_bar_config(disable=True)
    times = []
    for _ in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        pipe(batch_size=batch, output_type="latent")
        synchronize(device)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times[warmup:])


def write_report(args, argv, device, name, batch, warmup, peak, peak_dtype, rows) -> str:
    command = shown_command("benchmarks/bench_throughput.py", sys.argv[1:] if argv is None else argv, ("--output",))
    body = "\n".join([
        f"## Training and sampling throughput on {name} (`benchmarks/bench_throughput.py`)",
        "",
        f"Command: `{command}`. Batch {batch} per iteration; training: mean of {args.steps} iterations after "
        f"{warmup} warm-up (16 = one R1 interval, so ACT rows include the gradient penalty's share); sampling: "
        f"median of {args.steps}. Measured matmul peak {peak / 1e12:.2f} TFLOP/s ({str(peak_dtype).split('.')[-1]}); "
        f"torch {torch.__version__}. Images/s are generator images (an ACT iteration also feeds B real images to "
        "D). fp32 is strict fp32 (TF32 off for matmuls and cuDNN); tf32 allows TF32 in both. GFLOP per iteration "
        "from torch's flop counter on an iteration without R1 (eager code; compiled rows reuse it). Under "
        "torch.compile the discriminator stays eager (R1's double backward).",
        "",
        "| preset | step | variant | images/s | peak memory (GiB) | GFLOP / iteration | MFU |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    write_section(args.output, f"bench_throughput_{device.type}", body)
    return body


if __name__ == "__main__":
    main()
