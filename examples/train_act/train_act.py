#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Train a one-step image generator with Adversarial Consistency Training (ACT).

    python examples/train_act/train_act.py                                  # digits, CPU, a few minutes
    accelerate launch examples/train_act/train_act.py --preset cifar10      # the paper's CIFAR-10 run
    accelerate launch examples/train_act/train_act.py --train_data_dir DIR --resolution 32   # your own images

This script is glue: parse, set up, one loop, save. Every default lives in `diffusers_act.training.config`, every
formula in `diffusers_act.training` and `ConsistencyACTScheduler`, and the reusable pieces (data, checkpoints,
monitoring, Hub) in `diffusers_act.training` too.
"""

import json
import logging
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, ProjectConfiguration, set_seed
from diffusers import UNet2DModel
from torch.profiler import record_function
from tqdm.auto import tqdm

from diffusers_act import ACTPipeline
from diffusers_act.presets import UNET_PRESETS, paper_batch_note, unet_config
from diffusers_act.training import (
    ACTTrainer,
    CheckpointManager,
    JsonlLog,
    LogWindow,
    SampleEvaluator,
    log_image,
    make_distance,
    parse_args,
    process_fingerprints,
    push_to_hub,
    sample_grid,
    write_model_card,
)
from diffusers_act.training.checkpoints import nonfinite_networks
from diffusers_act.training.config import TrainingError, resolve_mixed_precision, run_command_line, total_steps_for
from diffusers_act.training.data import TrainingData
from diffusers_act.training.hub import describe_run, prepare_hub_repo, run_card_fields
from diffusers_act.training.latents import check_latent_run, check_latent_scale, load_vae, vae_scale_factor
from diffusers_act.training.losses import check_loss_scale
from diffusers_act.training.outputs import RECORD, STAGING, check_output_dir, claim_output_dir, save_final
from diffusers_act.training.pretrained import fine_tune_setup

logger = get_logger(__name__)


def halves(batch: torch.Tensor | None, size: int) -> tuple:
    """The generator's part (the first `size`) and the discriminator's part (the rest) of a loaded batch."""
    return (None, None) if batch is None else (batch[:size], batch[size:])


def main(argv: list[str] | None = None) -> Path:
    run, config = parse_args(argv, description=__doc__)
    output_dir = Path(run.output_dir)
    precision, precision_note = resolve_mixed_precision(run)  # checked before any work
    accelerator = Accelerator(
        # optimizer steps every N micro-batches, not also at each epoch's end: iteration k is micro-batches
        # k N .. k N + N - 1 on both data paths, which is where a resumed run starts
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=run.gradient_accumulation_steps, sync_with_dataloader=False
        ),
        mixed_precision=precision,
        log_with=None if run.report_to == "none" else run.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / run.logging_dir)
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=run.seed, non_blocking=True),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if run.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions once

    # checks before any work: the output folder, the Hub
    if config.loss_type == "lpips":  # its weights (a download, or --lpips_weights) are checked before any work
        make_distance("lpips", lpips_weights=config.lpips_weights)
    check_loss_scale(config.loss_scale, config.loss_type)
    global_batch = run.train_batch_size * accelerator.num_processes * run.gradient_accumulation_steps
    for note in (precision_note, paper_batch_note(run.preset, run.train_batch_size, accelerator.num_processes,
                                                  run.gradient_accumulation_steps)):  # fmt: skip
        if note:
            logger.warning(note)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if accelerator.device.type == "cpu" and accelerator.num_processes == 1 and torch.get_num_threads() < cores:
        logger.warning(
            f"Training on {torch.get_num_threads()} of {cores} CPU cores (OMP_NUM_THREADS; `accelerate launch` sets "
            "1 unless given --num_cpu_threads_per_process). `python train_act.py` uses them all."
        )
    if accelerator.num_processes == 1 and os.environ.get("MASTER_ADDR") and accelerator.device.type == "cpu":
        logger.warning(
            "One process, although `accelerate launch` was asked for several: with --cpu it starts one whatever "
            "--num_processes says. For N CPU processes: ACCELERATE_USE_CPU=true accelerate launch --multi_gpu "
            "--num_processes N ... (gloo)."
        )
    earlier_run = check_output_dir(output_dir, run.resume_from_checkpoint, run.overwrite_output_dir, run.logging_dir)
    repo_id = None
    if run.push_to_hub and accelerator.is_main_process:
        repo_id = prepare_hub_repo(run.hub_model_id or output_dir.name, run.hub_token, run.hub_private_repo)
    checkpoints = CheckpointManager(output_dir, accelerator, run.checkpoints_total_limit)
    resume = checkpoints.resolve(run.resume_from_checkpoint)

    # data (images in [-1, 1], or their latents with a VAE; labels when class-conditional) and the generator: a
    # pretrained one fixes the shapes
    vae = load_vae(run)  # --vae_name_or_path, or the VAE of a latent pipeline being fine-tuned
    if vae is not None:
        check_latent_run(run, config, vae)
    data = TrainingData(run, accelerator)
    pretrained = run.pretrained_model_name_or_path is not None
    if pretrained:  # its time input, noise range and resolution carry over; the data's classes map onto its own
        unet, discriminator, config = fine_tune_setup(run, config, data, vae)
    else:
        given = run.model_config_name_or_path  # a config file, or the preset's UNet, fixes the channels
        fixed = UNet2DModel.load_config(given) if given else UNET_PRESETS[run.preset] if run.preset else {}
        size, channels = run.resolution, fixed.get("in_channels") or data.channels
        if vae is not None:  # the UNet makes latents: the VAE's channels, at its downsampled size
            size, channels = run.resolution // vae_scale_factor(vae), vae.config.latent_channels
        unet_kwargs = unet_config(run.preset, size, channels, data.num_classes, given)
    model_config = unet.config if pretrained else unet_kwargs
    checkpoints.data = data  # its class names are saved with each checkpoint
    # ACT loads B images for the generator step and B for the discriminator's (B/2 generated, B/2 real)
    data.prepare(model_config, run.train_batch_size * (2 if config.adversarial else 1), vae)
    check_latent_scale(getattr(data, "decoded", {}), vae)  # warns when the latents' spread is far from 0.5
    evaluator = None
    if run.fid_steps and accelerator.is_main_process:
        evaluator = SampleEvaluator(
            None if run.fid_reference_stats else data.reference_images(), run.fid_feature_extractor,
            run.fid_num_samples, run.resolution, run.seed, accelerator.device, run.inception_weights,
            run.fid_reference_stats,
        )  # fmt: skip
    config = total_steps_for(run, config, data.batches_per_epoch)

    # models: identical initial weights on every process; the trainer builds target, D, EMA and optimizers
    set_seed(run.seed)
    if not pretrained:
        unet, discriminator = UNet2DModel(**unet_kwargs), None
    if run.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    trainer = ACTTrainer.build(unet, config, accelerator, discriminator=discriminator)
    if run.torch_compile:
        trainer.compile(None if run.torch_compile_mode in (None, "default") else run.torch_compile_mode)
    description = describe_run(run, config, global_batch, (discriminator is not None) if pretrained else None)
    logger.info(
        f"{'; '.join(description)}, {model_config['in_channels']} channel(s), "
        f"{'class-conditional' if data.conditional else 'unconditional'}; {data.describe()}, "
        f"{data.batches_per_epoch} batches per process per epoch, {accelerator.num_processes} process(es); "
        f"{config.total_steps} iterations, {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M generator parameters"
    )

    step = 0
    if resume is not None:
        step = checkpoints.load(resume, trainer)["step"]
        logger.info(f"Resumed from {resume} at iteration {step}")
    else:
        set_seed(run.seed, device_specific=True)  # different noise and augmentation on each process
    log = JsonlLog(output_dir / "logs.jsonl", accelerator.is_main_process, resume_step=step if resume else None)
    # every check has passed: replace the earlier run (--overwrite_output_dir) and record what this run writes
    if accelerator.is_main_process:
        claim_output_dir(output_dir, earlier_run, run.logging_dir)
        values = {**vars(run), **config.to_dict()}
        hparams = {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) and k != "hub_token"}
        try:
            accelerator.init_trackers(run.tracker_project_name, config=hparams)
        except Exception as error:  # e.g. --report_to tensorboard without tensorboard installed
            logger.warning(
                f"Could not start the --report_to {run.report_to} tracker ({error}); logging to {log.path}."
            )
    accelerator.wait_for_everyone()

    start = step * run.gradient_accumulation_steps
    batches = data.batches(start)
    progress = tqdm(total=config.total_steps, initial=step, disable=not accelerator.is_local_main_process)
    progress.set_description("ACT" if config.adversarial else "CT")
    # logged values stay on the device until a log or a checkpoint, so iterations do not wait for the device
    metrics, window = None, LogWindow(accelerator)
    window_images, window_start, checked_step = 0, time.perf_counter(), step
    while step < config.total_steps:
        # draw a batch: B images for the generator step, B more for the discriminator step (B/2 fakes, B/2 reals);
        # then one iteration: generator step, target and EMA updates, discriminator step (ranges for torch.profiler)
        with record_function("act.iteration"):
            with record_function("act.data"):
                epoch, batch = next(batches)
            images, d_images = halves(batch["pixel_values"], run.train_batch_size)
            labels, d_labels = halves(batch.get("labels"), run.train_batch_size)
            window.add(trainer.train_step(images, step, labels, d_images, d_labels))
        window_images += batch["pixel_values"].shape[0] * accelerator.num_processes
        if not accelerator.sync_gradients:
            continue  # a micro-batch of gradient accumulation
        step += 1
        progress.update(1)

        # before a log or a checkpoint: every loss since the last check, and the weights, must be finite
        logging_step = step % run.logging_steps == 0 or step == config.total_steps
        if logging_step or step % run.checkpointing_steps == 0:
            if not window.all_finite(trainer.unet, *([trainer.discriminator] if config.adversarial else [])):
                raise TrainingError(
                    f"Non-finite loss or weights between iterations {checked_step} and {step}. Stopping without "
                    f"saving; the last good checkpoint is {checkpoints.latest() or 'none was written'}. Lower "
                    "--learning_rate / --discr_learning_rate (or use fp32) and resume with --resume_from_checkpoint "
                    "latest."
                )
            checked_step = step
        # log
        if logging_step:
            logs = {**window.means(), "lr": trainer.lr_schedulers[0].get_last_lr()[0]}
            window.reset()
            logs["images_per_second"] = window_images / (time.perf_counter() - window_start)
            window_images, window_start = 0, time.perf_counter()
            if accelerator.device.type == "cuda":
                logs["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            progress.set_postfix(loss_ct=f"{logs['loss_ct']:.4g}", N=int(logs["num_timesteps"]))
            accelerator.log(logs, step=step)
            log.write(step, logs)
        # checkpoint
        if step % run.checkpointing_steps == 0:
            checkpoints.save(step, trainer, epoch=epoch)
        # sample
        if step % run.validation_steps == 0 and accelerator.is_main_process:
            grid = sample_grid(
                trainer.shipped_unet(), trainer.scheduler, run.num_validation_images, run.seed, data.num_classes, vae
            )
            (output_dir / "samples").mkdir(exist_ok=True)
            grid.save(output_dir / "samples" / f"step-{step:07d}.png")
            log_image(accelerator, "samples (top: 1 step, bottom: 2 steps)", grid, step)
        # evaluate
        if run.fid_steps and (step % run.fid_steps == 0 or step == config.total_steps):
            started = time.perf_counter()
            if accelerator.is_main_process:
                metrics = evaluator(trainer.shipped_unet(), trainer.scheduler, vae)
                logger.info(f"Iteration {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                timing = {"eval_seconds": time.perf_counter() - started}  # not part of training's images/s
                accelerator.log({**metrics, **timing}, step=step)
                log.write(step, {**metrics, **timing})
            accelerator.wait_for_everyone()
            window_start += time.perf_counter() - started
    progress.close()
    batches.close()  # end the data iterator now, on every process alike, not at teardown after the process group

    # save: the pipeline (the network to ship and the scheduler), the discriminator, samples and the model card
    accelerator.wait_for_everyone()
    unwrap = accelerator.unwrap_model
    networks = [unwrap(trainer.unet), trainer.target_unet] + (
        [unwrap(trainer.discriminator)] if config.adversarial else []
    )
    fingerprints = process_fingerprints(accelerator, networks, float(trainer.augment.p) if trainer.augment else 0.0)
    if nonfinite_networks(trainer):  # the same weights on every process: all stop alike, nothing overwritten
        raise TrainingError(f"Final weights not finite; nothing saved. Last checkpoint: {checkpoints.latest()}.")
    if accelerator.is_main_process:
        final_unet, scheduler = trainer.shipped_unet(), trainer.scheduler
        final_discriminator = unwrap(trainer.discriminator) if config.adversarial else None
        summary = {
            "iterations": step,
            "num_processes": accelerator.num_processes,
            "final_num_timesteps": config.final_num_timesteps,
            "process_fingerprints": fingerprints,
        }
        precision_used = {"no": "fp32"}.get(precision, precision) + (f" ({precision_note})" * bool(precision_note))
        card = run_card_fields(
            run, config, trainer, data, description, iterations=step, metrics=metrics, precision=precision_used,
            repo_id=repo_id or str(output_dir),  # what the card's snippets load, as written
            title=output_dir.resolve().name,  # not the staging folder's
        )  # fmt: skip

        def write_final(folder: Path) -> None:  # into a staging folder, moved in when complete (`save_final`)
            (folder / "training_summary.json").write_text(json.dumps(summary, indent=2))
            ACTPipeline(unet=final_unet, scheduler=scheduler, vae=vae, id2label=data.id2label).save_pretrained(folder)
            if final_discriminator is not None:
                final_discriminator.save_pretrained(folder / "discriminator")
            grid = sample_grid(final_unet, scheduler, run.num_validation_images, run.seed, data.num_classes, vae)
            grid.save(folder / "samples.png")
            write_model_card(folder, **card)

        save_final(output_dir, write_final, needed_bytes=sum(t.nbytes for t in final_unet.state_dict().values()))
        logger.info(f"Saved the pipeline to {output_dir}")
        if run.push_to_hub:
            ignore = ["checkpoint-*/**", ".checkpoint-*/**", f"{run.logging_dir}/**", "logs.jsonl", RECORD, STAGING]
            push_to_hub(output_dir, repo_id, run.hub_token, run.hub_private_repo, ignore)
            logger.info(f"Pushed to https://huggingface.co/{repo_id}")
    # every process waits for the main one to finish saving, then drops the DDP-wrapped models before the process
    # group is destroyed: a DDP reducer freed after its gloo group can deadlock in the group's destructor
    accelerator.wait_for_everyone()
    del trainer
    accelerator.free_memory()
    accelerator.end_training()
    return output_dir


if __name__ == "__main__":
    run_command_line(main)
