# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The benchmark scripts run end to end (in their --quick mode) and write their section of the report."""

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sampling
import bench_throughput
import probe_discriminator
from _report import write_section

ROOT = Path(__file__).resolve().parents[1]


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


def test_bench_throughput_trainer_quick(tmp_path):
    output = tmp_path / "bench.md"
    bench_throughput.main(["--quick", "--output", str(output)])
    assert "<!-- bench_throughput_cpu:start -->" in output.read_text()
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
    for row in rows[4:]:
        assert float(row[3]) > 0
    # an ACT iteration does more work than a CT one
    assert float(rows[2][5]) > float(rows[0][5])


def test_bench_throughput_refuses_the_other_modes_flags(capsys):
    assert bench_throughput.parse_args(["--mode", "script", "--rows", "digits", "--profile"]).profile
    with pytest.raises(SystemExit):
        bench_throughput.parse_args(["--rows", "digits"])  # --mode trainer is the default
    assert "--rows not used by --mode trainer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_throughput.parse_args(["--mode", "script", "--variants", "fp32", "--steps", "4"])
    assert "--steps, --variants not used by --mode script" in capsys.readouterr().err


def test_the_lpips_stand_in_costs_what_vgg16_costs(tmp_path):
    """`--mode script` times LPIPS with random weights: the stand-in must have VGG16's convolutions, whose cost at
    224x224 is 15.35 GMACs per image (torchvision's table: 15.47 GFLOPS for VGG16, of which its classifier takes
    0.12)."""
    import textwrap

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    (tmp_path / "lpips").mkdir()
    (tmp_path / "lpips" / "__init__.py").write_text(textwrap.dedent(bench_throughput.FAKE_LPIPS))
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


def test_bench_throughput_script_rows_and_errors():
    assert bench_throughput.row_flags("cifar10+huber+bf16") == (
        "cifar10",
        ["--loss_type", "pseudo_huber", "--mixed_precision", "bf16"],
    )
    with pytest.raises(SystemExit, match=r"unknown option\(s\) \['fp8'\]"):
        bench_throughput.row_flags("cifar10+fp8")
    failed = bench_throughput.table_row("cifar10", "baseline", [{"error": "timed out after 120 s"}], 160, 80, 1.0, 1.0)
    assert failed == "| cifar10 | baseline | failed: timed out after 120 s | | | | | |"
    runs = [{"windows": [100.0, 160.0, 320.0], "peak_gib": 2.5, "shares": {"act.generator": 0.6, "other": 0.4}}]
    row = bench_throughput.table_row("cifar10", "this tree", runs, loaded=160, batch=80, flops=1e12, peak=1e14)
    # first window dropped; median 240 images/s over 160 loaded per iteration = 1.5 it/s, 120 generator images/s
    assert row == "| cifar10 | this tree | 1.5 | 120 | 2.50 | 1.5% | 2 | generator 60%, other 40% |"


@pytest.mark.slow
def test_bench_throughput_script_quick_times_the_digits_preset(tmp_path):
    output = tmp_path / "bench.md"
    bench_throughput.main(["--mode", "script", "--quick", "--profile", "--output", str(output)])
    assert "<!-- bench_training_script_cpu:start -->" in output.read_text()
    rows = [line.split("|")[1:-1] for line in output.read_text().splitlines() if line.startswith("| digits |")]
    assert len(rows) == 1
    its, images, memory, mfu, windows, profile = (cell.strip() for cell in rows[0][2:])
    assert float(its) > 0 and float(images) == pytest.approx(32 * float(its), rel=0.02)
    assert memory == "n/a" and 0 < float(mfu.rstrip("%")) < 100 and windows == "1"
    shares = dict(part.rsplit(" ", 1) for part in profile.split(", "))
    assert {"generator", "discriminator", "discriminator_r1"} <= set(shares)
    assert 95 <= sum(float(v.rstrip("%")) for v in shares.values()) <= 105


def saved_digits_run(path: Path, discriminator: bool) -> Path:
    """A tiny untrained stand-in for a digits run's output directory (the layout `train_act.py` saves)."""
    from conftest import tiny_unet

    from diffusers_act import ACTDiscriminator, ACTPipeline, ConsistencyACTScheduler

    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=16, num_class_embeds=10)
    ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler()).save_pretrained(path)
    if discriminator:
        ACTDiscriminator.from_unet_config(unet.config).save_pretrained(path / "discriminator")
    (path / "training_summary.json").write_text(json.dumps({"final_num_timesteps": 11}))
    return path


def test_probe_discriminator_trained(tmp_path):
    import torch

    assert probe_discriminator.roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 3.0])) == 0.5
    assert probe_discriminator.roc_auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert probe_discriminator.roc_auc(torch.tensor([1.0]), torch.tensor([1.0])) == 0.5  # ties count half

    run = saved_digits_run(tmp_path / "run", discriminator=True)
    result = probe_discriminator.probe(run, "lognormal", num_images=40)
    rows = result["rows"]
    assert len(rows) == 11 and rows[-1]["bin"].startswith("1-step")
    assert sum(r["update_share"] for r in rows[:-1]) == pytest.approx(1.0, abs=1e-12)  # the bins cover the grid
    uniform = probe_discriminator.probe(run, "uniform", num_images=40)["rows"]
    # N = 11: 10 student times t_1..t_10, each 1/10 of the updates
    assert sum(r["update_share"] for r in uniform[:-1]) == pytest.approx(1.0, abs=1e-12)
    assert all(r["update_share"] * 10 == pytest.approx(round(r["update_share"] * 10)) for r in uniform[:-1])
    assert all(0 <= r["auc"] <= 1 for r in rows)
    # the boundary condition: at t ~ sigma_min the generator hands back (almost) the image it was given
    assert rows[0]["distance"] < 0.02 < rows[-2]["distance"]
    assert set(result["adversarial_gradient_share"]) == {"trained", "fresh"}
    assert all(share > 0 for share in result["adversarial_gradient_share"].values())
    with pytest.raises(SystemExit):
        probe_discriminator.main(["trained", "--run", str(tmp_path)])  # no unet/ etc.
    with pytest.raises(SystemExit):  # `capacity` needs no discriminator/, `trained` does
        probe_discriminator.main(["trained", "--run", str(saved_digits_run(tmp_path / "no_d", discriminator=False))])


def test_probe_discriminator_needs_a_sub_command_and_valid_settings(tmp_path, capsys):
    run = saved_digits_run(tmp_path / "run", discriminator=False)
    with pytest.raises(SystemExit):
        probe_discriminator.parse_args(["--run", str(run)])
    args = probe_discriminator.parse_args(["capacity", "--run", str(run), "--setting", "80,0.5"])
    assert args.setting == [("80", 0.5)] and args.steps == 1200
    with pytest.raises(SystemExit):
        probe_discriminator.parse_args(["capacity", "--run", str(run), "--setting", "often,5"])
    assert "times must be lognormal, uniform or a number" in capsys.readouterr().err


@pytest.mark.slow
def test_probe_discriminator_capacity_learns_an_easy_case(tmp_path):
    run = saved_digits_run(tmp_path / "run", discriminator=False)
    # an untrained generator's one-step samples are far from digits: without R1, D separates them quickly
    body = probe_discriminator.main([
        "capacity", "--run", str(run), "--setting", "80,0", "--setting", "lognormal,5", "--steps", "40",
        "--learning_rate", "2e-3", "--output", str(tmp_path / "c.md"),
    ])  # fmt: skip
    rows = [line.split("|")[1:-1] for line in body.splitlines() if line.startswith(("| 80 |", "| lognormal |"))]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [("80", "0"), ("lognormal", "5")]
    aucs = [[float(cell) for cell in r[2:]] for r in rows]
    assert all(len(row) == 4 and all(0 <= a <= 1 for a in row) for row in aucs)
    assert aucs[0][-1] > 0.9  # t = 80
    assert "discriminator_capacity:start" in (tmp_path / "c.md").read_text()


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


DOCUMENTS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_docs_name_benchmark_files_that_exist():
    named = {name for path in DOCUMENTS for name in re.findall(r"benchmarks/(\w+\.(?:py|sh))", path.read_text())}
    # benchmarks/README.md's tables name the files without the folder
    named |= set(re.findall(r"^\| `(\w+\.(?:py|sh))", (ROOT / "benchmarks" / "README.md").read_text(), flags=re.M))
    assert {"bench_throughput.py", "probe_discriminator.py", "gpu_check.sh"} <= named
    assert sorted(name for name in named if not (ROOT / "benchmarks" / name).is_file()) == []


def test_the_docs_commands_of_the_merged_benchmarks_still_parse():
    """The commands quoted beside measured numbers still work with the merged scripts."""
    commands = [
        shlex.split(" ".join(command.split()))
        for path in DOCUMENTS
        for command in re.findall(r"`python benchmarks/(\w+\.py [^`]*)`", path.read_text())
    ]
    throughput = [words[1:] for words in commands if words[0] == "bench_throughput.py"]
    assert ["--mode", "script", "--rows", "digits,digits+loader", "--iterations", "32", "--repeats", "1",
            "--profile"] in throughput  # fmt: skip
    for args in throughput:
        bench_throughput.parse_args(args)
    # the diagnostics' commands name run directories by placeholders: check their sub-commands only
    probes = [words[1] for words in commands if words[0] == "probe_discriminator.py"]
    assert {"trained", "capacity"} == set(probes)
