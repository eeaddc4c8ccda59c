# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Can a discriminator learn to tell a finished digits run's generator from the data, and what holds it back?

Trains fresh discriminators (the run's architecture, RAdam betas (0, 0.99) as in training) against the run's saved,
frozen generator, each under one setting of the ACT discriminator step: which times t the fakes are made at (the
run's log-normal or the paper's uniform index distribution on its final grid, or one fixed t) and the R1 weight
(every 16 iterations, as in training). The loss is ACT's, non-saturating, each pair weighted by lambda_N(m) of its
noise level as the trainer weights it (the digits preset's w and w_mid unless --adv_weight / --adv_weight_mid are
given; m from the position of t on the final grid). After the given number of iterations it reports, on held-out
digits, the ROC AUC of the discriminator's logits, reals against fakes, at a few t (0.5: cannot tell them apart).
`t = 80` scores one-step samples from pure noise, the images FID is computed on.

    python benchmarks/discriminator_capacity.py --run path/to/train_act/output_dir \
        --setting lognormal,5 --setting lognormal,0 --setting uniform,5 --setting 80,5 --setting 80,0
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch
from diffusers import UNet2DModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402
from probe_discriminator import roc_auc  # noqa: E402

from diffusers_act import ACTDiscriminator, ConsistencyACTScheduler  # noqa: E402
from diffusers_act.evaluation import digits_tensors  # noqa: E402
from diffusers_act.models.discriminator import double_backward_attention  # noqa: E402
from diffusers_act.presets import PRESETS  # noqa: E402
from diffusers_act.training import consistency_function, sample_timestep_indices  # noqa: E402
from diffusers_act.training.config import ACTConfig  # noqa: E402
from diffusers_act.training.curricula import adversarial_weight  # noqa: E402
from diffusers_act.training.losses import discriminator_adversarial_loss, r1_penalty  # noqa: E402

PROBE_TIMES = (0.1, 1.0, 10.0, 80.0)


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


def digits_adversarial_weights() -> tuple[float, float]:
    """w and w_mid of lambda_N(m) in the digits preset (its row over `ACTConfig`'s defaults)."""
    row = {k: v for k, v in PRESETS["digits"].items() if k in ACTConfig.__dataclass_fields__}
    config = ACTConfig(**row)
    return config.adv_weight, config.adv_weight_mid


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


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished train_act.py output dir (digits)")
    parser.add_argument("--setting", type=parse_setting, action="append", required=True, help="TIMES,R1_WEIGHT")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--batch_size", type=int, default=32, help="half fakes, half reals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adv_weight", type=float, default=None, help="w of lambda (default: the digits preset's)")
    parser.add_argument("--adv_weight_mid", type=float, default=None, help="w_mid of lambda (default: the digits "
                        "preset's, or w with --adv_weight)")  # fmt: skip
    parser.add_argument("--output", default=None, help="a Markdown file to write the table into (a section)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    if not (run / "unet").is_dir() or not (run / "scheduler").is_dir():
        parser.error(f"{run} has no unet/ or scheduler/: give the output dir of a finished train_act.py run")
    unet = UNet2DModel.from_pretrained(run / "unet").eval().requires_grad_(False)
    scheduler = ConsistencyACTScheduler.from_pretrained(run / "scheduler")
    final_n = json.loads((run / "training_summary.json").read_text())["final_num_timesteps"]
    sigmas = scheduler.karras_sigmas(final_n)
    adv_weight, adv_weight_mid = digits_adversarial_weights()
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
    body = "\n".join(lines)
    print(body)
    if args.output:
        write_section(args.output, "discriminator_capacity", body)
    return body


if __name__ == "__main__":
    main()
