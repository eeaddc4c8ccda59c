# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The one source of training defaults: [`ACTConfig`] (the algorithm) and [`RunConfig`] (data, precision,
checkpoints, logging, Hub), and the command line generated from both (fields made by
`diffusers_act.training.options`) with the presets' rows of overrides (`diffusers_act.presets.PRESETS`).

Precedence, lowest first: a field's default, the preset's row, the flags the user passes. Values derived from others
(`adv_weight_mid` from `adv_weight`, `discr_learning_rate` from `learning_rate`) are derived last, unless the user
or the preset set them.
"""

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..presets import DATA_KEYS, IMPROVED_RECIPE, PRESETS, PRESETS_WITHOUT_DATA
from .augmentation import AUG_EMA, AUG_RATE, AUG_RESAMPLERS, AUG_TARGET, AUG_UPDATE_ORDERS
from .curricula import (
    INDEX_DISTRIBUTIONS,
    LOGNORMAL_P_MEAN,
    LOGNORMAL_P_STD,
    LOSS_WEIGHTINGS,
    NUM_TIMESTEPS_SCHEDULES,
    TARGET_EMA_SCHEDULES,
    num_timesteps,
)
from .losses import DIFFUSION_LOSS_MAX_SIGMA, DISTANCES, LOSS_SCALES
from .options import check_bounds, flag_fields, flag_type, option

DATA_ON_DEVICE_LIMIT = 2 * 2**30  # bytes of uint8 images that `--data_on_device auto` keeps on the device


@dataclass
class ACTConfig:
    """
    Hyperparameters of ACT training (the paper's Algorithms 1 and 2; see `docs/training.md`). Defaults are the
    paper's CIFAR-10 values with the pseudo-Huber distance, which needs no download. Each field's help text is the
    `--help` of its flag in `examples/train_act/train_act.py`.
    """

    # noise grid and parametrisation (the scheduler's config)
    sigma_min: float = option(0.002, "smallest noise level epsilon (boundary condition f(x, eps) = x)")
    sigma_max: float = option(80.0, "largest noise level T, where one-step sampling starts")
    rho: float = option(7.0, "Karras grid exponent")
    sigma_data: float = option(0.5, "the data's standard deviation in c_skip and c_out (docs/latent.md for latents)")
    noise_conditioning: str = option(
        "log", "the UNet's time input: 250 ln(sigma) as diffusers, or the raw sigma as the authors' code",
        choices=("log", "sigma"),
    )  # fmt: skip
    # curricula: N(k), mu(k), how n is drawn, the consistency weight
    total_steps: int = option(300_000, "iterations K; the curricula N(k) and mu(k) span them", flag="max_train_steps")
    s0: int = option(2, "initial grid size s0 of N(k)")
    s1: int = option(150, "final grid size s1 of N(k)")
    num_timesteps_schedule: str = option(
        "ct", "N(k): 'ct' (paper), 'official' (authors' rounding), 'doubling' (improved CT)",
        choices=NUM_TIMESTEPS_SCHEDULES,
    )  # fmt: skip
    mu0: float = option(0.9, "target EMA mu0 of mu(k) = exp(s0 ln(mu0) / N); 0 makes the teacher the current weights")
    target_ema_schedule: str = option(
        "ct", "mu(k) divides by N ('ct') or N - 1 ('official')", choices=TARGET_EMA_SCHEDULES
    )
    index_distribution: str = option("uniform", "how n is drawn", choices=INDEX_DISTRIBUTIONS)
    p_mean: float = option(LOGNORMAL_P_MEAN, "mean of ln(sigma) for --index_distribution lognormal")
    p_std: float = option(LOGNORMAL_P_STD, "standard deviation of ln(sigma) for --index_distribution lognormal")
    loss_weighting: str = option(
        "none", "consistency weight: 1, or 1 / (t_{n+1} - t_n) (improved CT)", choices=LOSS_WEIGHTINGS
    )
    normalize_loss_weight: bool = option(
        False, "divide the consistency weight by its mean over n, so that lambda keeps the paper's scale"
    )
    loss_type: str = option(
        "pseudo_huber", "distance d (cauchy: iLCT's log(1 + ||x - y||^2 / c^2), per sample)", choices=DISTANCES
    )
    huber_c: float | None = option(
        None, "scale c of both robust distances, pseudo_huber and cauchy, and the floor of --loss_scale adaptive "
        "(None: 0.00054 sqrt(C H W))",
    )  # fmt: skip
    lpips_weights: str | None = option(
        None, "a local copy of torchvision's ImageNet VGG16 weights (vgg16-397923af.pth) for --loss_type lpips on a "
        "machine without internet (None: torchvision downloads them)",
    )  # fmt: skip
    loss_scale: str = option(
        "constant", "c of pseudo_huber and cauchy: --huber_c, or adaptive (our rule): an EMA (rate 0.99) of the batch "
        "median of ||student - target||, floored at --huber_c", choices=LOSS_SCALES,
    )  # fmt: skip
    diffusion_loss_weight: float = option(
        0.0, "W of iLCT's denoising term W d(student, x_0) on the samples whose student noise level is at most "
        "--diffusion_loss_max_sigma (0: off)",
    )  # fmt: skip
    diffusion_loss_max_sigma: float = option(
        DIFFUSION_LOSS_MAX_SIGMA, "S, the largest student noise level sigma_{n+1} of the denoising term"
    )
    ot_pairing: bool = option(
        False, "pair each generator batch's noise with its images by minibatch optimal transport (scipy's "
        "linear_sum_assignment; one host-device synchronisation per iteration)",
    )  # fmt: skip
    # adversarial part: lambda_N(m), GAN loss, R1, ACT-Aug
    adv_weight: float = option(0.3, "w, lambda at the largest noise level; 0 trains plain consistency training")
    adv_weight_mid: float | None = option(None, "w_mid, lambda at the middle of the grid (None: w, a constant weight)")
    gan_loss: str = option(
        "non_saturating", "generator GAN loss: authors' softplus or the paper's log(1 - D)",
        choices=("non_saturating", "saturating"),
    )  # fmt: skip
    gp_weight: float = option(5.0, "R1 weight w_gp (gamma / 2)")
    gp_interval: int = option(16, "compute R1 every I_gp iterations")
    gp_lazy: bool = option(False, "multiply R1 by I_gp (StyleGAN2's lazy regularisation)")
    augment: bool = option(False, "ACT-Aug: adaptive augmentation driven by R1", flag="use_augment")
    aug_target: float = option(AUG_TARGET, "ACT-Aug target tau for the R1 EMA")
    aug_rate: float | None = option(
        AUG_RATE, "ACT-Aug step p_r of p per R1 update (paper); None: StyleGAN2-ADA's rule as the authors' code, "
        "images per iteration x processes x I_gp / 500,000 (0.00512 for CIFAR-10 at B = 80)",
    )  # fmt: skip
    aug_ema: float = option(AUG_EMA, "ACT-Aug EMA mu_p of R1")
    aug_p: float = option(0.0, "initial augmentation probability p")
    aug_resample: str = option(
        "ada", "how ACT-Aug resamples geometric ops: StyleGAN2-ADA's 2x-upsampled wavelet-filtered path (the paper's "
        "choice, the authors' code) or one bilinear grid_sample (faster, blurrier)", choices=AUG_RESAMPLERS,
    )  # fmt: skip
    aug_update_order: str = option(
        "official", "ACT-Aug: update the R1 EMA then p (authors' code), or p then the EMA (paper Algorithm 2)",
        choices=AUG_UPDATE_ORDERS,
    )  # fmt: skip
    discriminator_head: str = option(
        "mean", "discriminator head (`ACTDiscriminator`'s head_type): global mean + linear, or the authors' 2x2 "
        "pool + linear (their CIFAR-10 and ImageNet 64 discriminators)", choices=("mean", "pool2x2"),
    )  # fmt: skip
    discriminator_final_norm: bool = option(
        True, "GroupNorm before the discriminator's head (`ACTDiscriminator`'s final_norm; the authors' ImageNet 64 "
        "discriminator has none)",
    )  # fmt: skip
    discriminator_noise_levels: str = option(
        "shared", "D step: one noise level per fake/real pair (paper Algorithm 1) or independent draws for fakes and "
        "reals (the authors' code; same expectation, other variance)", choices=("shared", "independent"),
    )  # fmt: skip
    discriminator_block_out_channels: tuple[int, ...] | None = option(
        None, "discriminator widths (None: the generator's; the authors' CIFAR-10 D: 128 256 256 256)", nargs="+"
    )
    # optimisation (RAdam for both networks) and the evaluation EMA
    learning_rate: float = option(1e-4, "generator learning rate")
    discr_learning_rate: float | None = option(None, "discriminator learning rate (None: --learning_rate)")
    adam_beta1: float = option(0.0, "RAdam beta1 of both optimizers")
    adam_beta2: float = option(0.99, "RAdam beta2 of both optimizers")
    discr_adam_beta1: float | None = option(None, "discriminator RAdam beta1 (None: --adam_beta1)")
    discr_adam_beta2: float | None = option(None, "discriminator RAdam beta2 (None: --adam_beta2)")
    adam_weight_decay: float = option(0.0, "weight decay of both optimizers")
    adam_epsilon: float = option(1e-8, "RAdam epsilon of both optimizers")
    max_grad_norm: float | None = option(None, "clip each network's gradient norm to this (None: no clipping)")
    lr_scheduler: str = option("constant", "diffusers learning-rate schedule, e.g. constant, cosine, linear")
    lr_warmup_steps: int = option(0, "learning-rate warm-up iterations")
    use_ema: bool = option(False, "keep an evaluation EMA of the weights and ship it instead of the target network")
    ema_decay: float = option(0.9999, "decay of the evaluation EMA")
    ema_warmup: str = option(
        "ramp",
        "evaluation EMA decay: diffusers' ramp min(decay, (1 + k) / (10 + k)), or constant",
        choices=("ramp", "constant"),
    )

    def __post_init__(self):
        if self.adv_weight_mid is None:
            self.adv_weight_mid = self.adv_weight
        if self.discr_learning_rate is None:
            self.discr_learning_rate = self.learning_rate
        if self.discriminator_block_out_channels is not None:
            self.discriminator_block_out_channels = tuple(self.discriminator_block_out_channels)
        if self.discr_adam_beta1 is None:
            self.discr_adam_beta1 = self.adam_beta1
        if self.discr_adam_beta2 is None:
            self.discr_adam_beta2 = self.adam_beta2
        check_bounds(self)
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"--sigma_max ({self.sigma_max}) must be greater than --sigma_min ({self.sigma_min}).")
        if self.s1 < self.s0:
            raise ValueError(f"--s1 ({self.s1}) must be at least --s0 ({self.s0}): the grid grows from s0 to s1.")
        if self.diffusion_loss_weight > 0 and self.diffusion_loss_max_sigma <= self.sigma_min:
            raise ValueError(
                f"--diffusion_loss_max_sigma ({self.diffusion_loss_max_sigma}) must exceed --sigma_min "
                f"({self.sigma_min}): every student noise level lies above sigma_min, so the denoising term would "
                "never apply."
            )

    @property
    def adversarial(self) -> bool:
        return self.adv_weight > 0

    @property
    def final_num_timesteps(self) -> int:
        """N(K), the grid the trained model is sampled on."""
        return num_timesteps(self.total_steps, self.total_steps, self.s0, self.s1, self.num_timesteps_schedule)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RunConfig:
    """Everything about a training run that is not the algorithm: data, model, precision, checkpoints, logging."""

    preset: str | None = option(
        None, "a preset row of settings (none: digits, or the improved recipe for your own data)"
    )
    # data
    dataset_name: str | None = option(None, "a datasets Hub dataset, e.g. cifar10")
    dataset_config_name: str | None = option(None, "the dataset's configuration")
    train_data_dir: str | None = option(None, "a local image folder; class sub-folders give labels")
    image_column: str = option("image", "the image column of the dataset")
    label_column: str = option("label", "the label column of the dataset")
    allow_other_classes: bool = option(
        False, "fine-tune onto a model whose class names (id2label) differ from the data's, class id by class id"
    )
    class_label: int | None = option(
        None, "train every image as this class (e.g. a folder without class sub-folders fine-tuning a "
        "class-conditional model on one of its classes)",
    )  # fmt: skip
    cache_dir: str | None = option(None, "the datasets cache folder")
    verify_images: bool = option(False, "read every training image before training and list all unreadable files")
    max_train_samples: int | None = option(None, "train on the first N images only")
    resolution: int = option(32, "training resolution (images are resized and cropped to it)")
    center_crop: bool = option(True, "center (default) or random crop after resizing")
    random_flip: bool = option(False, "random horizontal flips")
    class_conditional: bool | None = option(None, "train on the labels (None: when the dataset has --label_column)")
    # model
    model_config_name_or_path: str | None = option(None, "a UNet2DModel config (file, folder or Hub id)")
    pretrained_model_name_or_path: str | None = option(
        None, "fine-tune: start from a saved ACTPipeline (folder or Hub id; a converted authors' checkpoint too), "
        "its UNet and, when saved beside it, its discriminator",
    )  # fmt: skip
    revision: str | None = option(None, "the Hub revision of --pretrained_model_name_or_path")
    variant: str | None = option(None, "the weights variant of --pretrained_model_name_or_path, e.g. fp16")
    gradient_checkpointing: bool = option(False, "trade compute for memory in the UNet")
    vae_name_or_path: str | None = option(None, "train in the latent space of this diffusers AutoencoderKL (a folder "
                                          "or Hub id, e.g. stabilityai/sd-vae-ft-mse; docs/latent.md)")  # fmt: skip
    vae_subfolder: str | None = option(None, "the VAE's subfolder, e.g. vae in a Stable Diffusion repository")
    vae_sample: bool = option(False, "encode each image as a draw from the VAE's Gaussian instead of its mean")
    vae_scaling_factor: float | None = option(None, "replace the VAE's scaling_factor (saved with the pipeline): "
                                              "latents of spread 0.5 train best (docs/latent.md)")  # fmt: skip
    # run
    output_dir: str = option("act-model", "where the pipeline, checkpoints and logs go")
    overwrite_output_dir: bool = option(
        False, "replace an earlier run in --output_dir (its checkpoints, model and logs are removed first)"
    )
    seed: int = option(0, "seed of the initial weights, the data order and the noise")
    train_batch_size: int = option(32, "B per process; ACT loads 2B images per iteration (B for G, B for D)")
    num_train_epochs: int | None = option(None, "train this many epochs (unless --max_train_steps is given)")
    gradient_accumulation_steps: int = option(1, "micro-batches per optimizer step")
    mixed_precision: str = option(
        "no",
        "autocast precision; auto: bf16 on a GPU that has it, else fp32 (the choice is logged and in the model card)",
        choices=("no", "fp16", "bf16", "auto"),
    )
    torch_compile: bool = option(False, "torch.compile the generator, target and discriminator (R1 stays eager)")
    torch_compile_mode: str | None = option(
        None,
        "torch.compile mode (reduce-overhead: CUDA graphs)",
        choices=("default", "reduce-overhead", "max-autotune"),
    )
    allow_tf32: bool = option(False, "TF32 matmuls and convolutions on Ampere and newer GPUs")
    dataloader_num_workers: int = option(0, "data loading worker processes")
    data_on_device: str = option(
        "auto",
        "decode the training set once and keep it on the device as uint8, flipping and shuffling there (auto: when "
        f"it is at most {DATA_ON_DEVICE_LIMIT / 2**30:g} GiB and --center_crop is on; random crops need the data "
        "loader)",
        choices=("auto", "yes", "no"),
    )
    # evaluation during training
    fid_steps: int | None = option(None, "compute FID (and precision/recall) every N iterations")
    fid_num_samples: int = option(1000, "one-step samples per evaluation")
    fid_feature_extractor: str = option(
        "inception",
        "inception (Inception-v3 FID; the metrics extra), digits (a digits classifier), or dinov2 / clip (FD_DINOv2 / "
        "fd_clip with facebook/dinov2-large / openai/clip-vit-large-patch14 from the Hub; see docs/evaluation.md)",
        choices=("inception", "digits", "dinov2", "clip"),
    )
    fid_reference_stats: str | None = option(None, "an .npz with mu/sigma to compare against instead of the data")
    inception_weights: str | None = option(None, "a local Inception weights file, for machines without internet")
    # checkpoints, logging, Hub
    checkpointing_steps: int = option(1000, "save a checkpoint every N iterations")
    checkpoints_total_limit: int | None = option(None, "keep only the newest N checkpoints")
    resume_from_checkpoint: str | None = option(None, "a checkpoint folder, or 'latest' in --output_dir")
    validation_steps: int = option(1000, "save a sample grid every N iterations")
    num_validation_images: int = option(16, "images per sample grid")
    logging_steps: int = option(10, "log every N iterations")
    report_to: str = option("tensorboard", "tensorboard, wandb, all or none")
    tracker_project_name: str = option("train_act", "the trackers' project (run) name")
    logging_dir: str = option("logs", "tracker folder inside --output_dir")
    push_to_hub: bool = option(False, "upload the trained pipeline to the Hub")
    hub_model_id: str | None = option(None, "the Hub repo (default: the name of --output_dir)")
    hub_token: str | None = option(None, "a Hub token (never written anywhere)")
    hub_private_repo: bool = option(False, "create the Hub repo as private")
    debug: bool = option(False, "show the full traceback of an error instead of one line")
    # not flags: how the values were chosen
    explicit: dict = field(default_factory=dict, metadata={"flag": False})

    def __post_init__(self):
        check_bounds(self)
        if self.class_label is not None and self.class_conditional is False:
            raise ValueError("--class_label trains class-conditionally: leave out --no-class_conditional.")
        if self.torch_compile_mode is not None and not self.torch_compile:
            raise ValueError(f"--torch_compile_mode {self.torch_compile_mode} needs --torch_compile.")
        if self.data_on_device == "yes" and not self.center_crop:
            raise ValueError(
                "--data_on_device yes keeps center-cropped images; random crops (--no-center_crop) need the data "
                "loader: pass --data_on_device no (or auto)."
            )
        if self.vae_name_or_path is None and (self.vae_subfolder or self.vae_sample or self.vae_scaling_factor):
            raise ValueError("--vae_subfolder, --vae_sample and --vae_scaling_factor describe a VAE: pass "
                             "--vae_name_or_path as well.")  # fmt: skip
        if self.vae_name_or_path is not None and not self.center_crop:
            raise ValueError(
                "A latent run encodes each image once, center-cropped: random crops (--no-center_crop) would need a "
                "new encoding every epoch. Leave out --no-center_crop with --vae_name_or_path."
            )


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The command line of `examples/train_act/train_act.py`, one flag per field of [`RunConfig`] and
    [`ACTConfig`], with help texts that give the default and where presets differ from it. A flag that is not given
    stays absent from the parsed namespace (so presets can fill it and the model card lists what the user set)."""
    parser = argparse.ArgumentParser(
        description=description,
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for title, cls in (("run", RunConfig), ("ACT", ACTConfig)):
        group = parser.add_argument_group(title)
        for name, f in flag_fields(cls).items():
            kind = flag_type(f)
            presets = ", ".join(f"{p}: {row[name]}" for p, row in PRESETS.items() if name in row)
            help_text = f"{f.metadata['help']} (default: {f.default}" + (f"; {presets})" if presets else ")")
            if name == "preset":
                group.add_argument("--preset", choices=sorted(PRESETS), help=help_text)
            elif kind is bool:
                group.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, help=help_text)
            else:
                nargs = f.metadata.get("nargs")
                group.add_argument(
                    f"--{name}", type=kind, choices=f.metadata.get("choices"), nargs=nargs, help=help_text
                )
    return parser


def resolve_configs(explicit: dict) -> tuple[RunConfig, ACTConfig]:
    """
    The run and algorithm configs from the flags the user gave (flag name -> value): field defaults, then the
    preset's row, then `explicit`. Without `--preset`, the digits preset when no data is given, else
    [`IMPROVED_RECIPE`] for the user's data.
    """
    own_data = bool(explicit.get("dataset_name") or explicit.get("train_data_dir"))
    preset = explicit.get("preset") or (None if own_data else "digits")
    row = dict(PRESETS[preset]) if preset else dict(IMPROVED_RECIPE)
    if own_data:  # the preset's Hub dataset and its column names do not apply to the user's data
        row = {k: v for k, v in row.items() if k not in DATA_KEYS}
    if preset in PRESETS_WITHOUT_DATA and not own_data:
        raise ValueError(f"--preset {preset} trains on your images: pass --train_data_dir or --dataset_name.")
    values = {**row, **explicit, "preset": preset}
    if values.get("dataset_name") and values.get("train_data_dir"):
        raise ValueError("Pass only one of --dataset_name and --train_data_dir.")
    run_fields, act_fields = flag_fields(RunConfig), flag_fields(ACTConfig)
    run = RunConfig(**{f.name: values[k] for k, f in run_fields.items() if k in values})
    run.explicit = {k: v for k, v in explicit.items() if k != "hub_token"}
    config = ACTConfig(**{f.name: values[k] for k, f in act_fields.items() if k in values})
    if config.adversarial:
        check_even_batch(run.train_batch_size)
    return run, config


def check_even_batch(batch_size: int) -> None:
    """ACT's discriminator batch is half generated, half real images: an odd batch is an error."""
    if batch_size % 2:
        raise ValueError(
            f"--train_batch_size {batch_size} is odd: ACT's discriminator batch is half generated, half real images, "
            "so B must be even."
        )


def parse_args(argv: list[str] | None = None, description: str | None = None) -> tuple[RunConfig, ACTConfig]:
    """Parses the training script's command line into a [`RunConfig`] and an [`ACTConfig`]."""
    return resolve_configs(vars(build_parser(description).parse_args(argv)))


def run_command_line(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """
    Runs a script's `main(argv)` so that a user's mistake (a bad flag, a missing file, data that cannot be read, a
    stopped run) prints one line, `error: ...`, and exits with status 1. `--debug` or `DIFFUSERS_ACT_DEBUG=1` shows
    the traceback instead.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except (ValueError, OSError, ImportError, TrainingError) as error:
        if "--debug" in argv or os.environ.get("DIFFUSERS_ACT_DEBUG", "") not in ("", "0"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {message} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(1)


class TrainingError(RuntimeError):
    """A run that stopped for a reason the user can act on (a non-finite loss, a failed upload)."""


def resolve_mixed_precision(run: RunConfig, device: str | torch.device | None = None) -> tuple[str, str]:
    """
    The precision to train in on `device` (default: where accelerate will train, a CUDA GPU unless there is none or
    `ACCELERATE_USE_CPU` is set), and a note for the log and the model card. A precision the device cannot run is an
    error when the user asked for it (`--mixed_precision`), and falls back to fp32 when a preset chose it.
    """
    if device is None:
        use_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        device = (
            "cpu"
            if use_cpu
            else "cuda"
            if torch.cuda.is_available()
            else "mps"
            if torch.backends.mps.is_available()
            else "cpu"
        )
    device = torch.device(device)
    if run.mixed_precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16", f"--mixed_precision auto chose bf16 ({torch.cuda.get_device_name(device)} supports it)"
        return "no", f"--mixed_precision auto chose fp32 (no bf16 GPU: training on {device.type})"
    problem = None
    if run.mixed_precision == "fp16" and device.type == "cpu":
        problem = "fp16 needs a GPU (on the CPU it would silently train in fp32); use bf16 or no"
    elif run.mixed_precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        problem = f"{torch.cuda.get_device_name(device)} has no bf16; use fp16 or no"
    if problem is None:
        return run.mixed_precision, ""
    if "mixed_precision" in run.explicit:
        raise ValueError(f"--mixed_precision {run.mixed_precision}: {problem}.")
    return "no", f"the {run.preset} preset's {run.mixed_precision} cannot run on {device.type}, so this run used fp32"


def total_steps_for(run: RunConfig, config: ACTConfig, batches_per_epoch: int) -> ACTConfig:
    """
    The config with K set from `--num_train_epochs` when the user gave it and not `--max_train_steps` (as in
    diffusers' examples, an explicit `--max_train_steps` wins), so the curricula and the final grid span the
    iterations that actually run.
    """
    if run.num_train_epochs is None or "max_train_steps" in run.explicit:
        return config
    steps = max(1, run.num_train_epochs * batches_per_epoch // run.gradient_accumulation_steps)
    return dataclasses.replace(config, total_steps=steps)
