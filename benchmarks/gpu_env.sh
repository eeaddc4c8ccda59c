# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
# Sourced by the GPU check scripts (from the repository root): installs the wheels carried in .whl/ (the device
# machine has torch but not diffusers, datasets or kornia) into /tmp/site, puts them and src/ on PYTHONPATH, makes
# the results folder $out ($OUT, or gpu_check/ when OUT is unset) with a copy of docs/benchmarks.md for the tables to
# land in, and records the GPU in $out/gpu.txt.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
out=$(realpath -m "${OUT:-gpu_check}")
mkdir -p "$out"
cp docs/benchmarks.md "$out/benchmarks.md"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
