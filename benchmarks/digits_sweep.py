# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Which digits recipe? The R1 weight, ACT-Aug and the evaluation EMA's warm-up, screened over seeds.

Every setting is the digits preset plus one change, run by `benchmarks/digits_act_vs_ct.py` (ACT at batch 32 on the
1,347 training digits, FID in a digits classifier's features), so the sweep runs the preset itself. First a screen
of every setting at the benchmark's `--quick` length (300 iterations) over 3 seeds, with CT at the same length as the
reference; then `--full` runs chosen settings for the full 2,000 iterations. Each run is kept as JSON under
`--results_root/<quick|full>/<setting>/`, keyed by its flags and the digits preset, so the sweep resumes and the
table can be rewritten without training (`--cached_only`).

    python benchmarks/digits_sweep.py                                    # the screen (21 quick runs + 3 CT)
    python benchmarks/digits_sweep.py --only gp0.05,gp0.2                # part of it (e.g. in two processes)
    python benchmarks/digits_sweep.py --full gp0.1,gp0.05,ema-constant   # full-length runs of chosen settings
    python benchmarks/digits_sweep.py --full gp0.1,bf16                  # on a GPU: bf16 autocast against fp32
"""

import argparse
import io
import json
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import digits_act_vs_ct  # noqa: E402
from _report import shown_command, write_section  # noqa: E402
from digits_act_vs_ct import paired_t, summarise  # noqa: E402

# slug -> (what it is, the flags added to the ACT run); "ct" is the CT run at the same batch (the reference)
SETTINGS = {
    "ct": ("CT (no discriminator)", None),
    "gp0.02": ("R1 weight 0.02", "--gp_weight 0.02"),
    "gp0.05": ("R1 weight 0.05", "--gp_weight 0.05"),
    "gp0.1": ("R1 weight 0.1 (the preset)", ""),
    "gp0.2": ("R1 weight 0.2", "--gp_weight 0.2"),
    "gp0.5": ("R1 weight 0.5", "--gp_weight 0.5"),
    "aug": ("R1 weight 0.1 + ACT-Aug", "--use_augment"),
    # tau = 0.55 was tuned for the paper's R1 weight 5: the controller reads w_gp ||grad||^2, 50x smaller at 0.1
    "aug-tau": ("R1 weight 0.1 + ACT-Aug, tau 0.55 x 0.1 / 5", "--use_augment --aug_target 0.011"),
    "ema-constant": ("R1 weight 0.1, evaluation EMA 0.999 without warm-up", "--ema_warmup constant"),
    # the evidence for `--mixed_precision auto` (bf16 autocast, losses in fp32): on a GPU, not the CPU
    "bf16": ("R1 weight 0.1, bf16 autocast", "--mixed_precision bf16"),
}
# the EMA matters only at full length; bf16 is for a GPU
SCREEN = ("ct", "gp0.02", "gp0.05", "gp0.1", "gp0.2", "gp0.5", "aug", "aug-tau")


def run_setting(slug: str, full: bool, results_root: Path, seeds: str, cached_only: bool = False) -> dict:
    """Runs (or reuses) one setting over the seeds; returns the benchmark's per-seed evaluations (with
    `cached_only`, of the finished seeds only)."""
    flags = SETTINGS[slug][1]
    folder = results_root / ("full" if full else "quick") / slug
    work = Path(tempfile.mkdtemp(prefix=f"digits_sweep_{slug}_"))
    argv = [
        *([] if full else ["--quick"]), "--seeds", seeds, "--results_dir", str(folder), "--workdir", str(work),
        "--images_dir", str(folder / "images"), "--output", str(work / "unused.md"),
        "--summary_json", str(work / "summary.json"),
        *(["--runs", "ct_small"] if flags is None else ["--runs", "act", f"--act_flags={flags}"]),
        *(["--cached_only"] if cached_only else []),
    ]  # fmt: skip
    with redirect_stdout(io.StringIO()) as printed:
        digits_act_vs_ct.main(argv)
    print(printed.getvalue().strip(), flush=True)
    results = json.loads((work / "summary.json").read_text())["results"]["improved"]
    return next(iter(results.values()))["seeds"]


def metric(seed_runs: dict, best: bool = False) -> list[float]:
    return list(by_seed(seed_runs, best).values())


def by_seed(seed_runs: dict, best: bool = False) -> dict[str, float]:
    """Final (or best) FID per seed."""
    return {
        seed: min(e["fid"] for e in r["evals"]) if best else r["evals"][-1]["fid"] for seed, r in seed_runs.items()
    }


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} (one seed)"
    stats = summarise(values)
    return f"{stats['mean']:.2f} ± {stats['sd']:.2f} ({', '.join(f'{v:.2f}' for v in values)})"


def paired(seed_runs: dict, reference: dict[str, float] | None) -> str:
    """Mean paired difference of final FID from a reference (per seed), over the seeds both ran, and its t."""
    seeds = [seed for seed in by_seed(seed_runs) if reference and seed in reference]
    if not seeds:
        return ""
    comparison = paired_t([by_seed(seed_runs)[s] for s in seeds], [reference[s] for s in seeds])
    return f"{comparison['mean']:+.2f}" + (f", t = {comparison['t']:.2f}" if len(seeds) > 1 else ", one seed")


def table(runs: dict[str, dict]) -> list[str]:
    lines = [
        "| setting | flags | final FID | best FID | ACT - CT, paired | minus the preset, paired | class accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    ct = by_seed(runs["ct"]) if "ct" in runs else None
    preset = by_seed(runs["gp0.1"]) if "gp0.1" in runs else None
    ranked = sorted(runs, key=lambda slug: (slug != "ct", summarise(metric(runs[slug]))["mean"]))
    for slug in ranked:
        accuracy = summarise([r["evals"][-1]["class_accuracy"] for r in runs[slug].values()])
        flags = SETTINGS[slug][1]
        shown = "`--adv_weight 0`" if flags is None else (f"`{flags}`" if flags else "(none)")
        lines.append(
            f"| {SETTINGS[slug][0]} | {shown} | {cell(metric(runs[slug]))} | {cell(metric(runs[slug], best=True))} | "
            f"{paired(runs[slug], ct) if slug != 'ct' else ''} | "
            f"{paired(runs[slug], preset) if slug not in ('ct', 'gp0.1') else ''} | {accuracy['mean']:.3f} |"
        )
    return lines


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="comma-separated settings of the screen to run")
    parser.add_argument(
        "--full",
        default=None,
        help="comma-separated settings to run at full length instead; SETTING@0 runs that one on seed 0 only",
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cached_only", action="store_true", help="train nothing: tabulate the finished runs")
    parser.add_argument("--results_root", default=str(ROOT / "digits_sweep_runs"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    full = args.full is not None
    specs = [spec.partition("@") for spec in (args.full or args.only or ",".join(SCREEN)).split(",")]
    unknown = sorted({slug for slug, _, _ in specs} - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose from {list(SETTINGS)}")
    runs = {
        slug: run_setting(slug, full, Path(args.results_root), seeds or args.seeds, args.cached_only)
        for slug, _, seeds in specs
    }
    runs = {slug: seed_runs for slug, seed_runs in runs.items() if seed_runs}  # --cached_only: settings not run yet
    length = "2,000 iterations, FID every 250 on 1,000 samples" if full else "300 iterations (`--quick`), FID every "
    length += "" if full else "100 on 300 samples"
    command = shown_command(
        "benchmarks/digits_sweep.py", sys.argv[1:] if argv is None else argv, ("--output", "--results_root")
    )
    body = "\n".join([
        f"### Digits recipe sweep, {'full length' if full else 'screen'} (`benchmarks/digits_sweep.py`)",
        "",
        f"Command: `{command}`. Each setting is `--preset digits` plus its flags, run by "
        f"`benchmarks/digits_act_vs_ct.py` (ACT at batch 32 on the 1,347 training digits) over seeds {args.seeds} "
        "(unless a setting names its own with @), "
        f"{length}. Cells: mean ± standard deviation over seeds (per-seed values); rows sorted by mean final FID; "
        "the paired columns are the mean difference in final FID from CT and from the preset over the seeds both "
        "ran, and its t statistic (negative: this setting better).",
        "",
        *table(runs),
    ])  # fmt: skip
    print(body)
    write_section(args.output, "digits_sweep_full" if full else "digits_sweep_quick", body)
    return body


if __name__ == "__main__":
    main()
