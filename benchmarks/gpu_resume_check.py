# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The training script's checkpoints on a GPU: resume equality and precision, per mixed precision.

For each precision it runs `examples/train_act/train_act.py` (digits preset, ACT with ACT-Aug and R1 every 2
iterations) twice straight for 6 iterations with checkpoints at 3 and 6, then resumes a copy of the first run's
`checkpoint-3` to 6. It reports the largest weight difference at iteration 6 between the two straight runs (the GPU's
own run-to-run nondeterminism) and between the straight and the resumed run (what resuming adds), whether the fp16
loss scaler was checkpointed, and the precision the model card states. On a CPU the same script checks the same
things (there both differences are 0).

    python benchmarks/gpu_resume_check.py --output /tmp/resume.md
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_act" / "train_act.py"
FLAGS = ["--max_train_steps", "6", "--checkpointing_steps", "3", "--report_to", "none", "--train_batch_size", "16",
         "--use_augment", "--gp_interval", "2", "--aug_target", "0", "--validation_steps", "1000"]  # fmt: skip


def train(output_dir: Path, *extra: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(SCRIPT), "--output_dir", str(output_dir), *FLAGS, *extra],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return time.perf_counter() - start


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = {}
    for file in sorted((checkpoint / "training").glob("*.safetensors")):
        state.update({f"{file.stem}.{k}": v.double() for k, v in load_file(file).items()})
    return state


def largest_difference(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precisions", default="no,fp16,bf16")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gpu_resume_check_"))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    rows = []
    for precision in args.precisions.split(","):
        extra = ["--mixed_precision", precision]
        try:
            seconds = train(work / f"{precision}-a", *extra)
            train(work / f"{precision}-b", *extra)
            resumed = work / f"{precision}-resumed"
            shutil.copytree(work / f"{precision}-a" / "checkpoint-3", resumed / "checkpoint-3")
            train(resumed, *extra, "--resume_from_checkpoint", str(resumed / "checkpoint-3"))
        except RuntimeError as error:
            rows.append(f"| {precision} | failed: {str(error).strip().splitlines()[-1][:150]} | | | | |")
            print(rows[-1], flush=True)
            continue
        first = work / f"{precision}-a" / "checkpoint-6"
        straight = largest_difference(first, work / f"{precision}-b" / "checkpoint-6")
        resume = largest_difference(first, resumed / "checkpoint-6")
        optimizers = torch.load(resumed / "checkpoint-6" / "training" / "optimizers.pt", weights_only=True)
        card = (work / f"{precision}-a" / "README.md").read_text()
        stated = card.split("precision: ")[1].split("\n")[0].rstrip(".")
        logs = [json.loads(line) for line in (resumed / "logs.jsonl").read_text().splitlines()]
        rows.append(
            f"| {precision} | {straight:.3g} | {resume:.3g} | {'yes' if 'scaler' in optimizers else 'no'} | "
            f"{stated} | {seconds:.1f} s; resumed log steps {[e['step'] for e in logs]} |"
        )
        print(rows[-1], flush=True)
    body = "\n".join([
        f"## Checkpoints on {device} (`benchmarks/gpu_resume_check.py`)",
        "",
        "Largest weight difference at iteration 6 (generator, target, discriminator, EMA) between two straight runs "
        "and between a straight run and one resumed from its checkpoint-3; torch " + torch.__version__ + ".",
        "",
        "| precision | straight vs straight | straight vs resumed | loss scaler saved | card says | run time |",
        "|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    print(body)
    if args.output:
        Path(args.output).write_text(body + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return body


if __name__ == "__main__":
    main()
