#!/usr/bin/env bash
# One call on a lent GPU machine, in two parts that share a time budget (GPU_CHECK_SECONDS, default 540):
#   1. bench_throughput.py (its trainer mode): CIFAR-10 and ImageNet 64 presets, CT and ACT iterations in fp32,
#      tf32, fp16, bf16, bf16 + channels_last, bf16 + torch.compile (compiled rows last); peak memory; MFU; one-step
#      sampling.
#   2. the digits ACT-vs-CT comparison repeated over seeds, runs in parallel on the one GPU (improved recipe, CT and
#      ACT at batch 32, seeds 1-3), plus 4,000-iteration runs of both at seed 0. Skipped when `datasets` is missing.
#      The digits UNet is far too small to fill a GPU: eight runs sharing an H100 made 6.5 (ACT) to 11 (CT) it/s
#      each, about a 2-core CPU's speed, so in a 15-minute GPU budget they reach 500-1,000 iterations; the logs of
#      every run (logs.jsonl, with FID every 250 iterations) come back in digits_gpu.tar.gz either way.
# The GPU machine has torch but not diffusers, kornia or datasets: carry them as wheels in .whl/ (prepared on the
# development machine, see the device tool's README), e.g.
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     diffusers kornia kornia_rs importlib_metadata datasets dill multiprocess
# and run: bash benchmarks/gpu_check.sh   (results land in $OUT, or in gpu_check/ when OUT is unset)
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
budget=${GPU_CHECK_SECONDS:-540}
source benchmarks/gpu_env.sh  # wheels, PYTHONPATH, $out with a copy of docs/benchmarks.md, gpu.txt
python3 -c "import torch, diffusers, kornia; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" \
  | tee -a "$out/gpu.txt"

# part 1: at most 60% of the budget
timeout $((budget * 6 / 10)) python3 benchmarks/bench_throughput.py --device cuda --output "$out/benchmarks.md" \
  2>&1 | grep -v "should be kept in float32" | tee "$out/bench_throughput.log"
echo "bench_throughput exit status ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"

# part 2: what is left, minus 20 s to pack the logs
left=$((budget - (SECONDS - start) - 20))
if python3 -c "import datasets" 2>/dev/null && [ "$left" -gt 60 ]; then
  work=/tmp/digits_gpu
  mkdir -p "$work"
  launch() {  # name, then the benchmark's flags
    local name=$1
    shift
    OMP_NUM_THREADS=2 timeout "$left" python3 benchmarks/digits_act_vs_ct.py --recipes improved --workdir "$work/$name" \
      --output "$work/$name.md" --images_dir "$work/$name-images" --summary_json "$work/$name.json" "$@" \
      >"$work/$name.log" 2>&1 &
  }
  for seed in 1 2 3; do
    launch "ct-seed$seed" --runs ct_small --seed "$seed"
    launch "act-seed$seed" --runs act --seed "$seed"
  done
  launch ct-4000 --runs ct_small --iterations 4000 --eval_every 500
  launch act-4000 --runs act --iterations 4000 --eval_every 500
  wait
  echo "digits runs ended after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
  (cd "$work" && tar czf "$out/digits_gpu.tar.gz" ./*.json ./*.log ./*/*/logs.jsonl 2>/dev/null)
  grep -H "final FID" "$work"/*.log | tee -a "$out/gpu.txt"
else
  echo "digits runs skipped (datasets missing or ${left} s left)" | tee -a "$out/gpu.txt"
fi
