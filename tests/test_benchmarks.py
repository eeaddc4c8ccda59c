# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The benchmark scripts run end to end (in their --quick mode) and write their section of the report."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sampling
from _report import write_section


def test_write_section_replaces_only_its_own_block(tmp_path):
    path = tmp_path / "bench.md"
    write_section(path, "a", "first A")
    write_section(path, "b", "B")
    write_section(path, "a", "second A")
    text = path.read_text()
    assert "second A" in text and "first A" not in text and "B" in text
    assert text.index("second A") < text.index("\nB\n")


def test_bench_sampling_quick(tmp_path):
    output = tmp_path / "bench.md"
    bench_sampling.main(["--quick", "--output", str(output)])
    rows = [line for line in output.read_text().splitlines() if line.startswith("| tiny")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "bare UNet loop",
        "ACTPipeline",
        "diffusers ConsistencyModelPipeline",
    ]
    for row in rows:
        images_per_s, ratio = (float(cell) for cell in row.split("|")[3:5])
        assert images_per_s > 0 and ratio > 0
    assert re.search(r"\| bare UNet loop \| [\d.]+ \| 1\.000 \|", rows[0])


def test_bench_throughput_quick(tmp_path):
    import bench_throughput

    output = tmp_path / "bench.md"
    bench_throughput.main(["--quick", "--output", str(output)])
    rows = [line.split("|")[1:-1] for line in output.read_text().splitlines() if line.startswith("| cifar10 |")]
    steps = [(r[1].strip(), r[2].strip()) for r in rows]
    assert steps == [
        ("CT", "fp32"),
        ("CT", "bf16"),
        ("ACT", "fp32"),
        ("ACT", "bf16"),
        ("1-step sampling", "float32"),
        ("1-step sampling", "bfloat16"),
    ]
    for row in rows[:4]:
        assert float(row[3]) > 0 and float(row[5]) > 0 and row[6].strip().endswith("%")
    # an ACT iteration does more work than a CT one
    assert float(rows[2][5]) > float(rows[0][5])


def test_the_lpips_stand_in_costs_what_vgg16_costs(tmp_path):
    """bench_training_script times LPIPS with random weights: the stand-in must have VGG16's convolutions, whose
    cost at 224x224 is 15.35 GMACs per image (torchvision's table: 15.47 GFLOPS for VGG16, of which its classifier
    takes 0.12)."""
    import textwrap

    import bench_training_script
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    (tmp_path / "lpips").mkdir()
    (tmp_path / "lpips" / "__init__.py").write_text(textwrap.dedent(bench_training_script.FAKE_LPIPS))
    sys.path.insert(0, str(tmp_path))
    try:
        import lpips

        network = lpips.LPIPS(net="vgg", verbose=False)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lpips", None)
    convolutions = [m for m in network.layers.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convolutions] == [64, 64, 128, 128, 256, 256, 256] + [512] * 6
    a, b = torch.rand(1, 3, 224, 224) * 2 - 1, torch.rand(1, 3, 224, 224) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        distance = network(a, b)
    assert distance.shape == (1, 1, 1, 1)
    macs_per_image = counter.get_total_flops() / 2 / 2  # two images; a MAC is two FLOPs
    assert macs_per_image == pytest.approx(15.35e9, rel=0.01)


def test_bench_training_script_rows_and_errors():
    import bench_training_script as bench

    assert bench.row_flags("cifar10+huber+bf16") == (
        "cifar10",
        ["--loss_type", "pseudo_huber", "--mixed_precision", "bf16"],
    )
    with pytest.raises(SystemExit, match=r"unknown option\(s\) \['fp8'\]"):
        bench.row_flags("cifar10+fp8")
    failed = bench.table_row("cifar10", "baseline", [{"error": "timed out after 120 s"}], 160, 80, 1.0, 1.0)
    assert failed == "| cifar10 | baseline | failed: timed out after 120 s | | | | | |"
    runs = [{"windows": [100.0, 160.0, 320.0], "peak_gib": 2.5, "shares": {"act.generator": 0.6, "other": 0.4}}]
    row = bench.table_row("cifar10", "this tree", runs, loaded=160, batch=80, flops=1e12, peak=1e14)
    # first window dropped; median 240 images/s over 160 loaded per iteration = 1.5 it/s, 120 generator images/s
    assert row == "| cifar10 | this tree | 1.5 | 120 | 2.50 | 1.5% | 2 | generator 60%, other 40% |"


@pytest.mark.slow
def test_bench_training_script_times_the_digits_preset(tmp_path):
    import bench_training_script

    output = tmp_path / "bench.md"
    bench_training_script.main(["--rows", "digits", "--iterations", "32", "--repeats", "1", "--profile",
                                "--output", str(output)])  # fmt: skip
    rows = [line.split("|")[1:-1] for line in output.read_text().splitlines() if line.startswith("| digits |")]
    assert len(rows) == 1
    its, images, memory, mfu, windows, profile = (cell.strip() for cell in rows[0][2:])
    assert float(its) > 0 and float(images) == pytest.approx(32 * float(its), rel=0.02)
    assert memory == "n/a" and mfu.endswith("%") and windows == "1"
    shares = dict(part.rsplit(" ", 1) for part in profile.split(", "))
    assert {"generator", "discriminator", "discriminator_r1"} <= set(shares)
    assert 95 <= sum(float(v.rstrip("%")) for v in shares.values()) <= 105


def test_digits_sweep_table_ranks_settings_and_pairs_them_with_ct():
    import digits_sweep

    def seeds(*fids):
        return {str(i): {"evals": [{"fid": f + 10, "class_accuracy": 0.5}, {"fid": f, "class_accuracy": 0.9}]}
                for i, f in enumerate(fids)}  # fmt: skip

    runs = {"gp0.5": seeds(50, 52, 54), "ct": seeds(60, 61, 65), "gp0.1": seeds(40, 44, 42)}
    lines = digits_sweep.table(runs)
    assert lines[2] == "| CT (no discriminator) | `--adv_weight 0` | 62.00 ± 2.65 (60.00, 61.00, 65.00) | " \
        "62.00 ± 2.65 (60.00, 61.00, 65.00) |  |  | 0.900 |"  # fmt: skip
    # the preset first (lowest mean), paired differences -20, -17, -23: mean -20, se sqrt(3), t = -11.55
    assert lines[3].startswith("| R1 weight 0.1 (the preset) | (none) | 42.00 ± 2.00 (40.00, 44.00, 42.00) |")
    assert "| -20.00, t = -11.55 |  | 0.900 |" in lines[3]
    one = digits_sweep.table({"ct": seeds(60, 61, 65), "ema-constant": {"1": seeds(70, 50)["0"]}})
    assert "| +9.00, one seed |" in one[3]  # paired with CT's seed 1 (61) only
    assert lines[4].startswith("| R1 weight 0.5 | `--gp_weight 0.5` | 52.00 ± 2.00")
    # paired with CT: -10, -9, -11 (t = -17.32); with the preset: +10, +8, +12 -> mean +10, se 2 / sqrt(3), t = 8.66
    assert lines[4].endswith("| -10.00, t = -17.32 | +10.00, t = 8.66 | 0.900 |")
    assert sorted(digits_sweep.SCREEN) == sorted(set(digits_sweep.SETTINGS) - {"ema-constant", "bf16"})
