#!/usr/bin/env bash
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
# Does bf16 autocast train the digits preset as well as fp32 (the case for `--mixed_precision auto` on GPU
# presets)? One device call (a few minutes; give it timeout_s 480): the digits preset at full length (2,000
# iterations, ACT at batch 32) over seeds 0, 1, 2 in fp32 and in bf16 autocast on the same GPU, run by
# benchmarks/digits_sweep.py (settings gp0.1, the preset, and bf16), two processes at a time. The table (with each
# seed's paired difference from fp32 and its t statistic) lands in $OUT/benchmarks.md, a copy of docs/benchmarks.md,
# under "Digits recipe sweep, full length". GPU presets move to --mixed_precision auto only if bf16 stays within
# seed noise of fp32.
# Carry the wheels (diffusers, datasets, dill, multiprocess, importlib_metadata, fsspec) in .whl/ and run:
#   bash benchmarks/gpu_bf16_digits_check.sh   (results land in $OUT, or in gpu_check/ when OUT is unset)
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
source benchmarks/gpu_env.sh  # wheels, PYTHONPATH, $out with a copy of docs/benchmarks.md, gpu.txt
mkdir -p "$out/runs"

# fp32 and bf16 side by side (the digits models leave the GPU mostly idle), then one table from the finished runs
for setting in gp0.1 bf16; do
  timeout 420 python3 benchmarks/digits_sweep.py --full "$setting" --results_root "$out/runs" \
    --output "$out/$setting.md" > "$out/$setting.log" 2>&1 &
done
wait
python3 benchmarks/digits_sweep.py --full gp0.1,bf16 --cached_only --results_root "$out/runs" \
  --output "$out/benchmarks.md" 2>&1 | tee "$out/table.log"
echo "ended after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
