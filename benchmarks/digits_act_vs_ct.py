# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Does ACT beat consistency training at a small batch? The paper's claim, tested on scikit-learn's digits on CPU.

Three runs per recipe, all `examples/train_act/train_act.py --preset digits` (run as a subprocess, as a user would),
on the first 1,347 digits at the preset's resolution (their native 8x8), for the same number of iterations:
consistency training (CT) at batch B, ACT at batch B, and CT at batch 6B; the runs differ from the preset only in
`--train_batch_size` and `--adv_weight 0`. Two recipes:

- `improved`: the preset itself: doubling N(k) (s0=10, s1=160), teacher = current weights, log-normal n,
  1/(t_{n+1} - t_n) weight divided by its mean over n (`--normalize_loss_weight`, so that the consistency loss keeps
  the unweighted scale the paper tuned lambda against; without it the mean weight, 8 at N=11 and 141 at N=161, would
  make lambda = 0.3 8-141x weaker), an evaluation EMA (0.999) that is sampled.
- `paper`: the preset with the ACT paper's CT curricula instead: N(k) of Consistency Models (s0=2, s1=150), EMA
  target mu0=0.9 (sampled at the end), uniform n, unweighted loss; lambda = 0.3 as the paper's CIFAR-10.

Both use the preset's pseudo-Huber distance (LPIPS is meaningless on 8x8 grey digits and needs downloaded VGG
weights) and lr 5e-4 for G and D (RAdam, betas (0, 0.99)). Every `--eval_every` iterations the run's sampled network
makes `--fid_num_samples` one-step samples, scored in the feature space of a small digits classifier at the preset's
resolution, as the runs score themselves (trained with a fixed seed; its held-out accuracy is reported): FID against
the 1,347 training digits, improved precision/recall, the effective share of the ten digits among the samples (label
coverage; 0.1 = one digit only) and the share classified as the digit asked for. Two references: the 450 held-out
digits against the training digits (what new digits from the same source score) and `--fid_num_samples` of the
training digits themselves (what reproducing the training set scores). The first is not a lower bound: a model that
reproduces training digits scores below it.

Every run is repeated over `--seeds` (0, 1, 2 by default); the report gives, per run, the mean, standard deviation
and per-seed values of the final and best FID, precision, recall and class accuracy; a paired comparison of ACT and
CT at the same batch and seed (mean difference and its t statistic), and whether the targets hold: ACT below CT at
batch B in every seed and on the mean by more than two standard errors of the paired difference (t < -2), and ACT
at batch B within one standard deviation of CT at batch 6B, or better. Each finished run is kept as JSON in
`--results_dir`, keyed by its flags and a digest of the digits preset (so a changed preset is trained again), so an
interrupted benchmark resumes and more seeds can be added; `--cached_only` reports the finished runs without training.

    python benchmarks/digits_act_vs_ct.py                    # improved recipe, 3 seeds x 3 runs of 2,000 iterations
    python benchmarks/digits_act_vs_ct.py --quick            # 300 iterations (a screen of settings)
    python benchmarks/digits_act_vs_ct.py --quick --runs act --act_flags "--gp_weight 0.05"   # one setting
"""

import argparse
import hashlib
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import shown_command, write_section  # noqa: E402

from diffusers_act.evaluation import compute_metrics, digits_tensors, train_digits_classifier  # noqa: E402
from diffusers_act.presets import UNET_PRESETS  # noqa: E402
from diffusers_act.training.config import PRESETS  # noqa: E402

# Every run is `--preset digits` itself; `improved` adds nothing to it, `paper` swaps the preset's improved-CT
# options for the ACT paper's CT curricula (the only flags a recipe changes).
RECIPES = {
    "improved": [],
    "paper": ["--num_timesteps_schedule", "ct", "--s0", "2", "--s1", "150", "--mu0", "0.9",
              "--index_distribution", "uniform", "--loss_weighting", "none", "--no-normalize_loss_weight",
              "--no-use_ema"],
}  # fmt: skip


def run_training(output_dir: Path, flags: list[str]) -> float:
    """Runs the training script as a user would (a subprocess) and returns its wall time."""
    start = time.perf_counter()
    command = [sys.executable, str(ROOT / "examples" / "train_act" / "train_act.py"), "--output_dir", str(output_dir)]
    result = subprocess.run([*command, *flags], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"Training failed ({' '.join(flags)}):\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def evaluations(output_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (output_dir / "logs.jsonl").read_text().splitlines()]
    return [row for row in rows if "fid" in row]


def plot(results: dict, floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (recipe, runs) in zip(axes[0], results.items(), strict=True):
        for name, run in runs.items():  # the mean over seeds, and the range between the lowest and highest seed
            curves = [[e["fid"] for e in seed_run["evals"]] for seed_run in run["seeds"].values()]
            steps = [e["step"] for e in next(iter(run["seeds"].values()))["evals"]]
            per_step = list(zip(*curves, strict=True))
            line = ax.plot(steps, [statistics.fmean(v) for v in per_step], marker="o", label=name)[0]
            lows, highs = [min(v) for v in per_step], [max(v) for v in per_step]
            ax.fill_between(steps, lows, highs, color=line.get_color(), alpha=0.2)
        ax.axhline(floor, color="grey", linestyle="--", label="held-out real digits")
        ax.set_title(f"{recipe} recipe")
        ax.set_xlabel("iteration")
        ax.set_ylabel("FID (digits-classifier features, 1 step)")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarise(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": list(values)}  # fmt: skip


def paired_t(first: list[float], second: list[float]) -> dict:
    """Paired comparison of `first - second` over seeds: mean difference, its standard error and t = mean / se
    (`nan` with fewer than two pairs or no spread)."""
    differences = [a - b for a, b in zip(first, second, strict=True)]
    mean = statistics.fmean(differences)
    se = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else float("nan")
    t = mean / se if se and math.isfinite(se) else float("nan")
    return {"mean": mean, "se": se, "t": t, "n": len(differences)}


def targets(act: list[float], ct_small: list[float], ct_large: list[float] | None) -> dict:
    """The benchmark's targets on final FIDs per seed (lower is better)."""
    comparison = paired_t(act, ct_small)
    result = {
        "every_seed": all(a < c for a, c in zip(act, ct_small, strict=True)),
        "two_standard_errors": comparison["t"] < -2,
        "paired": comparison,
    }
    if ct_large:  # None: one seed of CT at 6B has no standard deviation, so this is not decided
        large = summarise(ct_large)
        within = statistics.fmean(act) <= large["mean"] + large["sd"]
        result["within_one_sd_of_large"] = within if len(ct_large) > 1 else None
    return result


def run_key(flags: list[str], vae: str | None = None) -> str:
    """A finished run's cache key: its flags and a digest of the digits preset they start from (its settings and its
    UNet), so that a run of an earlier preset is not reused; with `vae`, a digest of that VAE folder's files too."""
    preset = json.dumps([PRESETS["digits"], UNET_PRESETS["digits"]], sort_keys=True, default=list)
    key = f"{' '.join(flags)} | digits preset {hashlib.sha256(preset.encode()).hexdigest()[:12]}"
    if vae:
        digest = hashlib.sha256()
        for file in sorted(Path(vae).glob("*.*")):
            digest.update(file.name.encode() + file.read_bytes())
        key += f" | VAE {digest.hexdigest()[:12]}"
    return key


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 iterations, fewer samples")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32, help="B; the large-batch CT run uses 6B")
    parser.add_argument("--eval_every", type=int, default=None)
    parser.add_argument("--fid_num_samples", type=int, default=None)
    parser.add_argument("--recipes", default="improved", help="comma-separated: improved (the preset), paper")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (the classifier keeps seed 0)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--images_dir", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--workdir", default=None, help="where the runs are written (a temporary folder by default)")
    parser.add_argument("--results_dir", default=None, help="finished runs as JSON, reused when the flags match")
    parser.add_argument(
        "--runs",
        default="ct_small,act,ct_large",
        help="which runs (ct_small, act, ct_large); without ct_small and act, no comparison is reported",
    )
    parser.add_argument("--summary_json", default=None, help="also write every run's evaluations here as JSON")
    parser.add_argument(
        "--vae",
        default=None,
        help="train every run in the latent space of this AutoencoderKL folder (e.g. made by "
        "scripts/train_digits_vae.py); reported in its own section, digits_act_vs_ct_latent",
    )
    parser.add_argument(
        "--cached_only",
        action="store_true",
        help="train nothing: report the runs found in --results_dir and name the seeds that are missing",
    )
    parser.add_argument(
        "--run_flags",
        default="",
        help="extra train_act.py flags for every run (CT and ACT alike), e.g. --run_flags=--loss_type=cauchy",
    )
    parser.add_argument(
        "--act_flags",
        default="",
        help="extra train_act.py flags for the ACT run (a setting to try); one flag alone needs the = form: "
        "--act_flags=--use_augment",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    iterations = args.iterations or (300 if args.quick else 2000)
    eval_every = args.eval_every or (100 if args.quick else 250)
    num_samples = args.fid_num_samples or (300 if args.quick else 1000)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="digits_act_vs_ct_"))
    workdir.mkdir(parents=True, exist_ok=True)
    results_dir = Path(args.results_dir) if args.results_dir else workdir / "runs"
    results_dir.mkdir(parents=True, exist_ok=True)
    images_dir = Path(args.images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    b = args.batch_size
    all_runs = {
        "ct_small": (f"CT, batch {b}", b, 0.0),
        "act": (f"ACT, batch {b}", b, None),  # None: the preset's adv_weight
        "ct_large": (f"CT, batch {6 * b}", 6 * b, 0.0),
    }
    selected = args.runs.split(",")
    unknown = sorted(set(selected) - set(all_runs))
    if unknown:
        parser.error(f"--runs: unknown run(s) {unknown}; choose from {list(all_runs)}")
    unknown = sorted(set(args.recipes.split(",")) - set(RECIPES))
    if unknown:
        parser.error(f"--recipes: unknown recipe(s) {unknown}; choose from {list(RECIPES)}")

    resolution = PRESETS["digits"]["resolution"]  # the preset's, as its runs evaluate themselves
    classifier, accuracy = train_digits_classifier(resolution, seed=0)
    train_x, _ = digits_tensors(resolution, "train")
    test_x, _ = digits_tensors(resolution, "test")
    floor = compute_metrics(test_x, train_x, classifier, inception_score_splits=None)
    pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:num_samples]
    training_digits = compute_metrics(train_x[pick], train_x, classifier, inception_score_splits=None)
    floor["training_digits_fid"] = training_digits["fid"]

    common = [
        "--preset", "digits", "--max_train_samples", "1347", "--max_train_steps", str(iterations),
        "--report_to", "none", "--fid_steps", str(eval_every), "--fid_num_samples", str(num_samples),
        "--checkpointing_steps", str(10**9), "--validation_steps", str(10**9), "--logging_steps", "50",
    ]  # fmt: skip
    if args.vae:
        common += ["--vae_name_or_path", args.vae]
    latent = "latent-" if args.vae else ""  # latent runs keep their own files and section
    results = {}
    total_start = time.perf_counter()
    for recipe in args.recipes.split(","):
        results[recipe] = {}
        for key in (key for key in all_runs if key in selected):
            name, batch, adv_weight = all_runs[key]
            results[recipe][name] = {"seeds": {}, "key": key}
            for seed in seeds:
                slug = f"{latent}{recipe}-{name.split(',')[0].lower()}-b{batch}"
                flags = [*common, *RECIPES[recipe], *args.run_flags.split(), "--train_batch_size", str(batch),
                         "--seed", str(seed)]  # fmt: skip
                flags += args.act_flags.split() if adv_weight is None else ["--adv_weight", str(adv_weight)]
                cached = results_dir / f"{slug}-s{seed}.json"
                if cached.exists() and json.loads(cached.read_text())["flags"] == run_key(flags, args.vae):
                    run = json.loads(cached.read_text())
                    print(f"{recipe:9s} {name:16s} seed {seed}: reused {cached}")
                elif args.cached_only:
                    print(f"{recipe:9s} {name:16s} seed {seed}: not run (--cached_only)")
                    results[recipe][name].setdefault("missing", []).append(seed)
                    continue
                else:
                    output = workdir / f"{slug}-s{seed}"
                    shutil.rmtree(output, ignore_errors=True)
                    seconds = run_training(output, flags)
                    run = {"flags": run_key(flags, args.vae), "evals": evaluations(output), "seconds": seconds}
                    samples = images_dir / f"digits_{slug}-s{seed}.png"
                    shutil.copy(output / "samples.png", samples)
                    run["samples"] = samples.name
                    cached.write_text(json.dumps(run, indent=2))
                results[recipe][name]["seeds"][seed] = run
                print(f"{recipe:9s} {name:16s} seed {seed}: final FID {run['evals'][-1]['fid']:.2f}")
    total = time.perf_counter() - total_start
    if args.summary_json:
        summary = {"argv": args.argv, "seeds": seeds, "floor": floor, "results": results}
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))
    unrun = [f"{recipe} {name}" for recipe, runs in results.items() for name, run in runs.items() if not run["seeds"]]
    if not {"ct_small", "act"} <= set(selected):
        final = {
            recipe: {name: summarise(_metric(run, "fid")) for name, run in runs.items() if run["seeds"]}
            for recipe, runs in results.items()
        }
        print(json.dumps(final, indent=2))
        return json.dumps(final)
    if unrun:
        parser.error(f"--cached_only: no finished seed of {unrun} in {results_dir}; run them first (without it)")
    section = "digits_act_vs_ct_latent" if args.vae else "digits_act_vs_ct"
    plot(results, floor["fid"], images_dir / f"{section}_fid.png")
    body = report(args, results, floor, accuracy, iterations, eval_every, num_samples, total)
    print(body)
    write_section(args.output, section, body)
    (workdir / "results.json").write_text(json.dumps({"floor": floor, "results": results}, indent=2))
    return body


def _metric(run: dict, metric: str, best: bool = False) -> list[float]:
    """One value per seed: the final evaluation's `metric`, or the best (lowest) FID over the run."""
    values = []
    for seed_run in run["seeds"].values():
        evals = seed_run["evals"]
        values.append(min(e["fid"] for e in evals) if best else evals[-1].get(metric, float("nan")))
    return values


def _cell(values: list[float], digits: int = 2) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (one seed)"
    stats = summarise(values)
    per_seed = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f} ({per_seed})"


def vae_sentence(vae: str) -> str:
    """What the report says of the VAE of latent runs, from the `vae_metrics.json` that scripts/train_digits_vae.py
    writes beside it (when there is one)."""
    text = f"Every run trains in the latent space of the VAE `{Path(vae).name}` (4 x 4 x 4 latents of the 8x8 digits)"
    metrics_file = Path(vae) / "vae_metrics.json"
    if not metrics_file.is_file():
        return text + "; FIDs score the decoded samples."
    metrics = json.loads(metrics_file.read_text())
    return (
        f"{text}: {metrics['parameters'] / 1e6:.2f}M parameters, {metrics['steps']} steps of "
        "`scripts/train_digits_vae.py`, held-out reconstruction error (MSE, [0, 1] units) "
        f"{metrics['held_out_mse']:.5f}. FIDs score the decoded samples. The VAE's own floor: its reconstructions of "
        f"the training digits score FID {metrics['reconstruction_fid']:.2f} against them, the lowest a latent model "
        "with this VAE can reach."
    )


def report(args, results, floor, accuracy, iterations, eval_every, num_samples, total_seconds) -> str:
    command = shown_command(
        "benchmarks/digits_act_vs_ct.py", args.argv, ("--output", "--images_dir", "--workdir", "--results_dir")
    )
    seeds = args.seeds.split(",")
    threads = torch.get_num_threads()
    timing = (
        f"the runs trained by this invocation took {total_seconds / 60:.1f} min on {threads} CPU thread(s)"
        if total_seconds >= 1
        else "every run was reused from earlier invocations (its wall time is as it was trained)"
    )
    lines = [
        "## ACT vs consistency training on digits (`benchmarks/digits_act_vs_ct.py`)",
        "",
        f"Command: `{command}`; {iterations} iterations per run, seeds {', '.join(seeds)}, FID every {eval_every} "
        f"iterations on {num_samples} one-step samples; {timing}. Features: a digits classifier "
        f"with {accuracy:.1%} held-out accuracy. Held-out reference (450 held-out real digits vs the 1,347 training "
        f"digits): FID {floor['fid']:.2f}, precision {floor['precision']:.3f}, recall {floor['recall']:.3f}; "
        f"{num_samples} training digits score FID {floor['training_digits_fid']:.2f}, so the held-out reference is "
        "not a lower bound (a model that reproduces training digits goes below it). The recipes and how lambda is "
        "matched are described in the script's docstring. Cells: mean ± standard deviation over seeds (per-seed "
        "values).",
        "",
        "| recipe | run | final FID | best FID | precision | recall | class accuracy | wall time per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    vae = getattr(args, "vae", None)
    if vae:
        lines[0] = "## Latent ACT vs latent consistency training on digits (`benchmarks/digits_act_vs_ct.py --vae`)"
        lines[2:2] = [vae_sentence(vae), ""]
    verdicts = []
    for recipe, runs in results.items():
        for name, run in runs.items():
            seconds = [r["seconds"] for r in run["seeds"].values()]
            lines.append(
                f"| {recipe} | {name} | {_cell(_metric(run, 'fid'))} | {_cell(_metric(run, 'fid', best=True))} | "
                f"{_cell(_metric(run, 'precision'), 3)} | {_cell(_metric(run, 'recall'), 3)} | "
                f"{_cell(_metric(run, 'class_accuracy'), 3)} | {statistics.fmean(seconds) / 60:.1f} min |"
            )
        for name, run in runs.items():
            if run.get("missing"):
                missing = ", ".join(map(str, run["missing"]))
                verdicts.append(f"- {name}: seed(s) {missing} not run yet; its cells cover the others.")
        by_key = {run["key"]: _metric(run, "fid") for run in runs.values()}
        large = by_key.get("ct_large")
        verdict = targets(by_key["act"], by_key["ct_small"], large)
        paired = verdict["paired"]
        text = (
            f"- {recipe} recipe, paired over {paired['n']} seeds: ACT minus CT at batch {args.batch_size} = "
            f"{paired['mean']:+.2f} FID (standard error {paired['se']:.2f}, t = {paired['t']:.2f}, "
            f"{paired['n'] - 1} degrees of freedom). ACT below CT in every seed: "
            f"{'yes' if verdict['every_seed'] else 'NO'}; on the mean by more than two standard errors: "
            f"{'yes' if verdict['two_standard_errors'] else 'NO'}."
        )
        met = verdict["every_seed"] and verdict["two_standard_errors"]
        if large and verdict["within_one_sd_of_large"] is None:
            text += (
                f" CT at batch {6 * args.batch_size} has one seed ({large[0]:.2f}; ACT at batch {args.batch_size} "
                f"averages {statistics.fmean(by_key['act']):.2f}), so whether ACT is within one standard deviation "
                f"of it is not decided. Targets at batch {args.batch_size}: {'met' if met else 'NOT met'}."
            )
        elif large:
            stats = summarise(large)
            text += (
                f" ACT at batch {args.batch_size} ({statistics.fmean(by_key['act']):.2f}) within one standard "
                f"deviation of CT at batch {6 * args.batch_size} ({stats['mean']:.2f} ± {stats['sd']:.2f}) or better: "
                f"{'yes' if verdict['within_one_sd_of_large'] else 'NO'}."
            )
            text += (
                f" Targets at batch {args.batch_size}: {'met' if met else 'NOT met'}; against CT at batch "
                f"{6 * args.batch_size}: {'met' if verdict['within_one_sd_of_large'] else 'NOT met'}."
            )
        else:
            text += (
                f" Targets at batch {args.batch_size}: {'met' if met else 'NOT met'}; CT at batch "
                f"{6 * args.batch_size} was not run (`--runs`), so the comparison with it is not made here."
            )
        verdicts.append(text)
    lines += [
        "",
        *verdicts,
        "",
        f"![FID against iterations](images/digits_act_vs_ct{'_latent' * bool(vae)}_fid.png)",
        "",
        f"Final samples of seed {seeds[0]} (fixed sampling seed, top block 1 step, bottom block 2 steps, digits 0-9 "
        "in reading order):",
        "",
    ]
    for recipe, runs in results.items():
        first = {name: next(iter(run["seeds"].values())) for name, run in runs.items()}
        cells = " ".join(f"![{recipe}, {name}](images/{run['samples']})" for name, run in first.items())
        lines.append(f"{recipe} ({', '.join(runs)}): {cells}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
