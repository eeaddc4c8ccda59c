#!/usr/bin/env bash
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
# One call on a lent GPU machine (about 5 minutes) that checks the training script itself there:
#   1. benchmarks/gpu_resume_check.py: resume equality, loss-scaler checkpointing and the card's precision for fp32,
#      fp16 and bf16 on CUDA.
#   2. the CIFAR-10 preset through the training script (data loading from PNG files, ACT-Aug, R1 every 16, EMA,
#      logging; pseudo-Huber instead of LPIPS, whose VGG weights cannot be downloaded there) on 32x32 synthetic PNGs:
#      images/s from logs.jsonl of this tree against a `git archive` export of a baseline commit in gpu_baseline/
#      (skipped when absent), alternating runs, two each.
#   3. host-device synchronisations inside ACT iterations of the CIFAR-10 preset (torch.cuda.set_sync_debug_mode).
# Carry the wheels of diffusers, datasets, dill, multiprocess, importlib_metadata and fsspec in
# .whl/ (see the device tool's README) and, for part 2, the baseline export:
#   git archive b93c2e9 | (mkdir -p gpu_baseline && tar -x -C gpu_baseline)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
fi
site=/tmp/site
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 DIFFUSERS_ACT_CACHE=/tmp/act_cache
out=$(realpath -m "${OUT:-gpu_check}")
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
PYTHONPATH="$PWD/src:$site" python3 -c "import torch, diffusers, datasets, pyarrow; print('torch', torch.__version__,
  'diffusers', diffusers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)" | tee -a "$out/gpu.txt"

echo "== 1. resume on CUDA =="
PYTHONPATH="$PWD/src:$site" timeout 240 python3 benchmarks/gpu_resume_check.py --output "$out/resume.md"

echo "== 2. CIFAR-10 preset through the script =="
data=/tmp/cifar_like
PYTHONPATH="$PWD/src:$site" python3 - "$data" <<'PY'
import sys, numpy as np, PIL.Image, pathlib
root = pathlib.Path(sys.argv[1]) / "all"
root.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for i in range(2048):
    PIL.Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
PY
flags="--preset cifar10 --train_data_dir $data --image_column image --loss_type pseudo_huber --max_train_steps 64
  --logging_steps 16 --checkpointing_steps 100000 --validation_steps 100000 --report_to none"
for round in 1 2; do
  for tree in new baseline; do
    if [ "$tree" = baseline ]; then root=gpu_baseline; [ -d "$root" ] || continue; else root=.; fi
    dir=/tmp/speed-$tree-$round
    rm -rf "$dir"
    PYTHONPATH="$root/src:$site" timeout 150 python3 "$root/examples/train_act/train_act.py" $flags --output_dir "$dir" \
      > "$out/speed-$tree-$round.log" 2>&1
    python3 - "$dir/logs.jsonl" "$tree" "$round" <<'PY' | tee -a "$out/speed.txt"
import json, sys
try:
    rows = [json.loads(line) for line in open(sys.argv[1])]
    rates = [round(r["images_per_second"], 1) for r in rows]
    print(f"{sys.argv[2]} round {sys.argv[3]}: images/s per 16-iteration window {rates} (batch 80: it/s = images/s / 160)")
except Exception as error:
    print(f"{sys.argv[2]} round {sys.argv[3]}: failed ({error})")
PY
  done
done

echo "== 3. synchronisations inside an iteration (CIFAR-10 preset, pseudo-Huber, R1 and ACT-Aug on) =="
PYTHONPATH="$PWD/src:$site" timeout 120 python3 benchmarks/gpu_sync_check.py 2>&1 | tee "$out/sync.txt"
