#!/usr/bin/env bash
# One call on a lent GPU machine: throughput of the CIFAR-10 and ImageNet 64 presets (CT and ACT steps in fp32, bf16,
# bf16 + channels_last, bf16 + torch.compile; peak memory; MFU) and one-step sampling.
# The GPU machine has torch but not diffusers, kornia or huggingface_hub: carry them as wheels in .whl/
# (prepared on the development machine, see the device tool's README), e.g.
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     diffusers huggingface_hub safetensors kornia kornia_rs hf_xet filelock fsspec tqdm pyyaml regex
# and run: bash benchmarks/gpu_check.sh   (results land in $OUT, or in docs/ when OUT is unset)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
out="${OUT:-docs}"
mkdir -p "$out"
[ "$out" = docs ] || cp docs/benchmarks.md "$out/benchmarks.md"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 benchmarks/bench_throughput.py --device cuda --output "$out/benchmarks.md" 2>&1 | tee "$out/bench_throughput.log"
