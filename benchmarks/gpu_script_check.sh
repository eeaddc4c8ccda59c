#!/usr/bin/env bash
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
# Does the training script itself work on a GPU, and as fast as the code it replaces? One device call (about 5
# minutes):
#   1. benchmarks/gpu_resume_check.py: resume equality, loss-scaler checkpointing and the card's precision for fp32,
#      fp16 and bf16 on CUDA.
#   2. benchmarks/bench_throughput.py --mode script: the CIFAR-10 preset through the training script (data loading
#      from PNG files, ACT-Aug, R1 every 16, EMA, logging; pseudo-Huber instead of LPIPS) on 32x32 synthetic PNGs,
#      64 iterations: images/s from logs.jsonl of this tree and, with `--baseline DIR`, of that export too,
#      alternating runs, two each.
#   3. host-device synchronisations inside ACT iterations of the CIFAR-10 preset (torch.cuda.set_sync_debug_mode).
# Carry the wheels of diffusers, datasets, dill, multiprocess, importlib_metadata and fsspec in .whl/ (see the device
# tool's README) and, for a comparison in part 2, an export of the code to compare against:
#   git archive REF | (mkdir -p gpu_baseline && tar -x -C gpu_baseline)
# and run: bash benchmarks/gpu_script_check.sh [--baseline gpu_baseline]
# (results land in $OUT, or in gpu_check/ when OUT is unset)
set -uo pipefail
baseline=()
while [ $# -gt 0 ]; do
  case $1 in
    --baseline) baseline=(--baseline "$(realpath -m "$2")"); shift 2 ;;
    *) echo "unknown argument $1 (usage: $0 [--baseline DIR])" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh  # wheels, PYTHONPATH, $out with a copy of docs/benchmarks.md, gpu.txt
export DIFFUSERS_ACT_CACHE=/tmp/act_cache
python3 -c "import torch, diffusers, datasets, pyarrow; print('torch', torch.__version__, 'diffusers',
  diffusers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)" | tee -a "$out/gpu.txt"

echo "== 1. resume on CUDA =="
timeout 240 python3 benchmarks/gpu_resume_check.py --output "$out/resume.md"

echo "== 2. CIFAR-10 preset through the script =="
timeout 330 python3 benchmarks/bench_throughput.py --mode script --rows cifar10 \
  --extra_flags "--loss_type pseudo_huber" "${baseline[@]}" --iterations 64 --repeats 2 --timeout 150 \
  --output "$out/benchmarks.md" 2>&1 | tee "$out/speed.log"

echo "== 3. synchronisations inside an iteration (CIFAR-10 preset, pseudo-Huber, R1 and ACT-Aug on) =="
timeout 120 python3 benchmarks/gpu_sync_check.py 2>&1 | tee "$out/sync.txt"
