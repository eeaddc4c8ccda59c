# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The benchmark scripts run end to end (in their --quick mode) and write their section of the report."""

import re
import sys
from pathlib import Path

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
