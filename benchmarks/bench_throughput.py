# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Training throughput of the paper's models at two levels, the trainer's step and the training script, with peak
memory and model-FLOPs utilisation (MFU).

`--mode trainer` (the default) times `ACTTrainer.train_step` on its own with random tensors, so it isolates the cost
of the model, the precision and `torch.compile`. For each preset UNet (and its discriminator) it times consistency
training (adv_weight 0) and ACT in fp32, tf32, fp16, bf16 autocast, bf16 + channels_last and bf16 + torch.compile,
then one-step sampling with `ACTPipeline` in float32 and bfloat16. Images/s counts generator images (B per
iteration; an ACT iteration also loads B more for its discriminator). MFU = the FLOPs of one iteration (counted with
`torch.utils.flop_counter`) per second, over the dense matmul rate measured on the same device in the same run
(bf16 on GPU, fp32 on CPU).

`--mode script` runs `examples/train_act/train_act.py --preset P` as a subprocess, which is the speed a user gets:
data loading, augmentation, the distance, R1 every 16 iterations, both EMAs and logging (no checkpoints, samples or
FID). Each `--rows` entry is a preset and its speed options joined by "+" (e.g. `cifar10+bf16+compile`). The data
are synthetic images of the preset's size written as PNG files (the same data path as real images); the script's
logged images/s per 16-iteration window (one R1 interval) are read from `logs.jsonl`, and the median of the windows
after the first (which holds cuDNN's autotuning and compilation) is reported. LPIPS runs with randomly initialised
VGG16 weights (a stand-in `lpips` module with the same layers, so the same cost; its weights cannot be downloaded on
the benchmark machines), unless `--real_lpips`. `--baseline DIR` also times a `git archive` export of other code
(same rows with no extra options), alternating runs with this tree, so that a ratio is measured on one machine in
one call. MFU: the FLOPs of one iteration without R1 (the preset's models at batch 2, scaled to the preset's batch)
times iterations/s, over the measured matmul rate. `--profile` adds the share of an iteration spent in data, the
generator's pass, its optimizer, the target and EMA updates, D's pass (with and without R1) and D's optimizer
(torch.profiler ranges that the trainer and the script mark; device time on a GPU, host time on the CPU); the rest
is overhead outside those ranges.

Use the trainer mode to compare precision variants, and the script mode to check a preset or a speed option end to
end, or a change for a regression against a `--baseline` export.

    python benchmarks/bench_throughput.py --device cuda                  # on a GPU: CIFAR-10 and ImageNet 64 presets
    python benchmarks/bench_throughput.py --mode script --rows cifar10,cifar10+bf16 --baseline gpu_baseline
    python benchmarks/bench_throughput.py --quick --output /tmp/t.md     # seconds: checks the trainer mode
    python benchmarks/bench_throughput.py --mode script --quick --output /tmp/t.md   # the digits preset, 32 iterations
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from diffusers import UNet2DModel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _report import shown_command, write_section  # noqa: E402

from diffusers_act import ACTDiscriminator, ACTPipeline, ConsistencyACTScheduler, unet_from_preset  # noqa: E402
from diffusers_act.presets import UNET_PRESETS, unet_config  # noqa: E402
from diffusers_act.training import ACTConfig, ACTTrainer  # noqa: E402
from diffusers_act.training.config import PRESETS  # noqa: E402
from diffusers_act.training.config import parse_args as parse_training_args  # noqa: E402

# --mode trainer: precision variants of `ACTTrainer.train_step`
VARIANTS = {
    "fp32": {"mixed_precision": "no", "channels_last": False, "compile": False},
    "tf32": {"mixed_precision": "no", "channels_last": False, "compile": False, "tf32": True},
    "fp16": {"mixed_precision": "fp16", "channels_last": False, "compile": False},
    "bf16": {"mixed_precision": "bf16", "channels_last": False, "compile": False},
    "bf16 + channels_last": {"mixed_precision": "bf16", "channels_last": True, "compile": False},
    "bf16 + torch.compile": {"mixed_precision": "bf16", "channels_last": False, "compile": True},
}

# --mode script: a row is a preset and options joined by "+"; each option adds flags to the training script
OPTIONS = {
    "bf16": ["--mixed_precision", "bf16"],
    "compile": ["--torch_compile"],
    "graphs": ["--torch_compile", "--torch_compile_mode", "reduce-overhead"],
    "tf32": ["--allow_tf32"],
    "huber": ["--loss_type", "pseudo_huber"],
    "loader": ["--data_on_device", "no"],
    "b80": ["--train_batch_size", "80"],
}
RANGES = (
    "act.data", "act.generator", "act.generator_optimizer", "act.target_and_ema", "act.discriminator",
    "act.discriminator_r1", "act.discriminator_optimizer",
)  # fmt: skip

# A stand-in for the lpips package: VGG16's convolutions and LPIPS's heads with random weights (same FLOPs).
FAKE_LPIPS = """
import torch
from torch import nn

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
TAPS = (1, 3, 6, 9, 12)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (convolution indices)


class LPIPS(nn.Module):
    def __init__(self, net="vgg", verbose=False, **kwargs):
        super().__init__()
        layers, channels = [], 3
        for width in VGG16:
            if width == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers.append(nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()))
                channels = width
        self.layers = nn.ModuleList(layers)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def features(self, x):
        x, taps, conv = (x - self.shift) / self.scale, [], 0
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, nn.Sequential):
                if conv in TAPS:
                    taps.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
                conv += 1
        return taps

    def forward(self, a, b, normalize=False):
        total = 0
        for lin, x, y in zip(self.lins, self.features(a), self.features(b)):
            total = total + lin((x - y).square()).mean((2, 3), keepdim=True)
        return total
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["trainer", "script"], default="trainer", help="what to time (see above)")
    parser.add_argument("--quick", action="store_true", help="seconds to a minute: only checks that the mode works")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="the Markdown file to write")
    parser.add_argument("--_profile_child", default=None, help=argparse.SUPPRESS)

    group = parser.add_argument_group("--mode trainer", "with --quick: a tiny UNet, 2 steps, fp32 and bf16 only")
    trainer_flags = [
        group.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu"),
        group.add_argument("--presets", default="cifar10,imagenet64"),
        group.add_argument("--batch_size", type=int, default=None, help="default: 64 on GPU, 4 on CPU"),
        group.add_argument("--steps", type=int, default=16, help="timed iterations (16 = one R1 interval)"),
        group.add_argument("--variants", default=",".join(VARIANTS), help=f"from {', '.join(VARIANTS)}"),
    ]
    group = parser.add_argument_group("--mode script", "with --quick: the digits preset, 32 iterations, one run")
    script_flags = [
        group.add_argument(
            "--rows",
            default="cifar10,cifar10+bf16,cifar10+bf16+compile,cifar10+huber,cifar10+huber+bf16",
            help=f"PRESET[+OPTION...], comma-separated; options: {', '.join(OPTIONS)}",
        ),
        group.add_argument("--iterations", type=int, default=64, help="per run: 16-iteration windows, first dropped"),
        group.add_argument("--repeats", type=int, default=2, help="runs per row (alternating with the baseline)"),
        group.add_argument("--baseline", default=None, help="a `git archive` export of other code to time too"),
        group.add_argument("--profile", action="store_true", help="also the share of each part of an iteration"),
        group.add_argument("--real_lpips", action="store_true", help="use the lpips package and its weights"),
        group.add_argument("--timeout", type=int, default=300, help="seconds per run"),
        group.add_argument("--extra_flags", default="", help="added to every run, baseline too (e.g. the batch)"),
    ]
    args = parser.parse_args(argv)
    # a flag of the other mode would be ignored without a word: refuse it instead
    ignored = script_flags if args.mode == "trainer" else trainer_flags
    given = [flag.option_strings[0] for flag in ignored if getattr(args, flag.dest) != flag.default]
    if given:
        parser.error(f"{', '.join(given)} not used by --mode {args.mode}")
    return args


def main(argv=None) -> str:
    args = parse_args(argv)
    if args._profile_child:
        return profile_child(json.loads(args._profile_child))
    command = shown_command("benchmarks/bench_throughput.py", sys.argv[1:] if argv is None else argv, ("--output",))
    body = time_trainer(args, command) if args.mode == "trainer" else time_script(args, command)
    print(body)
    return body


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


# --mode trainer


def time_trainer(args, command) -> str:
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
        body = trainer_report(
            args, command, device, name, batch, warmup, peak, peak_dtype, [rows[k] for k in sorted(rows)]
        )
    return body


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


def trainer_report(args, command, device, name, batch, warmup, peak, peak_dtype, rows) -> str:
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


# --mode script


def time_script(args, command) -> str:
    if args.quick:
        args.rows, args.iterations, args.repeats = "digits", 32, 1
    work = Path(tempfile.mkdtemp(prefix="bench_throughput_script_"))
    shim = [] if args.real_lpips else [str(work / "shim")]
    if shim:  # the stand-in lpips for the training script, and for counting FLOPs in this process
        (work / "shim" / "lpips").mkdir(parents=True)
        (work / "shim" / "lpips" / "__init__.py").write_text(textwrap.dedent(FAKE_LPIPS))
        sys.path.insert(0, shim[0])

    def run_tree(tree, flags, output, profile=False):  # the stand-in lpips first, then the tree's package
        pythonpath = os.pathsep.join([*shim, str(tree / "src"), os.environ.get("PYTHONPATH", "")])
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=pythonpath)
        return run_script(tree, flags, output, env, args.timeout, profile)

    trees = {"this tree": ROOT} | ({"baseline": Path(args.baseline).resolve()} if args.baseline else {})
    common = [
        "--max_train_steps", str(args.iterations), "--logging_steps", "16", "--checkpointing_steps", str(10**9),
        "--validation_steps", str(10**9), "--report_to", "none",
    ]  # fmt: skip
    extra = args.extra_flags.split()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    peak_dtype = torch.bfloat16 if device == "cuda" else torch.float32
    peak = matmul_rate(torch.device(device), peak_dtype)
    rows = []
    for row in args.rows.split(","):
        preset, options = row_flags(row)
        data = synthetic_images(work, preset, 2048)
        flags = ["--preset", preset, *data, *common, *options, *extra]
        results = {}
        for repeat in range(args.repeats):
            for name, tree in trees.items():
                if name == "baseline" and options:
                    continue  # the baseline has the shipped preset only
                result = run_tree(tree, flags, work / f"{row}-{name}-{repeat}")
                results.setdefault(name, []).append(result)
                print(row, name, repeat, result, flush=True)
        if args.profile:  # one more run of this tree under the profiler (slower): its shares only, not its speed
            profiled = run_tree(ROOT, flags, work / f"{row}-profile", profile=True)
            results["this tree"][0]["shares"] = profiled.get("shares", f"failed ({profiled.get('error')})")

        run, config = parse_training_args(["--preset", preset, *options, *extra])
        loaded = run.train_batch_size * (2 if config.adversarial else 1)
        flops = iteration_flops(preset, [*options, *extra], run.train_batch_size)
        for name, runs in results.items():
            rows.append(table_row(row, name, runs, loaded, run.train_batch_size, flops, peak))
            print(rows[-1], flush=True)
    return script_report(args, command, device, peak, peak_dtype, rows)


def synthetic_images(root: Path, preset: str, count: int) -> list[str]:
    """PNG noise images of the preset's size and channels (class sub-folders for a class-conditional preset)."""
    if preset == "digits":
        return []  # its own data: the bundled digits
    size, channels = PRESETS[preset].get("resolution", 32), UNET_PRESETS[preset]["in_channels"]
    classes = 10 if PRESETS[preset].get("class_conditional") else 1
    folder = root / f"{preset}-images"
    if not folder.exists():
        rng = np.random.default_rng(0)
        for i in range(count):
            sub = folder / (f"class{i % classes}" if classes > 1 else "all")
            sub.mkdir(parents=True, exist_ok=True)
            shape = (size, size, channels) if channels == 3 else (size, size)
            PIL.Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(sub / f"{i}.png")
    return ["--train_data_dir", str(folder), "--image_column", "image"]


def row_flags(row: str) -> tuple[str, list[str]]:
    """`PRESET+OPTION+...` -> the preset and the training script's flags of its options."""
    preset, *options = row.split("+")
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise SystemExit(f"--rows: unknown option(s) {unknown} in {row!r}; choose from {list(OPTIONS)}")
    return preset, [flag for option in options for flag in OPTIONS[option]]


def run_script(tree: Path, flags: list[str], output: Path, env: dict, timeout: int, profile: bool = False) -> dict:
    """Runs the tree's training script; returns its logged windows (and profile shares)."""
    command = [
        sys.executable,
        str(tree / "examples" / "train_act" / "train_act.py"),
        *flags,
        "--output_dir",
        str(output),
    ]
    if profile:  # the same script, run under torch.profiler by a child process of this file
        command = [sys.executable, __file__, "--_profile_child", json.dumps(command[1:])]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    logs = [json.loads(line) for line in (output / "logs.jsonl").read_text().splitlines()]
    # whole 16-iteration windows only (the script also logs the last, possibly shorter, one)
    windows = [r["images_per_second"] for r in logs if "images_per_second" in r and r["step"] % 16 == 0]
    result = {"windows": windows, "seconds": time.perf_counter() - start}
    result["peak_gib"] = max((r.get("peak_memory_gib", 0.0) for r in logs), default=0.0) or None
    shares = output / "profile.json"
    if shares.exists():
        result["shares"] = json.loads(shares.read_text())
    return result


def profile_child(command: list[str]) -> None:
    """Runs the training script (`command`: its path, then its flags) in this child process as `__main__`, as
    `python train_act.py ...` would, under torch.profiler, and writes the share of each marked range."""
    import runpy

    from torch.profiler import ProfilerActivity, profile

    sys.argv = command
    output = Path(command[command.index("--output_dir") + 1])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])

    # backward passes on the calling thread, so that they fall inside the ranges that started them
    with profile(activities=activities) as prof, torch.autograd.set_multithreading_enabled(False):
        runpy.run_path(command[0], run_name="__main__")
    device = torch.cuda.is_available()
    totals = {}
    for event in prof.key_averages():  # the host-side entry of each range; on a GPU, the device time it launched
        if event.key in (*RANGES, "act.iteration") and event.device_type == torch.autograd.DeviceType.CPU:
            totals[event.key] = (event.device_time_total if device else event.cpu_time_total) / 1e6
    whole = totals.pop("act.iteration", 0.0) or sum(totals.values())
    if device:  # the device time of the iterations: the wall time of the marked iterations
        whole = max(whole, sum(totals.values()))
    shares = {key: totals.get(key, 0.0) / whole for key in RANGES}
    shares["other"] = max(0.0, 1 - sum(shares.values()))
    (output / "profile.json").write_text(json.dumps(shares))


def iteration_flops(preset: str, flags: list[str], batch: int) -> float:
    """FLOPs of one ACT iteration without R1 of the preset's models at its batch (counted at batch 2, scaled)."""
    run, config = parse_training_args(["--preset", preset, *flags])
    channels = UNET_PRESETS[preset]["in_channels"]
    num_classes = 10 if run.class_conditional else None
    torch.manual_seed(0)
    unet = UNet2DModel(**unet_config(preset, run.resolution, channels, num_classes))
    trainer = ACTTrainer.build(unet, config, Accelerator(cpu=True))
    shape = (2, channels, run.resolution, run.resolution)
    labels = torch.zeros(2, dtype=torch.long) if num_classes else None
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(torch.rand(shape) * 2 - 1, 1, labels, torch.rand(shape) * 2 - 1, labels)
    return counter.get_total_flops() * batch / 2


def table_row(row, name, runs, loaded, batch, flops, peak) -> str:
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return f"| {row} | {name} | failed: {errors[0]} | | | | | |"
    windows = [w for r in runs for w in r["windows"][1:]]
    images = statistics.median(windows)
    its = images / loaded
    peak_gib = max((r["peak_gib"] or 0) for r in runs) or None
    shares = next((r["shares"] for r in runs if "shares" in r), None)
    profile = shares or ""  # a dict of shares, or why the profiled run failed
    if isinstance(shares, dict):
        profile = ", ".join(f"{k.removeprefix('act.')} {100 * v:.0f}%" for k, v in shares.items() if v >= 0.005)
    memory = f"{peak_gib:.2f}" if peak_gib else "n/a"
    return (
        f"| {row} | {name} | {its:.3g} | {its * batch:.3g} | {memory} | {100 * flops * its / peak:.1f}% | "
        f"{len(windows)} | {profile} |"
    )


def script_report(args, command, device, peak, peak_dtype, rows) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    body = "\n".join([
        f"## The training script per preset on {name} (`benchmarks/bench_throughput.py --mode script`)",
        "",
        f"Command: `{command}`; torch {torch.__version__}. Each row runs the training script with `--preset` as "
        "shipped plus the row's options (bf16: `--mixed_precision bf16`; compile: `--torch_compile`; graphs: "
        "`--torch_compile_mode reduce-overhead`; huber: `--loss_type pseudo_huber`; loader: `--data_on_device no`) on "
        "synthetic PNG images of the preset's size, LPIPS with random VGG16 weights. Iterations/s: the median over "
        f"the 16-iteration windows after the first of {args.repeats} run(s) of {args.iterations} iterations "
        "(images/s logged by the script over the images loaded, 2B per ACT iteration); images/s = generator images "
        f"(B per iteration). MFU against the measured matmul peak {peak / 1e12:.2f} TFLOP/s "
        f"({str(peak_dtype).split('.')[-1]}). Profile: share of the marked iterations' "
        f"{'device' if device == 'cuda' else 'host'} time per part.",
        "",
        "| row | code | iterations/s | images/s | peak memory (GiB) | MFU | windows | profile |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    write_section(args.output, f"bench_training_script_{device}", body)
    return body


if __name__ == "__main__":
    main()
