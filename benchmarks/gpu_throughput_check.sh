#!/usr/bin/env bash
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
# How fast does the training script train the GPU presets, and what do its speed options buy? One device call (about
# 9 minutes; give the call timeout_s 560 and keep time for a rerun), ranked so that a call cut short still answers the
# first questions:
#   1. benchmarks/bench_throughput.py --mode script: the CIFAR-10 preset as shipped (LPIPS, fp32), this tree
#      against the `--baseline` export when given (alternating, two runs each), then this tree's speed options:
#      bf16, bf16 + torch.compile, pseudo-Huber (fp32, bf16 + compile); profile shares for the shipped row.
#   2. the ImageNet 64 preset at 80 images per GPU in bf16 (MFU).
#   3. host-device synchronisations inside ACT iterations (torch.cuda.set_sync_debug_mode("error")).
# Carry the wheels (diffusers, datasets, dill, multiprocess, importlib_metadata, fsspec; kornia and kornia_rs too
# if the baseline imports them) in .whl/ and, to compare, an export of the code to compare against:
#   git archive REF | (mkdir -p gpu_baseline && tar -x -C gpu_baseline)
# and run: bash benchmarks/gpu_throughput_check.sh [--baseline gpu_baseline]
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
start=$SECONDS
source benchmarks/gpu_env.sh  # wheels, PYTHONPATH, $out with a copy of docs/benchmarks.md, gpu.txt
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" \
  | tee -a "$out/gpu.txt"
left() { local t=$(($1 - (SECONDS - start))); echo $((t > 10 ? t : 10)); }  # seconds until a point of the budget

echo "== 1. CIFAR-10 preset: shipped (and the baseline), then the speed options ==" | tee -a "$out/gpu.txt"
timeout 330 python3 benchmarks/bench_throughput.py --mode script --rows cifar10 "${baseline[@]}" --iterations 48 \
  --repeats 2 --profile --timeout 120 --output "$out/benchmarks.md" 2>&1 | tee "$out/shipped.log"
timeout "$(left 420)" python3 benchmarks/bench_throughput.py --mode script \
  --rows cifar10+bf16,cifar10+bf16+compile,cifar10+huber,cifar10+huber+bf16+compile,cifar10+huber+bf16+graphs \
  --iterations 64 --repeats 1 \
  --timeout 120 --output "$out/options.md" 2>&1 | tee "$out/options.log"
echo "part 1 ended after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"

echo "== 2. ImageNet 64 preset, 80 images per GPU, bf16 ==" | tee -a "$out/gpu.txt"
timeout "$(left 480)" python3 benchmarks/bench_throughput.py --mode script \
  --rows imagenet64+bf16,imagenet64+bf16+compile \
  --extra_flags "--train_batch_size 80" --iterations 48 --repeats 1 --timeout 120 --output "$out/imagenet.md" 2>&1 \
  | tee "$out/imagenet.log"

echo "== 3. synchronisations inside an iteration ==" | tee -a "$out/gpu.txt"
timeout 60 python3 benchmarks/gpu_sync_check.py 2>&1 | tee "$out/sync.txt"
echo "ended after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
