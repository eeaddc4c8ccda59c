# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Where does a trained ACT discriminator tell generated images from real ones? A diagnostic for digits runs.

For a finished `train_act.py` run on the digits (its saved pipeline and `discriminator/`), and for a range of noise
levels t: real held-out digits x are noised to x + t z and denoised in one step by the saved generator,
`f(x + t z, t)` (the "fakes" that the discriminator step of ACT sees at time t), and the discriminator scores reals
and fakes at t. The last row does the same for one-step samples from pure noise (`f(T z, T)`, what the pipeline
makes and FID scores). Reported per t: the share of discriminator updates that see a t in this bin under the
run's index distribution at its final N, the mean pixel distance |fake - x| (how far the generator moved away from
the image it was given), D's mean logit on reals and fakes, and the ROC AUC of D's logits (0.5: cannot tell them
apart, 1: separates them perfectly). Then how much the adversarial term moves the generator: the norm of the
gradient of lambda * L_G over that of (1 - lambda) * L_CT, w.r.t. the generator's weights, on one batch of training
digits at the final N (the benchmark's improved recipe: pseudo-Huber distance, 1/(t_{n+1} - t_n) weight divided by
its mean, log-normal n), with the trained discriminator and with a freshly initialised one.

    python benchmarks/probe_discriminator.py --run path/to/train_act/output_dir
"""

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import UNet2DModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from diffusers_act import ACTDiscriminator, ConsistencyACTScheduler  # noqa: E402
from diffusers_act.evaluation import digits_tensors  # noqa: E402
from diffusers_act.training import PRESETS, ACTConfig, ACTTrainer, consistency_function  # noqa: E402
from diffusers_act.training.curricula import lognormal_index_probabilities, sample_timestep_indices  # noqa: E402


def roc_auc(real: torch.Tensor, fake: torch.Tensor) -> float:
    """P(D(real) > D(fake)) over all pairs, ties counted half (Mann-Whitney U / (n m))."""
    diff = real.double()[:, None] - fake.double()[None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def update_share(sigmas: torch.Tensor, low: float, high: float, distribution: str) -> float:
    """Share of discriminator updates whose t_{n+1} lies in [low, high) on the grid `sigmas`."""
    probs = (
        lognormal_index_probabilities(sigmas)
        if distribution == "lognormal"
        else torch.full((len(sigmas) - 1,), 1 / (len(sigmas) - 1), dtype=torch.float64)
    )
    t_next = sigmas[1:].double()
    return float(probs[(t_next >= low) & (t_next < high)].sum())


def adversarial_gradient_share(unet, discriminator, scheduler, sigmas, adv_weight=0.3, batch_size=64, seed=0):
    """||grad(lambda L_G)|| / ||grad((1 - lambda) L_CT)|| w.r.t. the generator's weights, on one batch, with the
    trainer's own generator loss under the digits recipe (teacher = the current weights)."""
    images, labels = digits_tensors(unet.config.sample_size, "train")
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(images), (batch_size,), generator=generator)
    images, labels = images[pick] * 2 - 1, labels[pick] if unet.config.num_class_embeds else None
    indices = sample_timestep_indices(sigmas, batch_size, "lognormal", generator=generator)
    noise = torch.randn(images.shape, generator=generator)
    recipe = {k: v for k, v in PRESETS["digits"].items() if k in ACTConfig.__dataclass_fields__}
    config = ACTConfig(**{**recipe, "adv_weight": adv_weight})  # the digits preset normalises the weight
    teacher = copy.deepcopy(unet)  # mu0 = 0: the teacher is the current weights
    trainer = ACTTrainer(unet, teacher, scheduler, None, config, Accelerator(cpu=True), discriminator)
    params = list(unet.parameters())
    with torch.enable_grad():
        losses = trainer.generator_loss(images, labels, sigmas, len(sigmas), indices, noise)
        grad_ct = torch.autograd.grad(losses["consistency"], params, retain_graph=True)
        grad_g = torch.autograd.grad(losses["adversarial"], params)
    norm = lambda grads: torch.cat([g.flatten() for g in grads]).norm()  # noqa: E731
    return float(norm(grad_g) / norm(grad_ct))


@torch.no_grad()
def probe(run: Path, distribution: str = "lognormal", num_images: int = 450, seed: int = 0) -> dict:
    unet = UNet2DModel.from_pretrained(run / "unet").eval()
    discriminator = ACTDiscriminator.from_pretrained(run / "discriminator").eval()
    scheduler = ConsistencyACTScheduler.from_pretrained(run / "scheduler")
    summary = json.loads((run / "training_summary.json").read_text())
    sigmas = scheduler.karras_sigmas(summary["final_num_timesteps"])

    images, labels = digits_tensors(unet.config.sample_size, "test")
    images, labels = images[:num_images] * 2 - 1, labels[:num_images]
    labels = labels if unet.config.num_class_embeds else None
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator)
    t_max = scheduler.config.sigma_max
    edges = [scheduler.config.sigma_min, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, t_max + 1e-6]

    def scores(inputs, t):
        t = torch.full((len(inputs),), float(t))
        return discriminator(inputs, scheduler.precondition_noise(t), labels).flatten()

    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        t = math.sqrt(low * min(high, t_max))  # the bin's geometric middle
        sigma = torch.full((len(images),), t)
        fakes = consistency_function(unet, scheduler, scheduler.add_noise(images, noise, sigmas=t), sigma, labels)
        real_logits, fake_logits = scores(images, t), scores(fakes, t)
        rows.append({
            "bin": f"[{low:g}, {high if high < t_max else t_max:g}{']' if high > t_max else ')'}",
            "t": t,
            "update_share": update_share(sigmas, low, high, distribution),
            "distance": float((fakes - images).abs().mean()),
            "real_logit": float(real_logits.mean()),
            "fake_logit": float(fake_logits.mean()),
            "auc": roc_auc(real_logits, fake_logits),
        })  # fmt: skip
    # one-step samples from pure noise, what the pipeline makes
    samples = consistency_function(unet, scheduler, t_max * noise, torch.full((len(images),), t_max), labels)
    real_logits, fake_logits = scores(images, t_max), scores(samples.clamp(-1, 1), t_max)
    rows.append({
        "bin": "1-step samples f(T z, T)", "t": t_max, "update_share": float("nan"), "distance": float("nan"),
        "real_logit": float(real_logits.mean()), "fake_logit": float(fake_logits.mean()),
        "auc": roc_auc(real_logits, fake_logits),
    })  # fmt: skip
    discriminator.requires_grad_(False)
    torch.manual_seed(seed)
    fresh = ACTDiscriminator.from_config(discriminator.config).eval().requires_grad_(False)
    share = {
        name: adversarial_gradient_share(unet, d, scheduler, sigmas)
        for name, d in (("trained", discriminator), ("fresh", fresh))
    }
    return {"run": str(run), "final_num_timesteps": summary["final_num_timesteps"], "distribution": distribution,
            "rows": rows, "adversarial_gradient_share": share}  # fmt: skip


def table(result: dict, title: str) -> str:
    lines = [
        f"{title} (final N = {result['final_num_timesteps']}, index distribution {result['distribution']}):",
        "",
        "| t bin | t probed | share of D updates | mean abs(fake - x) | D logit, reals | D logit, fakes | AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['bin']} | {r['t']:.3g} | {r['update_share']:.3f} | {r['distance']:.3f} | {r['real_logit']:+.3f} | "
            f"{r['fake_logit']:+.3f} | {r['auc']:.3f} |".replace("nan", "-")
        )
    share = result["adversarial_gradient_share"]
    lines += [
        "",
        f"Adversarial share of the generator's gradient (||grad lambda L_G|| / ||grad (1 - lambda) L_CT||, lambda = "
        f"0.3, final N): {share['trained']:.4f} with this discriminator, {share['fresh']:.4f} with a freshly "
        "initialised one.",
    ]
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, action="append", help="a train_act.py output dir (repeatable)")
    parser.add_argument("--title", action="append", help="a title per --run")
    parser.add_argument(
        "--index_distribution",
        choices=["lognormal", "uniform"],
        default="lognormal",
        help="the runs' --index_distribution (for the share of D updates per t)",
    )
    parser.add_argument("--num_images", type=int, default=450)
    parser.add_argument("--output", default=None, help="a Markdown file to write the tables into (a section)")
    args = parser.parse_args(argv)
    titles = args.title or [Path(run).name for run in args.run]
    if len(titles) != len(args.run):
        parser.error("give one --title per --run, or none")
    for run in args.run:
        missing = [name for name in ("unet", "discriminator", "scheduler") if not (Path(run) / name).is_dir()]
        if missing:
            parser.error(f"{run} has no {', '.join(missing)}/: give the output dir of a finished ACT run")
    body = "\n\n".join(
        table(probe(Path(run), args.index_distribution, args.num_images), t)
        for run, t in zip(args.run, titles, strict=True)
    )
    print(body)
    if args.output:
        write_section(args.output, "probe_discriminator", body)
    return body


if __name__ == "__main__":
    main()
