# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Where can an ACT discriminator tell generated digits from real ones, and what holds it back? Diagnostics for a
finished `train_act.py --preset digits` run (its output directory), in two sub-commands.

`trained` scores the discriminator the run trained (its saved `discriminator/`; several runs may be given). For a
range of noise levels t, real held-out digits x are noised to x + t z and denoised in one step by the saved
generator, `f(x + t z, t)` (the "fakes" that the discriminator step of ACT sees at time t), and the discriminator
scores reals and fakes at t. The last row does the same for one-step samples from pure noise (`f(T z, T)`, what the
pipeline makes and FID scores). Reported per t: the share of discriminator updates that see a t in this bin under
the run's index distribution at its final N, the mean pixel distance |fake - x| (how far the generator moved away
from the image it was given), D's mean logit on reals and fakes, and the ROC AUC of D's logits (0.5: cannot tell
them apart, 1: separates them perfectly). Then how much the adversarial term moves the generator: the norm of the
gradient of lambda * L_G over that of (1 - lambda) * L_CT, w.r.t. the generator's weights, on one batch of training
digits at the final N (the digits recipe: pseudo-Huber distance, 1/(t_{n+1} - t_n) weight divided by its mean,
log-normal n), with the trained discriminator and with a freshly initialised one.

`capacity` trains fresh discriminators (the run's architecture, RAdam betas (0, 0.99) as in training) against the
run's saved, frozen generator, so it separates "D cannot learn" from "training kept D from learning". Each
`--setting TIMES,R1_WEIGHT` fixes which times t the fakes are made at (the run's log-normal or the paper's uniform
index distribution on its final grid, or one fixed t) and the R1 weight (every 16 iterations, as in training). The
loss is ACT's, non-saturating, each pair weighted by lambda_N(m) of its noise level as the trainer weights it (the
digits preset's w and w_mid unless --adv_weight / --adv_weight_mid are given; m from the position of t on the final
grid). After the given number of iterations it reports, on held-out digits, the ROC AUC of the discriminator's
logits, reals against fakes, at a few t. `t = 80` scores one-step samples from pure noise.

    python benchmarks/probe_discriminator.py trained --run path/to/train_act/output_dir
    python benchmarks/probe_discriminator.py capacity --run path/to/train_act/output_dir \
        --setting lognormal,5 --setting lognormal,0 --setting uniform,5 --setting 80,5 --setting 80,0
"""

import argparse
import contextlib
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
from diffusers_act.models.discriminator import double_backward_attention  # noqa: E402
from diffusers_act.training import PRESETS, ACTConfig, ACTTrainer, consistency_function  # noqa: E402
from diffusers_act.training.curricula import (  # noqa: E402
    adversarial_weight,
    lognormal_index_probabilities,
    sample_timestep_indices,
)
from diffusers_act.training.losses import discriminator_adversarial_loss, r1_penalty  # noqa: E402

PROBE_TIMES = (0.1, 1.0, 10.0, 80.0)  # `capacity`: the t at which the held-out AUC is reported


def parse_setting(text: str) -> tuple[str, float]:
    times, _, gp_weight = text.partition(",")
    if times not in ("lognormal", "uniform"):
        try:
            float(times)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--setting {text!r}: times must be lognormal, uniform or a number"
            ) from None
    try:
        return times, float(gp_weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--setting {text!r}: expected TIMES,R1_WEIGHT, e.g. lognormal,5") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    trained = commands.add_parser("trained", help="score the discriminator that the run trained, per noise level")
    trained.add_argument("--run", required=True, action="append", help="a train_act.py output dir (repeatable)")
    trained.add_argument("--title", action="append", help="a title per --run")
    trained.add_argument(
        "--index_distribution",
        choices=["lognormal", "uniform"],
        default="lognormal",
        help="the runs' --index_distribution (for the share of D updates per t)",
    )
    trained.add_argument("--num_images", type=int, default=450)
    trained.add_argument("--output", default=None, help="a Markdown file to write the tables into (a section)")

    capacity = commands.add_parser("capacity", help="train fresh discriminators against the run's frozen generator")
    capacity.add_argument("--run", required=True, help="a finished train_act.py output dir (digits)")
    capacity.add_argument("--setting", type=parse_setting, action="append", required=True, help="TIMES,R1_WEIGHT")
    capacity.add_argument("--steps", type=int, default=1200)
    capacity.add_argument("--learning_rate", type=float, default=5e-4)
    capacity.add_argument("--batch_size", type=int, default=32, help="half fakes, half reals")
    capacity.add_argument("--seed", type=int, default=0)
    capacity.add_argument("--adv_weight", type=float, default=None, help="w of lambda (default: the digits preset's)")
    capacity.add_argument(
        "--adv_weight_mid", type=float, default=None, help="w_mid of lambda (default: the digits preset's, or w)"
    )
    capacity.add_argument("--output", default=None, help="a Markdown file to write the table into (a section)")

    args = parser.parse_args(argv)
    runs = args.run if args.command == "trained" else [args.run]
    needed = ("unet", "scheduler", "discriminator") if args.command == "trained" else ("unet", "scheduler")
    for run in runs:
        missing = [name for name in needed if not (Path(run) / name).is_dir()]
        if missing:
            parser.error(f"{run} has no {', '.join(missing)}/: give the output dir of a finished train_act.py run")
    if args.command == "trained" and args.title and len(args.title) != len(args.run):
        parser.error("give one --title per --run, or none")
    return args


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.command == "trained":
        titles = args.title or [Path(run).name for run in args.run]
        body = "\n\n".join(
            table(probe(Path(run), args.index_distribution, args.num_images), title)
            for run, title in zip(args.run, titles, strict=True)
        )
        section = "probe_discriminator"
    else:
        body = capacity_table(args)
        section = "discriminator_capacity"
    print(body)
    if args.output:
        write_section(args.output, section, body)
    return body


def roc_auc(real: torch.Tensor, fake: torch.Tensor) -> float:
    """P(D(real) > D(fake)) over all pairs, ties counted half (Mann-Whitney U / (n m))."""
    diff = real.double()[:, None] - fake.double()[None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def digits_recipe(**changes) -> ACTConfig:
    """The digits preset's training settings (its row over `ACTConfig`'s defaults), with `changes`."""
    row = {k: v for k, v in PRESETS["digits"].items() if k in ACTConfig.__dataclass_fields__}
    return ACTConfig(**{**row, **changes})


# `trained`: the run's own discriminator


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
    config = digits_recipe(adv_weight=adv_weight)  # the digits preset normalises the weight
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


# `capacity`: fresh discriminators against the run's frozen generator


def grid_position(scheduler, t: torch.Tensor, num_timesteps: int) -> torch.Tensor:
    """The index m of each noise level `t` on the ascending `num_timesteps`-point grid (fractional between points),
    from the scheduler's inverse of its Karras ramp (which counts from `sigma_max`)."""
    return (1 - torch.from_numpy(scheduler.sigma_to_ramp(t.double().numpy()))) * (num_timesteps - 1)


def train_discriminator(
    unet, scheduler, sigmas, times, gp_weight, steps, lr, batch_size, seed, adv_weights, gp_interval=16
):
    train_x, train_y = digits_tensors(unet.config.sample_size, "train")
    train_x = train_x * 2 - 1
    conditional = unet.config.num_class_embeds is not None
    torch.manual_seed(seed)
    disc = ACTDiscriminator.from_unet_config(unet.config)
    optimizer = torch.optim.RAdam(disc.parameters(), lr=lr, betas=(0.0, 0.99))
    generator = torch.Generator().manual_seed(seed)
    half = batch_size // 2
    for step in range(1, steps + 1):
        pick = torch.randint(0, len(train_x), (batch_size,), generator=generator)
        images, labels = train_x[pick], train_y[pick] if conditional else None
        if times in ("lognormal", "uniform"):
            index = sample_timestep_indices(sigmas, half, times, generator=generator) + 1  # the student's, n + 1
            t = sigmas[index]
        else:
            t = torch.full((half,), float(times))
            index = grid_position(scheduler, t, len(sigmas))
        noise = torch.randn(images[:half].shape, generator=generator)
        with torch.no_grad():
            fakes = consistency_function(
                unet,
                scheduler,
                scheduler.add_noise(images[:half], noise, sigmas=t),
                t,
                None if labels is None else labels[:half],
            )
        with_r1 = gp_weight > 0 and step % gp_interval == 0
        reals = images[half:].clone().requires_grad_(with_r1)
        with double_backward_attention() if with_r1 else contextlib.nullcontext():
            logits = disc(torch.cat([fakes, reals]), scheduler.precondition_noise(torch.cat([t, t])), labels)
        logits = logits.flatten()
        weight = adversarial_weight(index, len(sigmas), *adv_weights).float()  # one noise level per fake/real pair
        loss = (weight * discriminator_adversarial_loss(logits[:half], logits[half:])).mean()
        if with_r1:
            loss = loss + gp_weight * (weight * r1_penalty(logits[half:], reals)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return disc.eval()


@torch.no_grad()
def held_out_auc(unet, scheduler, disc, num_images=300, seed=1) -> dict[float, float]:
    images, labels = digits_tensors(unet.config.sample_size, "test")
    images, labels = images[:num_images] * 2 - 1, labels[:num_images] if unet.config.num_class_embeds else None
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    aucs = {}
    for t in PROBE_TIMES:
        sigma = torch.full((len(images),), t)
        source = t * noise if t >= scheduler.config.sigma_max else scheduler.add_noise(images, noise, sigmas=t)
        fakes = consistency_function(unet, scheduler, source, sigma, labels).clamp(-1, 1)
        time_input = scheduler.precondition_noise(sigma)
        aucs[t] = roc_auc(disc(images, time_input, labels).flatten(), disc(fakes, time_input, labels).flatten())
    return aucs


def capacity_table(args) -> str:
    run = Path(args.run)
    unet = UNet2DModel.from_pretrained(run / "unet").eval().requires_grad_(False)
    scheduler = ConsistencyACTScheduler.from_pretrained(run / "scheduler")
    final_n = json.loads((run / "training_summary.json").read_text())["final_num_timesteps"]
    sigmas = scheduler.karras_sigmas(final_n)
    recipe = digits_recipe()
    adv_weight, adv_weight_mid = recipe.adv_weight, recipe.adv_weight_mid
    if args.adv_weight is not None:
        adv_weight, adv_weight_mid = args.adv_weight, args.adv_weight
    if args.adv_weight_mid is not None:
        adv_weight_mid = args.adv_weight_mid
    lines = [
        f"Discriminators trained for {args.steps} iterations (batch {args.batch_size}, lr {args.learning_rate}) "
        f"against the frozen generator of `{run.parent.name}/{run.name}` (final N = {final_n}); ROC AUC on held-out "
        "digits:",
        "",
        "| fakes made at t | R1 weight | " + " | ".join(f"AUC at t = {t:g}" for t in PROBE_TIMES) + " |",
        "|---|---|" + "---|" * len(PROBE_TIMES),
    ]
    for times, gp_weight in args.setting:
        disc = train_discriminator(
            unet, scheduler, sigmas, times, gp_weight, args.steps, args.learning_rate, args.batch_size, args.seed,
            (adv_weight, adv_weight_mid),
        )  # fmt: skip
        aucs = held_out_auc(unet, scheduler, disc)
        lines.append(f"| {times} | {gp_weight:g} | " + " | ".join(f"{aucs[t]:.3f}" for t in PROBE_TIMES) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
