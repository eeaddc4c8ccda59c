# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Does ACT beat consistency training at a small batch? The paper's claim, tested on scikit-learn's digits on CPU.

Three runs per recipe, all `examples/train_act/train_act.py --preset digits` (run as a subprocess, as a user would),
on the first 1,347 digits at 16x16, for the same number of iterations: consistency training (CT) at batch B, ACT at
batch B, and CT at batch 6B; the runs differ from the preset only in `--train_batch_size` and `--adv_weight 0`. Two
recipes:

- `improved`: the preset itself: doubling N(k) (s0=10, s1=160), teacher = current weights, log-normal n,
  1/(t_{n+1} - t_n) weight divided by its mean over n (`--normalize_loss_weight`, so that the consistency loss keeps
  the unweighted scale the paper tuned lambda against; without it the mean weight, 8 at N=11 and 141 at N=161, would
  make lambda = 0.3 8-141x weaker), an evaluation EMA (0.999) that is sampled.
- `paper`: the preset with the ACT paper's CT curricula instead: N(k) of Consistency Models (s0=2, s1=150), EMA
  target mu0=0.9 (sampled at the end), uniform n, unweighted loss; lambda = 0.3 as the paper's CIFAR-10.

Both use the preset's pseudo-Huber distance (LPIPS is meaningless on 16x16 grey digits and needs downloaded VGG
weights) and lr 5e-4 for G and D (RAdam, betas (0, 0.99)). Every `--eval_every` iterations the run's sampled network
makes `--fid_num_samples` one-step samples, scored in the feature space of a small digits classifier (trained with a
fixed seed; its held-out accuracy is reported): FID against the 1,347 training digits, improved precision/recall,
the effective share of the ten digits among the samples (label coverage; 0.1 = one digit only) and the share
classified as the digit asked for. Two references: the 450 held-out digits against the training digits (what new
digits from the same source score) and `--fid_num_samples` of the training digits themselves (what reproducing the
training set scores). The first is not a lower bound: a model that reproduces training digits scores below it.

    python benchmarks/digits_act_vs_ct.py            # full: 2,000 iterations x 6 runs, about an hour on 2 cores
    python benchmarks/digits_act_vs_ct.py --quick    # 300 iterations, under 10 minutes
"""

import argparse
import json
import shutil
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
        for name, run in runs.items():
            ax.plot([e["step"] for e in run["evals"]], [e["fid"] for e in run["evals"]], marker="o", label=name)
        ax.axhline(floor, color="grey", linestyle="--", label="held-out real digits")
        ax.set_title(f"{recipe} recipe")
        ax.set_xlabel("iteration")
        ax.set_ylabel("FID (digits-classifier features, 1 step)")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 iterations, fewer samples")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32, help="B; the large-batch CT run uses 6B")
    parser.add_argument("--eval_every", type=int, default=None)
    parser.add_argument("--fid_num_samples", type=int, default=None)
    parser.add_argument("--adv_weight", type=float, default=0.3)
    parser.add_argument("--recipes", default="paper,improved")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--images_dir", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--workdir", default=None, help="where the runs are written (a temporary folder by default)")
    parser.add_argument(
        "--runs",
        default="ct_small,act,ct_large",
        help="which runs (ct_small, act, ct_large); a subset prints and writes no report (ablations, seeds)",
    )
    parser.add_argument("--only_act", action="store_true", help="the same as --runs act")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every run (the classifier keeps seed 0)")
    parser.add_argument("--summary_json", default=None, help="also write every run's evaluations here as JSON")
    parser.add_argument("--act_flags", default="", help="extra train_act.py flags for the ACT run, e.g. for ablations")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    iterations = args.iterations or (300 if args.quick else 2000)
    eval_every = args.eval_every or (100 if args.quick else 250)
    num_samples = args.fid_num_samples or (300 if args.quick else 1000)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="digits_act_vs_ct_"))
    images_dir = Path(args.images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    b = args.batch_size
    all_runs = {
        "ct_small": (f"CT, batch {b}", b, 0.0),
        "act": (f"ACT, batch {b}", b, args.adv_weight),
        "ct_large": (f"CT, batch {6 * b}", 6 * b, 0.0),
    }
    selected = ["act"] if args.only_act else args.runs.split(",")
    unknown = sorted(set(selected) - set(all_runs))
    if unknown:
        parser.error(f"--runs: unknown run(s) {unknown}; choose from {list(all_runs)}")
    runs = [all_runs[key] for key in all_runs if key in selected]

    classifier, accuracy = train_digits_classifier(16, seed=0)
    train_x, _ = digits_tensors(16, "train")
    test_x, _ = digits_tensors(16, "test")
    floor = compute_metrics(test_x, train_x, classifier, inception_score_splits=None)
    pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:num_samples]
    training_digits = compute_metrics(train_x[pick], train_x, classifier, inception_score_splits=None)
    floor["training_digits_fid"] = training_digits["fid"]

    common = [
        "--preset", "digits", "--max_train_samples", "1347", "--max_train_steps", str(iterations),
        "--report_to", "none", "--fid_steps", str(eval_every), "--fid_num_samples", str(num_samples),
        "--checkpointing_steps", str(10**9), "--validation_steps", str(10**9), "--logging_steps", "50",
        "--seed", str(args.seed),
    ]  # fmt: skip
    results = {}
    total_start = time.perf_counter()
    for recipe in args.recipes.split(","):
        results[recipe] = {}
        for name, batch, adv_weight in runs:
            slug = f"{recipe}-{name.split(',')[0].lower()}-b{batch}"
            output = workdir / slug
            shutil.rmtree(output, ignore_errors=True)
            flags = [*common, *RECIPES[recipe], "--train_batch_size", str(batch), "--adv_weight", str(adv_weight)]
            if adv_weight > 0:
                flags += args.act_flags.split()
            seconds = run_training(output, flags)
            shutil.copy(output / "samples.png", images_dir / f"digits_{slug}.png")
            results[recipe][name] = {"evals": evaluations(output), "seconds": seconds, "slug": slug}
            print(
                f"{recipe:9s} {name:16s} final FID {results[recipe][name]['evals'][-1]['fid']:.2f} ({seconds:.0f} s)"
            )
    total = time.perf_counter() - total_start
    if args.summary_json:
        summary = {"argv": args.argv, "seed": args.seed, "floor": floor, "results": results}
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))
    if len(runs) < len(all_runs):
        final = {recipe: {name: run["evals"][-1] for name, run in runs.items()} for recipe, runs in results.items()}
        print(json.dumps(final, indent=2))
        return json.dumps(final)
    plot(results, floor["fid"], images_dir / "digits_act_vs_ct_fid.png")
    body = report(args, results, floor, accuracy, iterations, eval_every, num_samples, total)
    print(body)
    write_section(args.output, "digits_act_vs_ct", body)
    (workdir / "results.json").write_text(json.dumps({"floor": floor, "results": results}, indent=2))
    return body


def report(args, results, floor, accuracy, iterations, eval_every, num_samples, total_seconds) -> str:
    command = shown_command("benchmarks/digits_act_vs_ct.py", args.argv, ("--output", "--images_dir", "--workdir"))
    lines = [
        "## ACT vs consistency training on digits (`benchmarks/digits_act_vs_ct.py`)",
        "",
        f"Command: `{command}`; {iterations} iterations per run, FID every {eval_every} iterations on {num_samples} "
        f"one-step samples; total wall time {total_seconds / 60:.1f} min on {torch.get_num_threads()} CPU threads. "
        f"Features: a digits classifier with {accuracy:.1%} held-out accuracy. Held-out reference (450 held-out real "
        f"digits vs the 1,347 training digits): FID {floor['fid']:.2f}, precision {floor['precision']:.3f}, recall "
        f"{floor['recall']:.3f}; {num_samples} training digits score FID {floor['training_digits_fid']:.2f}, so the "
        "held-out reference is not a lower bound (a model that reproduces training digits goes below it). The recipes "
        "and how lambda is matched are described in the script's docstring.",
        "",
        "| recipe | run | final FID | best FID (iteration) | precision | recall | label coverage | class accuracy "
        "| wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for recipe, runs in results.items():
        for name, run in runs.items():
            last = run["evals"][-1]
            best = min(run["evals"], key=lambda e: e["fid"])
            lines.append(
                f"| {recipe} | {name} | {last['fid']:.2f} | {best['fid']:.2f} ({best['step']}) | "
                f"{last['precision']:.3f} | {last['recall']:.3f} | {last['label_coverage']:.3f} | "
                f"{last.get('class_accuracy', float('nan')):.3f} | {run['seconds'] / 60:.1f} min |"
            )
        names = list(runs)
        ct_small, act, ct_large = (runs[n]["evals"][-1]["fid"] for n in names)
        verdict = "beat" if act < ct_small else "did not beat"
        vs_large = "better than" if act < ct_large else "worse than"
        verdicts.append(
            f"- {recipe} recipe: ACT at batch {args.batch_size} {verdict} CT at the same batch (final FID {act:.2f} "
            f"vs {ct_small:.2f}, {100 * (ct_small - act) / ct_small:+.0f}%), and was {vs_large} CT at batch "
            f"{6 * args.batch_size} ({ct_large:.2f})."
        )
        if min(ct_small, act, ct_large) > 20 * floor["fid"]:
            verdicts[-1] += (
                f" All three runs still make noise (FID over 20x the held-out reference of {floor['fid']:.1f}), so "
                "this difference says nothing about sample quality: this recipe has not started to learn in this many "
                "iterations."
            )
    lines += [
        "",
        *verdicts,
        "",
        "![FID against iterations](images/digits_act_vs_ct_fid.png)",
        "",
        "Final samples (fixed seed, top block 1 step, bottom block 2 steps, digits 0-9 in reading order):",
        "",
    ]
    for recipe, runs in results.items():
        cells = " ".join(f"![{recipe}, {name}](images/digits_{run['slug']}.png)" for name, run in runs.items())
        lines.append(f"{recipe} ({', '.join(runs)}): {cells}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
