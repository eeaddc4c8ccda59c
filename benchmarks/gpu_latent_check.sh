#!/usr/bin/env bash
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
# How fast does latent ACT train at 256x256 (`--preset latent256`), and in how much GPU memory? One device call
# (about 4 minutes; give it timeout_s 420). Offline: an AutoencoderKL with sd-vae-ft-mse's config and random
# weights (the speed and memory of the real one, not its latents) and a synthetic folder of 256x256 PNGs stand in for
# the Hub model and a dataset. The script encodes the folder once (timed), then trains the preset at batch 64 and
# reports iterations/s, images/s and peak memory from the run's logs.jsonl into $out/latent256.md.
# Carry the wheels (diffusers, datasets, dill, multiprocess, importlib_metadata, fsspec, xxhash) in .whl/ and run:
#   bash benchmarks/gpu_latent_check.sh   (results land in $OUT, or in gpu_check/ when OUT is unset)
# LATENT_CHECK_IMAGES, LATENT_CHECK_STEPS and LATENT_CHECK_BATCH shrink it for a CPU smoke test.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
source benchmarks/gpu_env.sh  # wheels, PYTHONPATH, $out with a copy of docs/benchmarks.md, gpu.txt
images=${LATENT_CHECK_IMAGES:-1024} steps=${LATENT_CHECK_STEPS:-100} batch=${LATENT_CHECK_BATCH:-64}

python3 - "$out" "$images" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL

out, count = Path(sys.argv[1]), int(sys.argv[2])
folder = out / "synthetic" / "images"
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for i in range(count):  # smooth random colour fields: decodable images of the right size, nothing more
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    PIL.Image.fromarray(small).resize((256, 256), PIL.Image.BICUBIC).save(folder / f"{i:05d}.png")
torch.manual_seed(0)
vae = AutoencoderKL(  # sd-vae-ft-mse's architecture (83.7M parameters), random weights
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    latent_channels=4, norm_num_groups=32, sample_size=256, scaling_factor=0.18215,
)
vae.save_pretrained(out / "sd-vae-sized")
print(f"{count} images, VAE of {sum(p.numel() for p in vae.parameters()) / 1e6:.1f}M parameters")
EOF

timeout 360 python3 examples/train_act/train_act.py --preset latent256 --train_data_dir "$out/synthetic" \
  --vae_name_or_path "$out/sd-vae-sized" --cache_dir "$out/cache" --output_dir "$out/latent256-run" \
  --train_batch_size "$batch" --max_train_steps "$steps" --logging_steps $((steps / 4 > 0 ? steps / 4 : 1)) \
  --checkpointing_steps "$steps" --validation_steps "$steps" --report_to none 2>&1 | tee "$out/latent256.log" \
  | grep -v "it/s"

python3 - "$out" "$batch" <<'EOF' | tee "$out/latent256.md"
import json
import re
import sys
from pathlib import Path

out, batch = Path(sys.argv[1]), int(sys.argv[2])
log = (out / "latent256.log").read_text()
stamps = re.findall(r"^(\d+-\d+-\d+ \d+:\d+:\d+),\d+ .*(Encoding|preset `latent256`)", log, flags=re.M)
entries = [json.loads(line) for line in (out / "latent256-run" / "logs.jsonl").read_text().splitlines()]
speeds = [e for e in entries if "images_per_second" in e][1:]  # the first window holds compilation and warm-up
gpu = ([line for line in (out / "gpu.txt").read_text().splitlines() if line and "name" not in line] or ["CPU"])[0]
print(f"## Latent ACT at 256x256 (`--preset latent256`, batch {batch}) on {gpu}\n")
print("| iterations | iterations/s | generator images/s | peak memory (GiB) |\n|---|---|---|---|")
for e in speeds:  # an ACT iteration loads 2B images: B for the generator step, B for the discriminator's
    rate = e["images_per_second"]
    print(f"| {e['step']} | {rate / (2 * batch):.2f} | {rate / 2:.1f} | {e.get('peak_memory_gib', float('nan')):.2f} |")
print(f"\nEncoding and setup log lines: {stamps}")
EOF
echo "ended after $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
