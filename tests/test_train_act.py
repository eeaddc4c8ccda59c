# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""examples/train_act/train_act.py, run in-process (and once as two processes), offline on CPU."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import launch_two_cpu_processes, reset_accelerator_state
from diffusers import UNet2DModel
from huggingface_hub import ModelCard
from huggingface_hub.utils import filter_repo_objects
from safetensors.torch import load_file

import diffusers_act.training.checkpoints as checkpoints_module
import diffusers_act.training.hub as hub_module
from diffusers_act import ACTDiscriminator, ACTPipeline
from diffusers_act.presets import IMPROVED_RECIPE, PRESETS, auto_unet_config
from diffusers_act.training import ACTConfig, complete_checkpoints
from diffusers_act.training.config import TrainingError, flag_fields

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_act" / "train_act.py"
spec = importlib.util.spec_from_file_location("train_act", SCRIPT)
train_act = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_act)

FAST = ["--report_to", "none", "--logging_steps", "1", "--validation_steps", "1000", "--train_batch_size", "8"]


pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")


def run(tmp_path, *flags, name="out"):
    reset_accelerator_state()
    return train_act.main(["--output_dir", str(tmp_path / name), *flags])


def read_logs(output_dir):
    return [json.loads(line) for line in (output_dir / "logs.jsonl").read_text().splitlines()]


def card_words(output_dir):
    """The text of a run's model card with every run of whitespace (its line wrapping) as one space."""
    return " ".join(ModelCard.load(output_dir / "README.md").text.split())


def spy_on_trainers(monkeypatch):
    """The list that every `ACTTrainer` the training script builds is appended to."""
    built, build = [], train_act.ACTTrainer.build
    monkeypatch.setattr(train_act.ACTTrainer, "build", lambda *args, **kwargs: built.append(build(*args, **kwargs))
                        or built[-1])  # fmt: skip
    return built


def test_bare_readme_command_writes_a_usable_model(tmp_path, monkeypatch):
    # the README's command with only the length shortened (and the validation grid due once)
    built = spy_on_trainers(monkeypatch)
    output = run(tmp_path, "--max_train_steps", "4", "--validation_steps", "2", "--checkpointing_steps", "2")
    # the trainer got the digits preset's row (the default without data), the user's --max_train_steps over it
    row, (trainer,) = PRESETS["digits"], built
    fields = flag_fields(ACTConfig)
    values = {fields[flag].name: value for flag, value in {**row, "max_train_steps": 4}.items() if flag in fields}
    expected = ACTConfig(**values)
    assert trainer.config == expected
    g, d = trainer.optimizer.param_groups[0], trainer.discriminator_optimizer.param_groups[0]  # built with them
    assert (g["lr"], g["betas"]) == (expected.learning_rate, (expected.adam_beta1, expected.adam_beta2))
    assert d["lr"] == expected.discr_learning_rate
    assert d["betas"] == (expected.discr_adam_beta1, expected.discr_adam_beta2)
    pipe = ACTPipeline.from_pretrained(output)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.sample_size == row["resolution"] and pipe.unet.config.in_channels == 1
    assert pipe.unet.config.num_class_embeds == 10
    images = pipe(batch_size=3, class_labels=[1, 2, 3], generator=torch.Generator().manual_seed(0)).images
    assert [im.size for im in images] == [(8, 8)] * 3 and images[0].mode == "L"
    assert ACTDiscriminator.from_pretrained(output / "discriminator").config.num_class_embeds == 10
    card = ModelCard.load(output / "README.md")
    assert "act" in card.data.tags and card.data.library_name == "diffusers"
    assert "DiffusionPipeline.from_pretrained" in card.text and "--max_train_steps 4" in card.text
    # the card holds this run's numbers
    text, parameters = card_words(output), sum(p.numel() for p in pipe.unet.parameters())
    assert "4 iterations" in text and f"global batch {row['train_batch_size']}," in text
    assert f"{parameters / 1e6:.1f}M parameters" in text and f"N = {expected.final_num_timesteps})" in text
    assert f"decay {expected.ema_decay}," in text  # the evaluation EMA the preset turns on is what ships
    assert PIL.Image.open(output / "samples.png").size[0] > 16
    assert (output / "samples" / "step-0000002.png").is_file()
    assert [c.name for c in complete_checkpoints(output)] == ["checkpoint-2", "checkpoint-4"]
    sampled = ACTPipeline.from_pretrained(output / "checkpoint-2")  # each checkpoint is a pipeline too
    assert sampled.unet.config.num_class_embeds == 10
    assert sampled.scheduler.config.num_train_timesteps == expected.final_num_timesteps  # sampled on N(K)
    logs = read_logs(output)
    assert logs[-1]["step"] == 4  # logged every --logging_steps (10) and at the last iteration
    # R1 ran at iteration 0 only (interval 16); its value is carried to every later log line
    assert {"loss_ct", "loss_g", "loss_d", "d_accuracy", "loss_gp", "r1", "num_timesteps", "mu"} <= set(logs[-1])
    assert logs[-1]["r1"] > 0 and 0 <= logs[-1]["d_accuracy"] <= 1
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["iterations"] == 4 and summary["num_processes"] == 1
    assert list((output / "logs").rglob("events.out.tfevents*"))  # the default tracker, tensorboard


def checkpoint_state(path):
    """Every tensor and JSON value of a checkpoint's training state (no file of it needs pickle)."""
    state = {}
    for file in sorted((path / "training").glob("*.safetensors")):
        state.update({f"{file.stem}.{k}": v for k, v in load_file(file).items()})
    optimizers = torch.load(path / "training" / "optimizers.pt", weights_only=True)
    state.update({f"opt.{k}": v for k, v in optimizers["generator"]["state"].items()})
    state["trainer"] = json.loads((path / "training" / "trainer_state.json").read_text())
    assert not list(path.rglob("*.pkl")) and not list(path.rglob("*.bin"))
    return state


def test_resume_is_exact(tmp_path, monkeypatch):
    flags = [
        *FAST,
        "--max_train_steps",
        "4",
        "--checkpointing_steps",
        "2",
        "--use_augment",
        "--gp_interval",
        "1",
        "--aug_target",
        "0",
    ]
    straight = run(tmp_path, *flags, name="straight")

    original = train_act.ACTTrainer.train_step

    def interrupted(self, images, step, *args, **kwargs):
        if step == 2:
            raise KeyboardInterrupt("simulated kill after checkpoint-2")
        return original(self, images, step, *args, **kwargs)

    monkeypatch.setattr(train_act.ACTTrainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, *flags, name="resumed")
    monkeypatch.setattr(train_act.ACTTrainer, "train_step", original)
    resumed = run(tmp_path, *flags, "--resume_from_checkpoint", "latest", name="resumed")

    a, b = checkpoint_state(straight / "checkpoint-4"), checkpoint_state(resumed / "checkpoint-4")
    assert a["trainer"] == b["trainer"] and a["trainer"]["augment"]["p"] > 0
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a) and any(k.startswith("opt.") for k in a)
    for key in a:
        if key != "trainer":
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)  # bit for bit
    assert [e["step"] for e in read_logs(resumed)] == [1, 2, 3, 4]
    assert read_logs(resumed)[-1]["loss_ct"] == pytest.approx(read_logs(straight)[-1]["loss_ct"], rel=1e-5)


def test_checkpoint_limit_and_interrupted_writes(tmp_path, monkeypatch):
    output = run(
        tmp_path,
        *FAST,
        "--max_train_steps",
        "6",
        "--checkpointing_steps",
        "2",
        "--checkpoints_total_limit",
        "2",
        "--adv_weight",
        "0",
    )
    assert [c.name for c in complete_checkpoints(output)] == ["checkpoint-4", "checkpoint-6"]

    # a write killed half-way (before the final rename) leaves a hidden partial folder that `latest` ignores
    real_replace = checkpoints_module.os.replace

    def crash_on_second(src, dst):
        if str(dst).endswith("checkpoint-4"):
            raise KeyboardInterrupt("killed while writing checkpoint-4")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoints_module.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run(
            tmp_path, *FAST, "--max_train_steps", "6", "--checkpointing_steps", "2", "--adv_weight", "0", name="killed"
        )
    killed = tmp_path / "killed"
    assert (killed / ".checkpoint-4.tmp").is_dir()
    (killed / "checkpoint-9").mkdir()  # a folder with a checkpoint name but no manifest is not complete either
    assert complete_checkpoints(killed)[-1].name == "checkpoint-2"


def test_push_to_hub_uploads_the_model_without_checkpoints(tmp_path, monkeypatch):
    calls = {}

    class Repo:
        repo_id = "someone/act-digits"

    def fake_create_repo(repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)
        return Repo()

    def fake_upload_folder(**kwargs):
        calls["upload_folder"] = kwargs
        folder = Path(kwargs["folder_path"])
        calls["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    monkeypatch.setattr(hub_module, "create_repo", fake_create_repo)
    monkeypatch.setattr(hub_module, "upload_folder", fake_upload_folder)
    output = run(
        tmp_path,
        *FAST,
        "--max_train_steps",
        "2",
        "--checkpointing_steps",
        "1",
        "--report_to",
        "tensorboard",
        "--push_to_hub",
        "--hub_model_id",
        "someone/act-digits",
        "--hub_private_repo",
        "--hub_token",
        "hf_SECRET_token_1234",
    )
    assert calls["create_repo"][0] == "someone/act-digits" and calls["create_repo"][1]["private"] is True
    upload = calls["upload_folder"]
    assert upload["repo_id"] == "someone/act-digits" and Path(upload["folder_path"]) == output
    # what upload_folder would send, by huggingface_hub's own pattern filter
    uploaded = set(filter_repo_objects(calls["files"], ignore_patterns=upload["ignore_patterns"]))
    assert {
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "README.md",
        "samples.png",
        "discriminator/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
    } <= uploaded
    assert any(f.startswith("checkpoint-") for f in calls["files"])  # on disk...
    assert not any("checkpoint" in f or f.startswith("logs") for f in uploaded)  # ...but not uploaded
    card = ModelCard.load(output / "README.md")
    assert 'DiffusionPipeline.from_pretrained("someone/act-digits")' in card.text
    assert calls["create_repo"][1]["token"] == "hf_SECRET_token_1234"  # the token is used...
    for path in output.rglob("*"):  # ...and written nowhere: config, tracker logs, card, checkpoints
        assert not path.is_file() or b"hf_SECRET_token_1234" not in path.read_bytes(), path


class FakeRepo:
    repo_id = "a/b"


def test_failed_upload_keeps_the_output_and_says_how_to_retry(tmp_path, monkeypatch):
    def broken(**kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(hub_module, "create_repo", lambda *args, **kwargs: FakeRepo())
    monkeypatch.setattr(hub_module, "upload_folder", broken)
    flags = ["--max_train_steps", "1", "--adv_weight", "0", "--push_to_hub", "--hub_model_id", "a/b"]
    with pytest.raises(RuntimeError, match="intact") as error:
        run(tmp_path, *FAST, *flags, "--hub_token", "hf_x")
    assert "upload_folder" in str(error.value)
    assert (tmp_path / "out" / "model_index.json").is_file()
    ACTPipeline.from_pretrained(tmp_path / "out")


def test_hub_problems_stop_the_run_before_any_training(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(hub_module, "create_repo", unreachable)
    flags = ["--max_train_steps", "1", "--adv_weight", "0", "--push_to_hub", "--hub_model_id", "a/b"]
    with pytest.raises(ValueError, match="cannot create or reach the Hub repo 'a/b'"):
        run(tmp_path, *FAST, *flags, "--hub_token", "hf_x")
    monkeypatch.setattr(hub_module, "get_token", lambda: None)
    with pytest.raises(ValueError, match="needs a Hub token: run 'hf auth login'"):
        run(tmp_path, *FAST, *flags)
    assert not (tmp_path / "out").exists()  # nothing was trained or written


def test_bf16_autocast_on_cpu(tmp_path):
    output = run(tmp_path, *FAST, "--max_train_steps", "3", "--mixed_precision", "bf16", "--gp_interval", "1")
    for entry in read_logs(output):
        assert all(np.isfinite(v) for v in entry.values())


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    original = train_act.ACTTrainer.train_step

    def poisoned(self, images, step, *args, **kwargs):
        logs = original(self, images, step, *args, **kwargs)
        return {**logs, "loss_ct": torch.tensor(float("nan"))} if step == 2 else logs

    monkeypatch.setattr(train_act.ACTTrainer, "train_step", poisoned)
    # iteration k = 2 is the third: found at the log after it (every iteration logs here), before checkpoint-4
    with pytest.raises(TrainingError, match="Non-finite loss or weights between iterations 2 and 3.*checkpoint-2"):
        run(tmp_path, *FAST, "--max_train_steps", "5", "--checkpointing_steps", "2", "--adv_weight", "0")
    output = tmp_path / "out"
    assert [c.name for c in complete_checkpoints(output)] == ["checkpoint-2"]
    assert not (output / "model_index.json").exists()


def test_non_finite_weights_after_a_finite_loss_are_never_checkpointed(tmp_path, monkeypatch):
    original = train_act.ACTTrainer.train_step

    def poisoned(self, images, step, *args, **kwargs):
        logs = original(self, images, step, *args, **kwargs)
        if step == 3:  # the optimizer step of the iteration before a checkpoint left an infinite weight
            with torch.no_grad():
                next(self.unet.parameters()).view(-1)[0] = float("inf")
        return logs

    monkeypatch.setattr(train_act.ACTTrainer, "train_step", poisoned)
    with pytest.raises(TrainingError, match="between iterations 2 and 4.*checkpoint-2"):
        run(tmp_path, *FAST, "--max_train_steps", "6", "--checkpointing_steps", "2", "--logging_steps", "100")
    assert [c.name for c in complete_checkpoints(tmp_path / "out")] == ["checkpoint-2"]


def make_image_folder(root, bad=False):
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            PIL.Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    if bad:
        (root / "dogs" / "broken.png").write_bytes(b"this is not a png")
    return root


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset_name", "no-such-user/no-such-dataset"], r"--train_data_dir"),
        (["--image_column", "pixels"], r"its columns are \['image', 'label'\]"),
        (["--label_column", "digit"], r"its columns are \['image', 'label'\]"),
        (["--resolution", "9"], r"multiple of 2 \(e.g. 8 or 10\)"),
        (["--resume_from_checkpoint", "/no/such/checkpoint-3"], "not a complete checkpoint"),
        (["--train_data_dir", "/no/such/folder"], "is not a folder"),
    ],
)
def test_bad_input_is_explained(tmp_path, flags, message):
    with pytest.raises(ValueError, match=message):
        run(tmp_path, *FAST, "--max_train_steps", "1", *flags)


def test_corrupt_image_is_named(tmp_path):
    folder = make_image_folder(tmp_path / "images", bad=True)
    with pytest.raises(ValueError, match="broken.png"):
        run(
            tmp_path,
            *FAST,
            "--max_train_steps",
            "3",
            "--train_data_dir",
            str(folder),
            "--train_batch_size",
            "6",
            "--adv_weight",
            "0",
        )


@pytest.mark.slow
def test_two_processes_on_an_image_folder_end_identical(tmp_path):
    folder = make_image_folder(tmp_path / "images")
    result = launch_two_cpu_processes(
        str(SCRIPT),
        "--train_data_dir",
        str(folder),
        "--output_dir",
        str(tmp_path / "out"),
        "--max_train_steps",
        "3",
        "--train_batch_size",
        "2",
        "--report_to",
        "none",
        "--use_augment",
        "--gp_interval",
        "1",
        "--aug_target",
        "0",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["iterations"] == 3
    rank0, rank1 = summary["process_fingerprints"]
    assert rank0 == rank1 and rank0[-1] == pytest.approx(0.15)  # weights of G, target, D and the augmentation p
    ACTPipeline.from_pretrained(tmp_path / "out")


def test_fid_during_training_is_logged_and_in_the_model_card(tmp_path):
    output = run(
        tmp_path, *FAST, "--max_train_steps", "2", "--fid_steps", "1", "--fid_num_samples", "16", "--adv_weight", "0"
    )
    evals = [entry for entry in read_logs(output) if "fid" in entry]
    assert [e["step"] for e in evals] == [1, 2]
    measured = {k: v for k, v in evals[-1].items() if k not in ("step", "eval_seconds")}
    assert {"fid", "precision", "recall", "label_coverage", "class_accuracy"} <= set(measured)
    assert all(e["eval_seconds"] > 0 for e in evals)  # the metric's time, logged apart from the training's
    # the card holds the last evaluation's values: in its text and as the Hub's evaluation results
    card = ModelCard.load(output / "README.md")
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == measured
    assert all(f"{name}: {value:.4g}" in card.text for name, value in measured.items())


def test_own_images_without_a_preset_get_a_model_sized_for_the_data(tmp_path):
    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"  # grey images, no class folders: unconditional, one channel
    flat.mkdir()
    for i in range(10):
        PIL.Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8), "L").save(flat / f"{i}.png")
    output = run(tmp_path, *FAST, "--train_data_dir", str(flat), "--resolution", "8", "--max_train_steps", "2",
                 "--train_batch_size", "4", name="grey")  # fmt: skip
    config = ACTPipeline.from_pretrained(output).unet.config
    assert (config.in_channels, config.num_class_embeds) == (1, None)
    for key, value in auto_unet_config(8).items():  # the UNet sized for the data, not a preset's
        assert config[key] == (list(value) if isinstance(value, tuple) else value), key
    card, text = ModelCard.load(output / "README.md"), card_words(output)
    assert "no preset: the improved recipe" in text and "sized for 8x8" in text
    # an explicit --label_column that the data lack is an error, not a silently unconditional run
    with pytest.raises(ValueError, match="--label_column 'digit' is not in the dataset"):
        run(tmp_path, *FAST, "--train_data_dir", str(flat), "--resolution", "8", "--label_column", "digit", name="lc")
    # the card states the global batch and the curricula (the paper presets use the authors')
    schedules = IMPROVED_RECIPE["num_timesteps_schedule"], ACTConfig().target_ema_schedule
    assert "global batch 4, curricula N(k) `{}` and mu(k) `{}`".format(*schedules) in text
    assert "An unconditional one-step image generator" in text
    assert card.text.lstrip().startswith("# grey")  # titled by the output folder, not the staging folder
    assert "unconditional" in card.text and card.data.pipeline_tag == "unconditional-image-generation"

    folder = make_image_folder(tmp_path / "rgb")  # RGB images in class folders: class-conditional, three channels
    output = run(tmp_path, *FAST, "--train_data_dir", str(folder), "--resolution", "8", "--max_train_steps", "1",
                 "--train_batch_size", "4", name="rgb")  # fmt: skip
    config = ACTPipeline.from_pretrained(output).unet.config
    assert (config.in_channels, config.num_class_embeds) == (3, 2)


def test_num_train_epochs_sets_the_length_the_curricula_span(tmp_path):
    from diffusers_act.training import num_timesteps

    # 64 digits, ACT loads 2 x 8 per iteration: 4 iterations per epoch
    output = run(tmp_path, *FAST, "--max_train_samples", "64", "--num_train_epochs", "1")
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["iterations"] == 4 and read_logs(output)[-1]["step"] == 4
    # the curriculum spans those 4 iterations: the last is iteration 3 of K = 4, not of the preset's K
    row = PRESETS["digits"]
    curriculum = row["s0"], row["s1"], row["num_timesteps_schedule"]
    assert read_logs(output)[-1]["num_timesteps"] == num_timesteps(3, 4, *curriculum)
    assert num_timesteps(3, 4, *curriculum) != num_timesteps(3, row["max_train_steps"], *curriculum)


def test_fine_tuning_starts_from_a_saved_pipeline_and_its_discriminator(tmp_path):
    first = run(tmp_path, *FAST, "--max_train_steps", "2", name="first")
    # a learning rate of 1e-30: the fine-tuned networks must come out as they went in (to 1e-20)
    tuned = run(
        tmp_path, *FAST, "--max_train_steps", "2", "--pretrained_model_name_or_path", str(first),
        "--learning_rate", "1e-30", "--max_grad_norm", "1.0", "--adam_epsilon", "1e-6", "--tracker_project_name", "ft",
        name="tuned",
    )  # fmt: skip
    for sub in ("unet", "discriminator"):
        weights = "diffusion_pytorch_model.safetensors"
        before, after = load_file(first / sub / weights), load_file(tuned / sub / weights)
        assert before.keys() == after.keys(), sub
        assert all(torch.allclose(before[k], after[k], rtol=0, atol=1e-20) for k in before), sub
    assert f"fine-tuned from {first} (generator and discriminator)" in card_words(tuned)
    # a folder without unet/, and data the generator cannot take, are clear errors before training
    with pytest.raises(ValueError, match="has no `unet/` folder"):
        run(tmp_path, *FAST, "--pretrained_model_name_or_path", str(tmp_path), name="bad1")
    with pytest.raises(ValueError, match="has 10 classes, the run trains with no labels"):
        run(tmp_path, *FAST, "--pretrained_model_name_or_path", str(first), "--no-class_conditional", name="bad2")
    # a folder without class sub-folders: the error says how (--class_label), and --class_label trains it as one class
    flat = tmp_path / "flat"
    flat.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        PIL.Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(flat / f"{i}.png")
    ft = ["--pretrained_model_name_or_path", str(first), "--train_data_dir", str(flat), "--resolution", "8"]
    with pytest.raises(ValueError, match=r"Pass --class_label K \(0 <= K < 10\) to train every image as class K"):
        run(tmp_path, *FAST, *ft, name="flat1")
    with pytest.raises(ValueError, match="--class_label trains class-conditionally: leave out --no-class_conditional"):
        run(tmp_path, *FAST, *ft, "--class_label", "3", "--no-class_conditional", name="flat2")
    out = run(tmp_path, *FAST, *ft, "--class_label", "3", "--train_batch_size", "4", "--max_train_steps", "1",
              name="flat3")  # fmt: skip
    assert UNet2DModel.from_pretrained(out / "unet").config.num_class_embeds == 10
    with pytest.raises(ValueError, match=r"The labels must lie in \[0, 9\]"):
        run(tmp_path, *FAST, *ft, "--class_label", "10", name="flat4")
    # the digits' class names are saved with the model; a folder whose classes have other names is refused unless told
    assert json.loads((first / "model_index.json").read_text())["id2label"] == {str(i): str(i) for i in range(10)}
    classes = ", ".join(f"{i} `{i}`" for i in range(10))  # the card lists them as they were saved
    assert f"Classes (`class_labels` takes the ids or the names): {classes}." in card_words(first)
    for name in ("cat", "dog"):
        (tmp_path / "named" / name).mkdir(parents=True)
        for i in range(6):
            image = PIL.Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8))
            image.save(tmp_path / "named" / name / f"{i}.png")
    named = ["--pretrained_model_name_or_path", str(first), "--train_data_dir", str(tmp_path / "named"),
             "--resolution", "8", "--train_batch_size", "4", "--max_train_steps", "1"]  # fmt: skip
    differ = r"The data's classes 'cat', 'dog' are not classes of the pretrained model \(its classes are '0', '1',"
    with pytest.raises(ValueError, match=differ):
        run(tmp_path, *FAST, *named, name="named1")
    out = run(tmp_path, *FAST, *named, "--allow_other_classes", name="named2")
    # RGB images for a grey model are refused, not converted
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    for i in range(12):
        PIL.Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(rgb / f"{i}.png")
    with pytest.raises(ValueError, match="takes 1-channel images, the training data have 3"):
        run(tmp_path, *FAST, "--pretrained_model_name_or_path", str(first), "--train_data_dir", str(rgb),
            "--class_label", "3", name="rgb1")  # fmt: skip
    # a model trained with the raw sigma as time input (as converted authors' checkpoints) is fine-tuned with it
    sigma_model = tmp_path / "sigma_model"
    import shutil

    shutil.copytree(first, sigma_model)
    scheduler_file = sigma_model / "scheduler" / "scheduler_config.json"
    scheduler_config = json.loads(scheduler_file.read_text())
    scheduler_file.write_text(json.dumps({**scheduler_config, "noise_conditioning": "sigma", "sigma_max": 40.0}))
    tuned_sigma = run(tmp_path, *FAST, "--max_train_steps", "1", "--pretrained_model_name_or_path", str(sigma_model),
                      name="tuned_sigma")  # fmt: skip
    shipped = json.loads((tuned_sigma / "scheduler" / "scheduler_config.json").read_text())
    assert (shipped["noise_conditioning"], shipped["sigma_max"]) == ("sigma", 40.0)
    saved = json.loads((out / "model_index.json").read_text())["id2label"]
    assert saved == {"0": "cat", "1": "dog", **{str(i): str(i) for i in range(2, 10)}}
    # a folder of two of the model's classes trains those classes, matched by name (not as classes 0 and 1)
    for name in ("7", "3"):
        (tmp_path / "subset" / name).mkdir(parents=True)
        for i in range(6):
            image = PIL.Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8))
            image.save(tmp_path / "subset" / name / f"{i}.png")
    subset = [*named[:3], str(tmp_path / "subset"), *named[4:]]
    out = run(tmp_path, *FAST, *subset, name="subset")
    assert json.loads((out / "model_index.json").read_text())["id2label"] == {str(i): str(i) for i in range(10)}


def test_a_save_to_disk_folder_trains_and_its_card_names_no_hub_dataset(tmp_path):
    from diffusers_act.training.data import digits_dataset

    digits_dataset().select(range(32)).save_to_disk(str(tmp_path / "saved"))
    saved = ["--dataset_name", str(tmp_path / "saved")]
    out = run(tmp_path, *FAST, *saved, "--max_train_steps", "1", "--resolution", "8")
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets is None and "huggingface.co/datasets" not in card.text
    assert "a local dataset folder" in card.text


def test_a_dataset_saved_with_save_to_disk_loads(tmp_path):
    import datasets

    from diffusers_act.training.data import digits_dataset, load_training_dataset

    subset = digits_dataset().select(range(20))
    subset.save_to_disk(str(tmp_path / "plain"))
    datasets.DatasetDict({"train": subset}).save_to_disk(str(tmp_path / "dict"))
    for name in ("plain", "dict"):
        loaded = load_training_dataset(dataset_name=str(tmp_path / name))
        assert len(loaded) == 20 and loaded["label"] == subset["label"], name


def test_too_small_a_dataset_says_to_lower_the_batch(tmp_path):
    from diffusers_act.training.batches import make_dataloader
    from diffusers_act.training.data import digits_dataset

    with pytest.raises(ValueError, match=r"The dataset has 5 images, fewer than one batch \(8\)\. Lower "
                                         r"--train_batch_size \(ACT loads 2 x --train_batch_size"):  # fmt: skip
        make_dataloader(digits_dataset().select(range(5)), 8, seed=0)


def test_a_cpu_launch_that_asked_for_several_processes_is_warned_about(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # what `accelerate launch --cpu --num_processes 2` leaves behind
    with caplog.at_level("WARNING"):
        run(tmp_path, *FAST, "--max_train_steps", "1", "--max_train_samples", "32")
    assert "One process, although `accelerate launch` was asked for several: with --cpu it starts one" in caplog.text


def test_gradient_clipping_bounds_each_update(tmp_path):
    """--max_grad_norm: with a tiny norm, the first update of plain SGD-like RAdam steps is bounded accordingly."""
    from conftest import tiny_unet

    from diffusers_act.training import ACTConfig, ACTTrainer

    torch.manual_seed(0)
    config = ACTConfig(total_steps=4, s0=4, s1=8, adv_weight=0.0, max_grad_norm=1e-3, learning_rate=1e-3)
    trainer = ACTTrainer.build(tiny_unet().train(), config)
    seen = []
    original = trainer.optimizer.step

    def record(*args, **kwargs):
        params = [p for p in trainer.unet.parameters() if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item())
        return original(*args, **kwargs)

    trainer.optimizer.step = record
    trainer.train_step(torch.rand(4, 3, 8, 8) * 2 - 1, 0)
    assert seen[0] == pytest.approx(1e-3, rel=1e-4)  # clipped to exactly max_grad_norm (the raw norm is larger)
    with pytest.raises(ValueError, match="--max_grad_norm must be positive"):
        ACTConfig(max_grad_norm=0.0)


def test_the_cards_usage_snippets_run_as_written(tmp_path):
    import re

    output = run(tmp_path, *FAST, "--max_train_steps", "1", "--max_train_samples", "32", name="snippets")
    blocks = re.findall(r"```py\n(.*?)```", (output / "README.md").read_text(), flags=re.S)
    assert len(blocks) == 2 and all(str(output) in block for block in blocks)
    namespace = {}
    exec(blocks[0], namespace)  # the package's classes, loaded by diffusers' own loader
    assert type(namespace["pipe"]).__name__ == "ACTPipeline" and len(namespace["images"]) == 1
    exec(blocks[1], namespace)  # the remote-code line: the pipeline code saved beside the weights
    assert type(namespace["pipe"]).__name__ == "ACTPipeline"
