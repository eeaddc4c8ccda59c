# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""scripts/train_digits_vae.py (the VAE of the CPU latent demonstration) and the benchmark's `--vae` runs."""

import importlib.util
import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from diffusers_act.sklearn_digits import digits_tensors

ROOT = Path(__file__).resolve().parents[1]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_digits_vae_is_saved_with_latents_of_sigma_datas_spread_and_its_floor(tmp_path):
    script = load(ROOT / "scripts" / "train_digits_vae.py", "train_digits_vae")
    metrics = script.main(["--output_dir", str(tmp_path / "vae"), "--steps", "3"])
    vae = AutoencoderKL.from_pretrained(tmp_path / "vae")
    assert (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert (vae.config.in_channels, vae.config.latent_channels, len(vae.config.block_out_channels)) == (1, 4, 2)
    train, _ = digits_tensors(8, "train")
    with torch.no_grad():
        means = vae.encode(train * 2 - 1).latent_dist.mode()
    assert means.shape == (1347, 4, 4, 4)
    assert vae.config.scaling_factor == float(0.5 / means.std())  # the scaled latents' spread is sigma_data
    assert json.loads((tmp_path / "vae" / "vae_metrics.json").read_text()) == metrics
    assert metrics["steps"] == 3 and metrics["reconstruction_fid"] > 0 and 0 < metrics["held_out_mse"] < 1


def test_latent_benchmark_runs_are_keyed_by_their_vae(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = load(ROOT / "benchmarks" / "digits_act_vs_ct.py", "digits_act_vs_ct")
    vae = tmp_path / "vae"
    vae.mkdir()
    (vae / "config.json").write_text("{}")
    (vae / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    flags = ["--preset", "digits", "--vae_name_or_path", str(vae)]
    key = bench.run_key(flags, str(vae))
    assert key.startswith(bench.run_key(flags)) and " | VAE " in key
    (vae / "diffusion_pytorch_model.safetensors").write_bytes(b"other weights")
    assert bench.run_key(flags, str(vae)) != key  # retrained VAE, same folder: the runs are trained again
    assert "FIDs score the decoded samples." in bench.vae_sentence(str(vae))
    (vae / "vae_metrics.json").write_text(json.dumps(
        {"parameters": 657221, "steps": 3000, "held_out_mse": 0.001, "reconstruction_fid": 1.5}
    ))  # fmt: skip
    assert "score FID 1.50 against them" in bench.vae_sentence(str(vae))
