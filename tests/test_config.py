# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The one source of training defaults: ACTConfig / RunConfig, presets as rows of overrides, the generated flags."""

import dataclasses
import math
import re

import pytest
import torch

from diffusers_act.presets import PRESETS_WITHOUT_DATA
from diffusers_act.training import IMPROVED_RECIPE, PRESETS, ACTConfig, RunConfig, build_parser, parse_args
from diffusers_act.training.config import flag_fields, total_steps_for

ACT_FLAGS, RUN_FLAGS = flag_fields(ACTConfig), flag_fields(RunConfig)



def preset_args(preset: str) -> list[str]:
    """`--preset NAME`, with the image folder a preset without a dataset of its own needs."""
    return ["--preset", preset, *(["--train_data_dir", "images"] if preset in PRESETS_WITHOUT_DATA else [])]


def test_a_preset_without_a_dataset_asks_for_one():
    with pytest.raises(ValueError, match="--preset latent256 trains on your images: pass --train_data_dir"):
        parse_args(["--preset", "latent256"])
    run, _ = parse_args(["--preset", "latent256", "--train_data_dir", "images"])
    assert run.vae_name_or_path == PRESETS["latent256"]["vae_name_or_path"] and run.resolution == 256

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
        run, config = parse_args(preset_args(preset))
        current = value_of(run, config, flag)
        value = other_value(flag, current)
        argv = [f"--{flag}" if current is not True else f"--no-{flag}"] if value is None else [f"--{flag}", value]
        argv = [argv[0], *value] if isinstance(value, list) else argv
        run, config = parse_args([*preset_args(preset), *argv])
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
    # a preset's own derived value is kept where it differs from the derivation (ImageNet 64's w_mid)
    _, config = parse_args(["--preset", "imagenet64", "--adv_weight", "0.45"])
    assert (config.adv_weight, config.adv_weight_mid) == (0.45, PRESETS["imagenet64"]["adv_weight_mid"])
    # an explicit derived value wins over the derivation
    _, config = parse_args(["--preset", "cifar10", "--learning_rate", "2e-4", "--discr_learning_rate", "1e-5"])
    assert (config.learning_rate, config.discr_learning_rate) == (2e-4, 1e-5)
    _, config = parse_args(["--adv_weight", "0.6", "--adv_weight_mid", "0.1"])
    assert (config.adv_weight, config.adv_weight_mid) == (0.6, 0.1)


# a value left unset (None) is derived from another option's
DERIVED = {
    "adv_weight_mid": "adv_weight",
    "discr_learning_rate": "learning_rate",
    "discr_adam_beta1": "adam_beta1",
    "discr_adam_beta2": "adam_beta2",
}


def test_presets_set_a_derived_value_only_where_it_differs_from_the_derivation():
    for name, row in PRESETS.items():
        _, config = parse_args(preset_args(name))
        for derived, source in DERIVED.items():
            if derived in row:
                assert row[derived] != getattr(config, ACT_FLAGS[source].name), (name, derived)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_sets_its_row_and_leaves_every_other_option_at_its_default(preset):
    run, config = parse_args(preset_args(preset))
    given = {"train_data_dir": "images"} if preset in PRESETS_WITHOUT_DATA else {}
    assert run.preset == preset and run.explicit == {"preset": preset, **given}
    row = PRESETS[preset]
    for flag, f in {**RUN_FLAGS, **ACT_FLAGS}.items():
        if flag == "preset":
            continue
        expected = row[flag] if flag in row else given.get(flag, f.default)
        if expected is None and flag in DERIVED:
            expected = value_of(run, config, DERIVED[flag])
        assert value_of(run, config, flag) == expected, (preset, flag)


def test_no_data_and_no_preset_is_the_digits_preset():
    run, config = parse_args([])
    digits_run, digits_config = parse_args(["--preset", "digits"])
    assert run.preset == "digits" and config == digits_config
    assert dataclasses.replace(run, explicit={}) == dataclasses.replace(digits_run, explicit={})
    # the improved recipe's doubling schedule ends at s1 + 1
    assert config.num_timesteps_schedule == "doubling" and config.final_num_timesteps == config.s1 + 1


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


def option_helps(text: str) -> dict[str, str]:
    """Each option's entry of `--help` output (its flags, metavar and help) by flag, with the whitespace of
    argparse's line wrapping normalised."""
    entries = re.split(r"\n  (?=--)", text)[1:]
    # argparse also breaks lines after a hyphen ("sd-" / "vae-ft-mse"): such breaks are joined without a space
    return {entry.split()[0].rstrip(","): " ".join(re.sub(r"-\n\s+", "-", entry).split()) for entry in entries}


def test_every_flag_has_help_with_its_default_and_the_presets_that_set_it():
    helps = option_helps(build_parser().format_help())
    assert set(helps) == {f"--{flag}" for flag in {**RUN_FLAGS, **ACT_FLAGS}}  # one entry per field, no other
    for flag, f in {**RUN_FLAGS, **ACT_FLAGS}.items():
        entry = helps[f"--{flag}"]
        assert " ".join(f.metadata["help"].split()) in entry, flag
        defaults = entry.rsplit(" (default: ", 1)[1]
        assert re.match(rf"{re.escape(str(f.default))}[;)]", defaults), flag
        setting = {preset: row[flag] for preset, row in PRESETS.items() if flag in row}
        assert {preset for preset in PRESETS if f"{preset}: " in defaults} == set(setting), flag  # no other preset
        assert all(f"{preset}: {value}" in defaults for preset, value in setting.items()), flag
        if f.type in (bool, bool | None):
            assert entry.startswith(f"--{flag}, --no-{flag} "), flag
        choices = sorted(PRESETS) if flag == "preset" else f.metadata.get("choices")
        if choices:
            assert "{" + ",".join(choices) + "}" in entry, flag
    with pytest.raises(SystemExit):
        parse_args(["--preset", "no-such-preset"])


def test_the_hub_token_is_never_kept_among_the_flags_given():
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

    for preset in PRESETS:  # fp16 chosen by a preset's row, not by the user
        precision, note = resolve_mixed_precision(RunConfig(preset=preset, mixed_precision="fp16"), "cpu")
        assert precision == "no" and f"the {preset} preset's fp16 cannot run on cpu" in note and "fp32" in note
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
        _, config = parse_args(preset_args(preset))
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
    from diffusers_act.presets import PAPER_GLOBAL_BATCH, paper_batch_note

    assert paper_batch_note("digits", 7, 3) is None and paper_batch_note(None, 7, 3) is None  # no paper batch
    for preset, paper in PAPER_GLOBAL_BATCH.items():
        batch = PRESETS[preset]["train_batch_size"]  # the preset's batch per process, on the paper's process count
        assert paper % batch == 0 and paper_batch_note(preset, batch, paper // batch) is None, preset
        assert paper_batch_note(preset, batch // 2, paper // batch, accumulation=2) is None, preset
        note = paper_batch_note(preset, batch, paper // batch + 1)
        words = " ".join(note.split())
        assert f"global batch of {paper} " in words and f"this run has {batch * (paper // batch + 1)} " in words
        assert "--gradient_accumulation_steps" in words, preset  # says how to match it
