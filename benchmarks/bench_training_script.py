# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The training script's own loop, per preset as shipped and with each speed option: iterations/s, images/s, peak
memory, MFU, and where an iteration's time goes.

Each row runs `examples/train_act/train_act.py --preset P` as a subprocess (data loading, augmentation, the
distance, R1 every 16 iterations, both EMAs, logging; no checkpoints, samples or FID) on synthetic images of the
preset's size written as PNG files (the same data path as real images), and reads the images/s that the script logs
for each 16-iteration window (one R1 interval) from `logs.jsonl`: the median of the windows after the first (which
holds cuDNN's autotuning and compilation). LPIPS runs with randomly initialised VGG16 weights (a stand-in `lpips`
module with the same layers, so the same cost; its weights cannot be downloaded on the benchmark machines), unless
`--real_lpips`.

`--baseline DIR` also times a `git archive` of an earlier commit (same rows with no extra flags), alternating runs
with this tree, so that a ratio is measured on one machine in one call. MFU: the FLOPs of one iteration without R1
(torch's flop counter on the preset's models at batch 2, scaled to the preset's batch) times iterations/s, over the
dense bf16 (GPU) or fp32 (CPU) matmul rate measured in the same run. `--profile` adds the share of an iteration spent
in data, the generator's pass, its optimizer, the target and EMA updates, D's pass (with and without R1) and D's
optimizer (torch.profiler ranges that the trainer and the script mark; device time on a GPU, host time on the CPU);
the rest is overhead outside those ranges.

    python benchmarks/bench_training_script.py --rows cifar10,cifar10+bf16 --baseline gpu_baseline   # on a GPU
    python benchmarks/bench_training_script.py --rows digits --iterations 48 --output /tmp/t.md       # CPU
"""

import argparse
import json
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _report import shown_command, write_section  # noqa: E402

# Row name -> (preset, extra flags). "+" joins a preset and its options.
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


def synthetic_images(root: Path, preset: str, count: int) -> list[str]:
    """PNG noise images of the preset's size and channels (class sub-folders for a class-conditional preset)."""
    from diffusers_act.presets import UNET_PRESETS
    from diffusers_act.training.config import PRESETS

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
    from accelerate import Accelerator
    from diffusers import UNet2DModel
    from torch.utils.flop_counter import FlopCounterMode

    from diffusers_act.presets import UNET_PRESETS, unet_config
    from diffusers_act.training import ACTTrainer
    from diffusers_act.training.config import parse_args

    run, config = parse_args(["--preset", preset, *flags])
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


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="cifar10,cifar10+bf16,cifar10+bf16+compile,cifar10+huber,cifar10+huber+bf16")
    parser.add_argument("--iterations", type=int, default=64, help="per run: 16-iteration windows, the first dropped")
    parser.add_argument("--repeats", type=int, default=2, help="runs per row (alternating with the baseline)")
    parser.add_argument("--baseline", default=None, help="a `git archive` export of an earlier commit to time too")
    parser.add_argument("--profile", action="store_true", help="also the share of each part of an iteration")
    parser.add_argument("--real_lpips", action="store_true", help="use the lpips package and its weights")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per run")
    parser.add_argument("--extra_flags", default="", help="added to every run, baseline too (e.g. a smaller batch)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--_profile_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._profile_child:
        return profile_child(json.loads(args._profile_child))
    work = Path(tempfile.mkdtemp(prefix="bench_training_script_"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not args.real_lpips:
        (work / "shim" / "lpips").mkdir(parents=True)
        (work / "shim" / "lpips" / "__init__.py").write_text(textwrap.dedent(FAKE_LPIPS))
        sys.path.insert(0, str(work / "shim"))

    def pythonpath(tree: Path) -> str:  # the stand-in lpips first, then the tree's package
        shim = [str(work / "shim")] if not args.real_lpips else []
        return os.pathsep.join([*shim, str(tree / "src"), os.environ.get("PYTHONPATH", "")])

    trees = {"this tree": ROOT} | ({"baseline": Path(args.baseline).resolve()} if args.baseline else {})
    common = [
        "--max_train_steps", str(args.iterations), "--logging_steps", "16", "--checkpointing_steps", str(10**9),
        "--validation_steps", str(10**9), "--report_to", "none",
    ]  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    peak_dtype = torch.bfloat16 if device == "cuda" else torch.float32
    from bench_throughput import matmul_rate

    peak = matmul_rate(torch.device(device), peak_dtype)
    rows = []
    for row in args.rows.split(","):
        preset, flags = row_flags(row)
        data = synthetic_images(work, preset, 2048)
        results = {}
        for repeat in range(args.repeats):
            for name, tree in trees.items():
                if name == "baseline" and flags:
                    continue  # the baseline has the shipped preset only
                extra = args.extra_flags.split()
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(work / "shim")] * (not args.real_lpips)
                    + [str(tree / "src"), os.environ.get("PYTHONPATH", "")]
                )
                result = run_script(
                    tree, ["--preset", preset, *data, *common, *flags, *extra], work / f"{row}-{name}-{repeat}", env,
                    args.timeout,
                )  # fmt: skip
                results.setdefault(name, []).append(result)
                print(row, name, repeat, result, flush=True)
        if args.profile:  # one more run of this tree under the profiler (slower): its shares only, not its speed
            env["PYTHONPATH"] = pythonpath(ROOT)
            profiled = run_script(
                ROOT, ["--preset", preset, *data, *common, *flags, *args.extra_flags.split()], work / f"{row}-profile",
                env, args.timeout, profile=True,
            )  # fmt: skip
            results["this tree"][0]["shares"] = profiled.get("shares", f"failed ({profiled.get('error')})")
        from diffusers_act.training.config import parse_args

        run, config = parse_args(["--preset", preset, *flags, *(args.extra_flags.split())])
        loaded = run.train_batch_size * (2 if config.adversarial else 1)
        flops = iteration_flops(preset, flags + args.extra_flags.split(), run.train_batch_size)
        for name, runs in results.items():
            rows.append(table_row(row, name, runs, loaded, run.train_batch_size, flops, peak))
            print(rows[-1], flush=True)
    body = report(args, argv, device, peak, peak_dtype, rows)
    print(body)
    return body


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


def report(args, argv, device, peak, peak_dtype, rows) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    command = shown_command(
        "benchmarks/bench_training_script.py", sys.argv[1:] if argv is None else argv, ("--output",)
    )
    body = "\n".join([
        f"## The training script per preset on {name} (`benchmarks/bench_training_script.py`)",
        "",
        f"Command: `{command}`; torch {torch.__version__}. Each row runs the training script with `--preset` as "
        f"shipped plus the row's options (bf16: `--mixed_precision bf16`; compile: `--torch_compile`; graphs: "
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
