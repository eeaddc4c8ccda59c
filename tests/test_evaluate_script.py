# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""scripts/evaluate.py and the benchmark of the paper's claim, end to end and offline."""

import argparse
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
from conftest import tiny_unet

from diffusers_act import ACTPipeline, ConsistencyACTScheduler

ROOT = Path(__file__).resolve().parents[1]


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


evaluate = load(ROOT / "scripts" / "evaluate.py", "evaluate_script")


def test_evaluate_pipeline_then_saved_samples_against_saved_statistics(tmp_path):
    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=16, num_class_embeds=10)
    ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler()).save_pretrained(tmp_path / "pipe")
    first = evaluate.main([
        "--pipeline", str(tmp_path / "pipe"), "--num_samples", "64", "--batch_size", "32", "--reference", "digits",
        "--feature_extractor", "digits", "--save_samples", str(tmp_path / "samples.npz"),
        "--save_reference_stats", str(tmp_path / "ref.npz"), "--output", str(tmp_path / "m.json"),
    ])  # fmt: skip
    written = json.loads((tmp_path / "m.json").read_text())
    assert written == first and first["num_samples"] == 64
    for key in ("fid", "precision", "recall", "label_coverage", "class_accuracy", "digits_classifier_score"):
        assert math.isfinite(first[key]), key
    assert "inception_score" not in first  # not Inception's classes: named for the digits classifier
    assert first["fid"] > 100  # an untrained UNet makes noise, far from digits

    from_stats = evaluate.main([
        "--samples", str(tmp_path / "samples.npz"), "--reference", str(tmp_path / "ref.npz"),
        "--feature_extractor", "digits", "--output", str(tmp_path / "m2.json"),
    ])  # fmt: skip
    from_images = evaluate.main([
        "--samples", str(tmp_path / "samples.npz"), "--reference", "digits",
        "--feature_extractor", "digits", "--output", str(tmp_path / "m3.json"),
    ])  # fmt: skip
    assert from_stats["fid"] == pytest.approx(from_images["fid"], rel=1e-9)  # statistics path == images path
    assert "precision" not in from_stats and "precision" in from_images
    assert from_images["fid"] == pytest.approx(first["fid"], rel=1e-3)  # the samples were saved as uint8


@pytest.mark.slow
def test_benchmark_runs_end_to_end_over_seeds_and_reuses_finished_runs(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = load(ROOT / "benchmarks" / "digits_act_vs_ct.py", "digits_act_vs_ct")
    argv = [
        "--iterations", "2", "--eval_every", "1", "--fid_num_samples", "20", "--batch_size", "4", "--seeds", "0,1",
        "--output", str(tmp_path / "b.md"), "--images_dir", str(tmp_path / "images"),
        "--workdir", str(tmp_path / "work"), "--results_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    body = bench.main(argv)
    rows = [line for line in body.splitlines() if line.startswith("| improved |")]
    assert [row.split("|")[2].strip() for row in rows] == ["CT, batch 4", "ACT, batch 4", "CT, batch 24"]
    assert "paired over 2 seeds: ACT minus CT at batch 4" in body and "Held-out reference" in body
    assert (tmp_path / "images" / "digits_act_vs_ct_fid.png").stat().st_size > 0
    assert (tmp_path / "images" / "digits_improved-act-b4-s1.png").is_file()
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    runs = results["results"]["improved"]["ACT, batch 4"]["seeds"]
    assert [e["step"] for e in runs["0"]["evals"]] == [1, 2]
    assert all(math.isfinite(e["fid"]) for e in runs["1"]["evals"])
    assert runs["0"]["evals"][-1]["fid"] != runs["1"]["evals"][-1]["fid"]  # the seed reaches training
    # the table's cells are the seeds' values: mean ± SD (per seed)
    finals = [runs[seed]["evals"][-1]["fid"] for seed in ("0", "1")]
    assert f"({finals[0]:.2f}, {finals[1]:.2f})" in rows[1]
    # a second invocation reuses every finished run (same flags) and writes the same report
    capsys.readouterr()
    assert bench.main(argv).split("| recipe |")[1] == body.split("| recipe |")[1]
    assert capsys.readouterr().out.count(": reused ") == 6
    # --cached_only trains nothing: a missing seed of CT at 6B is named, and its comparison left undecided
    (tmp_path / "runs" / "improved-ct-b24-s1.json").unlink()
    cached = bench.main([*argv, "--cached_only"])
    out = capsys.readouterr().out
    assert out.count(": reused ") == 5 and "seed 1: not run (--cached_only)" in out
    assert "- CT, batch 24: seed(s) 1 not run yet" in cached and "CT at batch 24 has one seed" in cached
    assert not (tmp_path / "runs" / "improved-ct-b24-s1.json").exists()
    # a run with no finished seed at all cannot be compared: a clear error, nothing written
    with pytest.raises(SystemExit):
        bench.main([*argv[:-1], str(tmp_path / "empty"), "--cached_only"])
    error = capsys.readouterr().err
    assert "--cached_only: no finished seed of ['improved CT, batch 4', 'improved ACT, batch 4'" in error
    with pytest.raises(SystemExit):
        bench.main([*argv, "--runs", "act,gan"])
    assert "unknown run(s) ['gan']" in capsys.readouterr().err


def test_benchmark_cache_key_changes_with_the_digits_preset(monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = load(ROOT / "benchmarks" / "digits_act_vs_ct.py", "digits_act_vs_ct")
    flags = ["--preset", "digits", "--seed", "0"]
    key = bench.run_key(flags)
    assert bench.run_key(flags) == key and bench.run_key(["--preset", "digits", "--seed", "1"]) != key
    # a finished run of an earlier preset (another UNet, another setting) is not reused
    monkeypatch.setitem(bench.UNET_PRESETS, "digits", {**bench.UNET_PRESETS["digits"], "block_out_channels": (8, 8)})
    assert bench.run_key(flags) != key
    monkeypatch.undo()
    monkeypatch.setitem(bench.PRESETS, "digits", {**bench.PRESETS["digits"], "gp_weight": 5.0})
    assert bench.run_key(flags) != key


def final_fids(run):
    """The final FID of each seed of a benchmark run."""
    return [seed["evals"][-1]["fid"] for seed in run["seeds"].values()]


def markdown_table(text, first_column):
    """The rows, as {column: cell}, of the Markdown table in `text` whose first column is `first_column`."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    start = next(i for i, line in enumerate(lines) if line.split("|")[1].strip() == first_column)
    columns = [cell.strip() for cell in lines[start].split("|")[1:-1]]
    rows = []
    for line in lines[start + 2 :]:
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) != len(columns):
            break
        rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def test_benchmark_report_states_each_target_and_reused_runs():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = load(ROOT / "benchmarks" / "digits_act_vs_ct.py", "digits_act_vs_ct")

    def run(key, *fids):
        scores = {"precision": 0.5, "recall": 0.8, "class_accuracy": 0.9}
        seeds = {
            str(i): {"evals": [{"fid": f, **scores}], "seconds": 60.0, "samples": f"{key}.png"}
            for i, f in enumerate(fids)
        }
        return {"seeds": seeds, "key": key}

    # the measured digits runs: ACT beats CT at batch 32 in every seed but is not within one SD of CT at 192
    results = {"improved": {"CT, batch 32": run("ct_small", 29.71, 40.80, 30.89),
                            "ACT, batch 32": run("act", 23.54, 29.37, 23.43),
                            "CT, batch 192": run("ct_large", 22.87, 22.44, 24.72)}}  # fmt: skip
    args = argparse.Namespace(argv=["--cached_only"], seeds="0,1,2", batch_size=32)
    floor = {"fid": 15.6, "precision": 0.78, "recall": 0.73, "training_digits_fid": 1.5}
    body = bench.report(args, results, floor, 0.96, 2000, 250, 1000, total_seconds=0.01)
    assert "every run was reused from earlier invocations" in body
    # the table's cells are the seeds' values: mean ± SD (per seed), for each run and metric
    table = markdown_table(body, "recipe")
    assert [(row["recipe"], row["run"]) for row in table] == [("improved", name) for name in results["improved"]]
    for row in table:
        fids = final_fids(results["improved"][row["run"]])
        stats = bench.summarise(fids)
        mean, sd, *per_seed = map(float, re.findall(r"[\d.]+", row["final FID"]))
        assert (mean, sd) == pytest.approx((stats["mean"], stats["sd"]), abs=0.005) and per_seed == fids
        assert row["best FID"] == row["final FID"]  # one evaluation per seed
        assert float(row["precision"].split()[0]) == 0.5 and float(row["class accuracy"].split()[0]) == 0.9
    # the verdicts: ACT beats CT at batch 32 in every seed, but is not within one SD of CT at batch 192 (mean ± SD)
    text, large = " ".join(body.split()), bench.summarise(final_fids(results["improved"]["CT, batch 192"]))
    assert f"CT at batch 192 ({large['mean']:.2f} ± {large['sd']:.2f}) or better: NO." in text
    verdicts = re.search(r"Targets at batch 32: (met|NOT met); against CT at batch 192: (met|NOT met)\.", text)
    assert verdicts.groups() == ("met", "NOT met")
    trained = bench.report(args, results, floor, 0.96, 2000, 250, 1000, total_seconds=600)
    assert "the runs trained by this invocation took 10.0 min on" in trained


def test_benchmark_statistics_and_targets():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = load(ROOT / "benchmarks" / "digits_act_vs_ct.py", "digits_act_vs_ct")
    stats = bench.summarise([1.0, 2.0, 6.0])
    assert stats == {"mean": 3.0, "sd": pytest.approx(math.sqrt(7.0)), "values": [1.0, 2.0, 6.0]}
    # differences -2, -4, -3: mean -3, SD 1, standard error 1 / sqrt(3), t = -3 sqrt(3)
    paired = bench.paired_t([8.0, 6.0, 7.0], [10.0, 10.0, 10.0])
    assert paired["mean"] == -3.0 and paired["se"] == pytest.approx(1 / math.sqrt(3))
    assert paired["t"] == pytest.approx(-3 * math.sqrt(3)) and paired["n"] == 3
    met = bench.targets([8.0, 6.0, 7.0], [10.0, 10.0, 10.0], [7.0, 8.0, 9.0])  # CT large 8 ± 1: ACT 7 is better
    assert met["every_seed"] and met["two_standard_errors"] and met["within_one_sd_of_large"]
    # one seed where CT wins breaks "every seed"; ACT far above CT large fails the last target
    missed = bench.targets([8.0, 11.0, 7.0], [10.0, 10.0, 10.0], [5.0, 5.5, 6.0])
    assert not missed["every_seed"] and not missed["two_standard_errors"] and not missed["within_one_sd_of_large"]
    assert math.isnan(bench.paired_t([1.0], [2.0])["t"])
    # one seed of CT at 6B has no standard deviation: that target is left undecided, not passed or failed
    assert bench.targets([8.0, 6.0, 7.0], [10.0, 10.0, 10.0], [7.5])["within_one_sd_of_large"] is None
    assert bench._cell([23.54]) == "23.54 (one seed)"


def test_guide_images_script(tmp_path):
    make_images = load(ROOT / "scripts" / "make_guide_images.py", "make_guide_images")
    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=16, num_class_embeds=10)
    ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler()).save_pretrained(tmp_path / "model")
    make_images.main(["--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "images")])
    from PIL import Image

    assert Image.open(tmp_path / "images" / "quickstart_multistep.png").size == (10 * 18 * 4, 3 * 18 * 4)
    assert Image.open(tmp_path / "images" / "quickstart_inpainting.png").size == (10 * 18 * 4, 3 * 18 * 4)


@pytest.mark.slow
def test_benchmark_subset_of_runs_over_seeds_writes_summary(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = load(ROOT / "benchmarks" / "digits_act_vs_ct.py", "digits_act_vs_ct")
    summary_path = tmp_path / "summary.json"
    bench.main([
        "--iterations", "2", "--eval_every", "2", "--fid_num_samples", "20", "--batch_size", "4",
        "--images_dir", str(tmp_path / "images"), "--runs", "ct_small", "--seeds", "0,5",
        "--workdir", str(tmp_path / "work"), "--output", str(tmp_path / "not_written.md"),
        "--summary_json", str(summary_path),
    ])  # fmt: skip
    summary = json.loads(summary_path.read_text())
    seeds = summary["results"]["improved"]["CT, batch 4"]["seeds"]
    assert summary["seeds"] == [0, 5] and list(seeds) == ["0", "5"]
    assert seeds["0"]["evals"][-1]["fid"] != seeds["5"]["evals"][-1]["fid"]  # the seed reaches training
    assert "--seed 5" in seeds["5"]["flags"] and "--adv_weight 0.0" in seeds["5"]["flags"]
    assert not (tmp_path / "not_written.md").exists()  # without both ACT and CT, no report


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if sampling or the digits classifier's training starts."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the inputs were checked")

    monkeypatch.setattr(evaluate, "generate_samples", forbidden)
    monkeypatch.setattr(evaluate, "train_digits_classifier", forbidden)


def write_npz(path, **arrays):
    import numpy as np

    np.savez(path, **arrays)
    return str(path)


def test_wrong_inputs_are_errors_before_any_work(tmp_path, no_work):
    import numpy as np

    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=16, num_class_embeds=10)
    ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler()).save_pretrained(tmp_path / "pipe")
    rgb = ACTPipeline(unet=tiny_unet(sample_size=16), scheduler=ConsistencyACTScheduler())
    rgb.save_pretrained(tmp_path / "rgb")
    grey16 = np.zeros((4, 16, 16, 1), np.uint8)
    cases = [
        (["--pipeline", str(tmp_path / "pipe"), "--reference", str(tmp_path / "missing.npz")], "no such file"),
        (
            ["--pipeline", str(tmp_path / "pipe"), "--feature_extractor", "digits",
             "--reference", write_npz(tmp_path / "nan.npz", mu=np.full(64, np.nan), sigma=np.eye(64))],
            "NaN or infinite",
        ),
        (
            ["--pipeline", str(tmp_path / "pipe"), "--feature_extractor", "digits",
             "--reference", write_npz(tmp_path / "inception.npz", mu=np.zeros(2048), sigma=np.eye(2048))],
            "2048-d features, but --feature_extractor digits makes 64-d",
        ),
        (
            ["--pipeline", str(tmp_path / "pipe"), "--feature_extractor", "digits",
             "--reference", write_npz(tmp_path / "r32.npz", arr_0=np.zeros((4, 32, 32, 1), np.uint8))],
            "samples are 16x16 but --reference .* holds 32x32 images",
        ),
        (
            ["--samples", write_npz(tmp_path / "float.npz", arr_0=np.full((4, 16, 16, 1), 0.5, np.float32)),
             "--reference", "digits", "--feature_extractor", "digits"],
            "float32 images; save them as uint8",
        ),
        (
            ["--pipeline", str(tmp_path / "rgb"), "--reference", write_npz(tmp_path / "g.npz", arr_0=grey16),
             "--feature_extractor", "digits"],
            "takes grey images; the samples have 3 channels",
        ),
    ]  # fmt: skip
    for argv, message in cases:
        with pytest.raises(ValueError, match=message):
            evaluate.main([*argv, "--output", str(tmp_path / "m.json")])
    assert not (tmp_path / "m.json").exists()


def test_evaluate_takes_a_training_checkpoint(tmp_path):
    from conftest import reset_accelerator_state

    train_act = load(ROOT / "examples" / "train_act" / "train_act.py", "train_act_for_evaluate")
    reset_accelerator_state()
    train_act.main(["--output_dir", str(tmp_path / "run"), "--max_train_steps", "1", "--checkpointing_steps", "1",
                    "--report_to", "none", "--max_train_samples", "32", "--train_batch_size", "8"])  # fmt: skip
    reset_accelerator_state()
    result = evaluate.main([
        "--pipeline", str(tmp_path / "run" / "checkpoint-1"), "--num_samples", "32", "--reference", "digits",
        "--feature_extractor", "digits", "--output", str(tmp_path / "m.json"),
    ])  # fmt: skip
    assert result["num_samples"] == 32 and math.isfinite(result["fid"])


def test_a_missing_inception_extractor_stops_before_sampling(tmp_path, monkeypatch, no_work):
    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=16, num_class_embeds=10)
    ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler()).save_pretrained(tmp_path / "pipe")

    def missing(*args, **kwargs):
        raise ImportError("Inception features need torch-fidelity: pip install '.[metrics]'")

    monkeypatch.setattr(evaluate, "InceptionV3Features", missing)
    with pytest.raises(ImportError, match="torch-fidelity"):  # not the AssertionError of `no_work`: nothing sampled
        evaluate.main(["--pipeline", str(tmp_path / "pipe"), "--reference", "digits", "--output", str(tmp_path / "m")])


def test_class_accuracy_compares_the_digits_the_class_names_ask_for():
    import torch

    unet = tiny_unet(in_channels=1, out_channels=1, sample_size=16, num_class_embeds=3)
    reversed_names = ACTPipeline(unet, ConsistencyACTScheduler(), id2label={0: "9", 1: "8", 2: "7"})
    assert evaluate.digit_labels(reversed_names, torch.tensor([0, 2, 1])).tolist() == [9, 7, 8]
    other = ACTPipeline(unet, ConsistencyACTScheduler(), id2label={0: "cat", 1: "8", 2: "7"})
    assert evaluate.digit_labels(other, torch.tensor([0, 1])) is None
    unnamed = ACTPipeline(unet, ConsistencyACTScheduler())
    assert evaluate.digit_labels(unnamed, torch.tensor([0, 1])).tolist() == [0, 1]
