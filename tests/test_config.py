# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The one source of training defaults: ACTConfig / RunConfig, presets as rows of overrides, the generated flags."""

import math

import pytest
import torch

from diffusers_act.training import IMPROVED_RECIPE, PRESETS, ACTConfig, RunConfig, build_parser, parse_args
from diffusers_act.training.config import flag_fields, total_steps_for

ACT_FLAGS, RUN_FLAGS = flag_fields(ACTConfig), flag_fields(RunConfig)


def value_of(run, config, flag):
    fields = ACT_FLAGS if flag in ACT_FLAGS else RUN_FLAGS
    return getattr(config if flag in ACT_FLAGS else run, fields[flag].name)


def other_value(flag, current):
    """A command-line value for `flag` that differs from its `current` value; None for a boolean flag."""
    f = ACT_FLAGS.get(flag) or RUN_FLAGS[flag]
    if f.metadata.get("choices"):
        return next(c for c in f.metadata["choices"] if c != current)
    if f.metadata.get("nargs"):
        return [str(v + 8) for v in current or (16, 32)]
    if f.type in (bool, bool | None):
        return None  # given as --flag / --no-flag
    if f.type in (int, int | None):
        return str((current or 0) + 4)  # even: ACT needs an even batch
    if f.type in (float, float | None):  # a value below 1 stays below 1 (probabilities, betas, EMA decays)
        value = (current or 0.0) * 2 + 0.125
        return str(value if value < 1 or (current or 0.0) >= 1 else (current or 0.0) / 2 + 0.0625)
    return {"lr_scheduler": "cosine", "report_to": "none"}.get(flag, f"user-{flag}")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_an_explicit_flag_beats_every_preset_value_for_every_option(preset):
    flags = [k for k in ACT_FLAGS] + [k for k in PRESETS[preset] if k in RUN_FLAGS]
    assert set(PRESETS[preset]) <= set(flags) and len(flags) > 30
    for flag in flags:
        run, config = parse_args(["--preset", preset])
        current = value_of(run, config, flag)
        value = other_value(flag, current)
        argv = [f"--{flag}" if current is not True else f"--no-{flag}"] if value is None else [f"--{flag}", value]
        argv = [argv[0], *value] if isinstance(value, list) else argv
        run, config = parse_args(["--preset", preset, *argv])
        got = value_of(run, config, flag)
        if isinstance(value, list):
            expected = tuple(int(v) for v in value)
        else:
            expected = (not current) if value is None else type(got)(value) if got is not None else value
        assert got == expected and got != current, (preset, flag, current, got)
        assert run.explicit[flag] in (got, list(got) if isinstance(got, tuple) else got)


def test_derived_defaults_follow_the_users_value_after_the_preset():
    # the bug this fixes: --adv_weight kept w_mid = 0.3 and --learning_rate kept D's rate at the preset's value
    run, config = parse_args(["--preset", "digits", "--adv_weight", "0.45", "--learning_rate", "2e-4"])
    assert (config.adv_weight, config.adv_weight_mid) == (0.45, 0.45)
    assert config.learning_rate == config.discr_learning_rate == 2e-4
    # a preset's own derived value is kept where it differs from the derivation (ImageNet 64: w_mid 0.2)
    _, config = parse_args(["--preset", "imagenet64", "--adv_weight", "0.45"])
    assert (config.adv_weight, config.adv_weight_mid) == (0.45, 0.2)
    # an explicit derived value wins over the derivation
    _, config = parse_args(["--preset", "cifar10", "--learning_rate", "2e-4", "--discr_learning_rate", "1e-5"])
    assert (config.learning_rate, config.discr_learning_rate) == (2e-4, 1e-5)
    _, config = parse_args(["--adv_weight", "0.6", "--adv_weight_mid", "0.1"])
    assert (config.adv_weight, config.adv_weight_mid) == (0.6, 0.1)


def test_presets_set_a_derived_value_only_where_it_differs_from_the_derivation():
    for name, row in PRESETS.items():
        _, config = parse_args(["--preset", name])
        if "adv_weight_mid" in row:
            assert row["adv_weight_mid"] != config.adv_weight, name
        if "discr_learning_rate" in row:
            assert row["discr_learning_rate"] != config.learning_rate, name
    assert PRESETS["imagenet64"]["adv_weight_mid"] == 0.2


def test_preset_values_and_field_defaults():
    run, config = parse_args(["--preset", "cifar10"])
    assert (run.dataset_name, run.image_column, run.resolution, run.train_batch_size) == ("cifar10", "img", 32, 80)
    assert (config.total_steps, config.loss_type, config.augment, config.noise_conditioning) == (
        300_000, "lpips", True, "sigma",
    )  # fmt: skip
    assert (config.s0, config.s1, config.mu0, config.adv_weight, config.adv_weight_mid) == (2, 150, 0.9, 0.3, 0.3)
    assert config.final_num_timesteps == 150  # N(K) of the authors' schedule with s1 = 150 (the paper's: 151)
    run, config = parse_args([])  # no data, no preset: the digits quickstart
    assert run.preset == "digits" and config.mu0 == 0.0 and config.index_distribution == "lognormal"
    assert config.final_num_timesteps == 161  # the doubling schedule ends at s1 + 1


def test_own_data_without_a_preset_gets_the_improved_recipe_and_no_hub_columns():
    run, config = parse_args(["--train_data_dir", "images"])
    assert run.preset is None and run.class_conditional is None  # labels decided by the data
    for flag, value in IMPROVED_RECIPE.items():
        assert value_of(run, config, flag) == value, flag
    # the README's own-images example: the cifar10 preset's Hub column names apply only to its Hub dataset
    run, _ = parse_args(["--preset", "cifar10", "--train_data_dir", "images"])
    assert (run.dataset_name, run.image_column, run.train_data_dir) == (None, "image", "images")
    run, _ = parse_args(["--preset", "cifar10", "--dataset_name", "me/cats", "--image_column", "photo"])
    assert (run.dataset_name, run.image_column) == ("me/cats", "photo")
    with pytest.raises(ValueError, match="only one of --dataset_name and --train_data_dir"):
        parse_args(["--dataset_name", "a", "--train_data_dir", "b"])


def test_every_flag_has_help_with_its_default_and_the_token_is_never_kept():
    text = " ".join(build_parser().format_help().split())
    for flag, f in {**RUN_FLAGS, **ACT_FLAGS}.items():
        metavar = "" if f.type in (bool, bool | None) else f" {flag.upper()}"
        if f.metadata.get("nargs"):
            metavar = f" {flag.upper()} [{flag.upper()} ...]"
        choices = sorted(PRESETS) if flag == "preset" else f.metadata.get("choices")
        if choices:
            metavar = " {" + ",".join(choices) + "}"
        usage = f"--{flag}, --no-{flag}" if not metavar else f"--{flag}{metavar}"
        assert f"{usage} {' '.join(f.metadata['help'].split())} (default: {f.default}" in text, flag
    assert "--total_steps" not in text
    # presets that differ are named in the help
    assert "span them (default: 300000; cifar10: 300000, imagenet64: 400000, digits: 2000)" in text
    run, _ = parse_args(["--hub_token", "hf_secret"])
    assert run.hub_token == "hf_secret" and "hub_token" not in run.explicit


def test_num_train_epochs_sets_the_iterations_the_curricula_span():
    run, config = parse_args(["--num_train_epochs", "3"])
    assert total_steps_for(run, config, batches_per_epoch=7).total_steps == 21
    run, config = parse_args(["--num_train_epochs", "3", "--gradient_accumulation_steps", "2"])
    assert total_steps_for(run, config, batches_per_epoch=7).total_steps == 10
    run, config = parse_args(["--num_train_epochs", "3", "--max_train_steps", "5"])  # explicit K wins
    assert total_steps_for(run, config, batches_per_epoch=7).total_steps == 5


def test_bad_config_values_are_explained():
    with pytest.raises(ValueError, match="gp_interval"):
        ACTConfig(gp_interval=0)
    with pytest.raises(ValueError, match="max_train_steps"):
        parse_args(["--max_train_steps", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--loss_type", "l1"])  # not a choice


def test_a_precision_the_device_cannot_run_is_an_error_if_asked_for_and_a_fallback_if_preset():
    from diffusers_act.training.config import resolve_mixed_precision

    run, _ = parse_args(["--preset", "imagenet64", "--train_data_dir", "images"])  # the preset chose fp16
    precision, note = resolve_mixed_precision(run, "cpu")
    assert precision == "no" and note == "the imagenet64 preset's fp16 cannot run on cpu, so this run used fp32"
    run, _ = parse_args(["--mixed_precision", "fp16"])
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        resolve_mixed_precision(run, "cpu")
    run, _ = parse_args(["--mixed_precision", "bf16"])
    assert resolve_mixed_precision(run, "cpu") == ("bf16", "")  # CPU autocast runs bf16


def test_mixed_precision_auto_is_bf16_on_a_bf16_gpu_else_fp32(monkeypatch):
    from diffusers_act.training.config import resolve_mixed_precision

    run, _ = parse_args(["--mixed_precision", "auto"])
    assert resolve_mixed_precision(run, "cpu") == (
        "no",
        "--mixed_precision auto chose fp32 (no bf16 GPU: training on cpu)",
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100")
    assert resolve_mixed_precision(run, "cuda") == (
        "bf16",
        "--mixed_precision auto chose bf16 (NVIDIA H100 supports it)",
    )
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation
    )  # emulated only (a V100, a T4)
    assert resolve_mixed_precision(run, "cuda")[0] == "no"


def test_speed_flags_that_cannot_work_are_errors_before_any_work():
    with pytest.raises(ValueError, match="--torch_compile_mode reduce-overhead needs --torch_compile"):
        parse_args(["--torch_compile_mode", "reduce-overhead"])
    with pytest.raises(ValueError, match=r"random crops \(--no-center_crop\) need the data loader"):
        parse_args(["--data_on_device", "yes", "--no-center_crop"])
    run, _ = parse_args(["--torch_compile", "--torch_compile_mode", "reduce-overhead", "--data_on_device", "no"])
    assert run.torch_compile and run.torch_compile_mode == "reduce-overhead" and run.data_on_device == "no"


def test_paper_presets_follow_the_authors_code_where_it_differs_from_the_paper():
    """The code behind the paper's FIDs rounds N(k) (final N 150 / 200, where the paper's ceiling gives 151 / 201),
    divides mu(k) by N - 1, steps p by ADA's rule and draws the D step's noise levels for reals on their own."""
    from diffusers_act.training import target_ema_decay

    for preset, final_n in (("cifar10", 150), ("imagenet64", 200)):
        _, config = parse_args(["--preset", preset])
        assert config.final_num_timesteps == final_n
        assert config.discriminator_noise_levels == "independent"
        assert target_ema_decay(final_n, 2, config.mu0, config.target_ema_schedule) == pytest.approx(
            math.exp(2 * math.log(config.mu0) / (final_n - 1)), rel=1e-12
        )
    _, config = parse_args(["--preset", "cifar10"])
    assert config.augment and config.aug_rate is None  # ADA's rule, set from the run's batch by the trainer
    _, config = parse_args(["--preset", "cifar10", "--aug_rate", "0.05"])
    assert config.aug_rate == 0.05  # the paper's step, set directly
    _, config = parse_args(["--preset", "cifar10", "--num_timesteps_schedule", "ct"])
    assert config.final_num_timesteps == 151  # the paper's formula stays an option


def test_a_paper_preset_with_another_global_batch_is_warned_about():
    from diffusers_act.presets import paper_batch_note

    assert paper_batch_note("imagenet64", 320, 4) is None and paper_batch_note("cifar10", 80, 1) is None
    assert paper_batch_note("digits", 7, 3) is None and paper_batch_note(None, 7, 3) is None
    assert paper_batch_note("imagenet64", 320, 1) == (
        "The imagenet64 preset follows the paper's global batch of 1280 images per iteration; this run has 320 "
        "(--train_batch_size 320 x 1 process(es) x 1 accumulation step(s)). The paper's FID is measured at its batch: "
        "match it with more processes or --gradient_accumulation_steps."
    )
    assert paper_batch_note("imagenet64", 320, 2, accumulation=2) is None
