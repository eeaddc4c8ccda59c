# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Runs that are safe to resume, share and restart: every bad input of docs/reliability.md gives its one-line message
before any work and changes nothing in the output folder; crafted checkpoints never run code; a run killed at random
moments and resumed ends with the same weights as an uninterrupted one."""

import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import reset_accelerator_state, tiny_unet
from safetensors.torch import load_file, save_file

from diffusers_act import ACTPipeline, ConsistencyACTScheduler
from diffusers_act.training import complete_checkpoints
from diffusers_act.training.config import run_command_line

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_act" / "train_act.py"
spec = importlib.util.spec_from_file_location("train_act_for_reliability", SCRIPT)
train_act = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_act)

SMALL = ["--report_to", "none", "--max_train_samples", "64", "--train_batch_size", "8", "--validation_steps", "1000",
         "--max_train_steps", "2"]  # fmt: skip

pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")


class Crafted:
    """Unpickling this creates a marker file: what an attacker's code would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its size and modification time (None when the folder does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """The folders the table's commands name: RUN holds a finished run with checkpoints; EMPTY holds no image;
    BROKEN two unreadable images among good ones; DAMAGED a run whose checkpoint lost a file; CORRUPT one whose
    target.safetensors has a broken header; CRAFTED a run whose
    checkpoint's optimizers.pt is a pickle that runs code (its manifest updated to match)."""
    root = tmp_path_factory.mktemp("reliability")
    reset_accelerator_state()
    train_act.main([*SMALL, "--output_dir", str(root / "RUN"), "--max_train_steps", "2", "--checkpointing_steps", "2"])
    (root / "EMPTY").mkdir()
    (root / "EMPTY" / "notes.txt").write_text("no images here")
    rng = np.random.default_rng(0)
    (root / "BROKEN" / "cats").mkdir(parents=True)
    for i in range(12):
        PIL.Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            root / "BROKEN" / "cats" / f"{i}.png"
        )
    for name in ("bad1.png", "bad2.jpg"):
        (root / "BROKEN" / "cats" / name).write_bytes(b"not an image")
    for name in ("DAMAGED", "CORRUPT", "CRAFTED"):
        subprocess.run(["cp", "-r", str(root / "RUN"), str(root / name)], check=True)
    (root / "DAMAGED" / "checkpoint-2" / "training" / "optimizers.pt").unlink()
    with open(root / "CORRUPT" / "checkpoint-2" / "training" / "target.safetensors", "r+b") as f:
        f.write(b"\xff" * 8)  # a broken header of the same size
    crafted = root / "CRAFTED" / "checkpoint-2"
    torch.save({"generator": Crafted(root / "MARKER")}, crafted / "training" / "optimizers.pt")
    update_manifest(crafted)
    # NOTOURS: a model folder no run recorded; NAN: a checkpoint whose generator is NaN (same size: the manifest
    # matches); EDITED: a trainer_state.json edited to a negative count; STEPPED: a manifest edited to step -1;
    # TORN: a logs.jsonl whose first line is not JSON
    (root / "NOTOURS" / "unet").mkdir(parents=True)
    (root / "NOTOURS" / "README.md").write_text("my own model card")
    for name in ("NAN", "EDITED", "STEPPED", "TORN"):
        subprocess.run(["cp", "-r", str(root / "RUN"), str(root / name)], check=True)
    weights = root / "NAN" / "checkpoint-2" / "training" / "generator.safetensors"
    save_file({k: torch.full_like(v, float("nan")) for k, v in load_file(weights).items()}, weights)
    update_manifest(root / "NAN" / "checkpoint-2")
    state_file = root / "EDITED" / "checkpoint-2" / "training" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["ema"]["optimization_step"] = -3
    state_file.write_text(json.dumps(state))
    update_manifest(root / "EDITED" / "checkpoint-2")
    manifest = json.loads((root / "STEPPED" / "checkpoint-2" / "checkpoint.json").read_text())
    (root / "STEPPED" / "checkpoint-2" / "checkpoint.json").write_text(json.dumps({**manifest, "step": -1}))
    log = root / "TORN" / "logs.jsonl"
    log.write_text("garbage\n" + log.read_text())
    return root


def update_manifest(checkpoint: Path) -> None:
    """Makes `checkpoint.json` list the sizes the (edited) files have now."""
    manifest = json.loads((checkpoint / "checkpoint.json").read_text())
    manifest["files"] = {name: (checkpoint / name).stat().st_size for name in manifest["files"]}
    (checkpoint / "checkpoint.json").write_text(json.dumps(manifest))


def table_rows() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "reliability.md").read_text()
    return re.findall(r"^\| `([^`]*)` \| `([^`]*)` \| unchanged \|$", text, flags=re.M)


ROWS = table_rows()


def test_the_table_covers_the_issue():
    flags = " ".join(command for command, _ in ROWS)
    for flag in ("--resolution 0", "--checkpointing_steps 0", "--checkpoints_total_limit 0", "--validation_steps 0",
                 "--logging_steps 0", "--mixed_precision fp16", "--verify_images",
                 "--resume_from_checkpoint", "--push_to_hub"):  # fmt: skip
        assert flag in flags, flag


@pytest.mark.parametrize("command, message", ROWS, ids=[c for c, _ in ROWS])
def test_bad_input_gives_its_message_before_work_and_changes_nothing(command, message, places, capsys, monkeypatch):
    monkeypatch.setattr("diffusers_act.training.hub.get_token", lambda: None)  # no token saved on this machine
    argv = [re.sub(rf"^({'|'.join(PLACES)})\b", lambda m: str(places / m.group(1)), word) for word in command.split()]
    if "--output_dir" not in argv:
        argv += ["--output_dir", str(places / "OUT")]
    output_dir = Path(argv[argv.index("--output_dir") + 1])
    before = snapshot(output_dir)
    reset_accelerator_state()
    with pytest.raises(SystemExit) as stop:
        run_command_line(train_act.main, [*SMALL, *argv])
    assert stop.value.code == 1
    printed = capsys.readouterr().err.strip().splitlines()[-1]
    for name in PLACES:
        printed = printed.replace(str(places / name), name)
    if os.environ.get("DUMP_MESSAGES"):
        with open(os.environ["DUMP_MESSAGES"], "a") as f:
            f.write(f"{command}\t{printed}\n")
    assert printed == f"error: {message} (--debug shows the traceback)"
    assert snapshot(output_dir) == before
    assert not (places / "MARKER").exists()  # the crafted pickle never ran


PLACES = ("RUN", "EMPTY", "BROKEN", "DAMAGED", "CORRUPT", "CRAFTED", "NOTOURS", "NAN", "EDITED", "STEPPED", "TORN",
          "OUT")  # fmt: skip


def test_debug_shows_the_traceback(places):
    with pytest.raises(ValueError, match="--resolution must be at least 1"):
        run_command_line(train_act.main, ["--resolution", "0", "--debug"])


def test_overwrite_output_dir_removes_the_earlier_run_so_latest_cannot_pick_it(places):
    import shutil

    old = places / "OLD"
    shutil.copytree(places / "RUN", old)
    (old / "checkpoint-500").mkdir()  # a later checkpoint of the old run, as `latest` would pick it
    shutil.copytree(old / "checkpoint-2", old / "checkpoint-500", dirs_exist_ok=True)
    assert complete_checkpoints(old)[-1].name == "checkpoint-500"
    reset_accelerator_state()
    train_act.main([*SMALL, "--output_dir", str(old), "--overwrite_output_dir", "--max_train_steps", "1",
                    "--checkpointing_steps", "1", "--adv_weight", "0"])  # fmt: skip
    assert [c.name for c in complete_checkpoints(old)] == ["checkpoint-1"]
    assert json.loads((old / "training_summary.json").read_text())["iterations"] == 1
    assert not (old / "discriminator").exists()  # the old run's ACT discriminator went with it


def test_pipeline_loads_bin_weights_as_diffusers_does_and_never_runs_a_pickle(tmp_path):
    pipe = ACTPipeline(unet=tiny_unet(), scheduler=ConsistencyACTScheduler())
    pipe.save_pretrained(tmp_path / "bin", safe_serialization=False)
    weights = tmp_path / "bin" / "unet" / "diffusion_pytorch_model.bin"
    assert weights.is_file() and not list((tmp_path / "bin").rglob("*.safetensors"))
    loaded = ACTPipeline.from_pretrained(tmp_path / "bin")  # no safetensors: diffusers reads the .bin
    assert all(torch.equal(a, b) for a, b in zip(loaded.unet.parameters(), pipe.unet.parameters(), strict=True))
    # diffusers reads .bin files with torch.load(weights_only=True): a pickle that would run code is refused
    torch.save({**torch.load(weights, weights_only=True), "extra": Crafted(tmp_path / "MARKER")}, weights)
    with pytest.raises(OSError, match=re.escape(f"Unable to load weights from checkpoint file for '{weights}'")):
        ACTPipeline.from_pretrained(tmp_path / "bin")
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latents": torch.full((1, 3, 8, 8), float("nan"))}, "`latents` holds NaN"),
        ({"image": torch.full((1, 3, 8, 8), float("inf")), "mask_image": torch.ones(1, 1, 8, 8)}, "`image` holds NaN"),
        ({"image": torch.zeros(1, 3, 8, 8), "mask_image": torch.full((1, 1, 8, 8), float("nan"))}, "`mask_image`"),
        ({"image": torch.full((1, 3, 8, 8), -0.5), "mask_image": torch.ones(1, 1, 8, 8)}, r"in \[0, 1\], got \[-0.5"),
        ({"image": np.full((8, 8, 3), 200, np.uint8), "mask_image": np.ones((8, 8), np.float32)}, "by 255"),
        ({"image": torch.zeros(1, 3, 8, 8), "mask_image": torch.full((1, 1, 8, 8), 2.0)}, r"got \[2, 2\]"),
        ({"generator": "abc"}, "`generator` must be a `torch.Generator` or a list of them"),
        ({"image": np.zeros((0, 8, 8, 3)), "mask_image": np.ones((8, 8))}, r"`image` is empty \(size \(0, 8, 8"),
        ({"image": PIL.Image.new("RGB", (0, 0)), "mask_image": PIL.Image.new("L", (8, 8))}, "`image` is empty"),
        ({"image": [], "mask_image": []}, "`image` is an empty list"),
    ],
)
def test_pipeline_rejects_non_finite_and_out_of_range_inputs(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


def latest_step(output_dir: Path) -> int:
    found = complete_checkpoints(output_dir)
    return int(found[-1].name.split("-")[1]) if found else 0


def final_state(output_dir: Path) -> dict:
    checkpoint = complete_checkpoints(output_dir)[-1]
    state = {}
    for file in sorted((checkpoint / "training").glob("*.safetensors")):
        state.update({f"{file.stem}.{k}": v for k, v in load_file(file).items()})
    state.update(
        {f"shipped.{k}": v for k, v in load_file(output_dir / "unet" / "diffusion_pytorch_model.safetensors").items()}
    )
    return state


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_weights(tmp_path):
    """Fault injection: the training script (a real process) is killed with SIGKILL at random moments, several
    times, and resumed with `latest` each time. The final weights equal an uninterrupted run's bit for bit; no
    completed save leaves more checkpoints than the limit; a partial checkpoint is never chosen (each resume loads)."""
    flags = [*SMALL, "--max_train_steps", "12", "--checkpointing_steps", "1", "--checkpoints_total_limit", "2",
             "--use_augment", "--gp_interval", "2", "--aug_target", "0", "--logging_steps", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SCRIPT), *flags]
    straight = subprocess.run([*command, "--output_dir", str(tmp_path / "straight")], env=env, capture_output=True)
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed_dir, rng, kills, seen = tmp_path / "killed", random.Random(0), 0, set()
    for _ in range(12):
        process = subprocess.Popen([*command, "--output_dir", str(killed_dir), "--resume_from_checkpoint", "latest"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        started, before = time.monotonic(), latest_step(killed_dir)
        while process.poll() is None and latest_step(killed_dir) == before and time.monotonic() - started < 60:
            time.sleep(0.02)  # wait until this round has trained and saved once, then kill at a random moment
        time.sleep(rng.uniform(0.0, 1.0))
        if process.poll() is not None:
            assert process.returncode == 0, process.stderr.read()[-3000:]
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        found = complete_checkpoints(killed_dir)
        assert len(found) <= 3  # limit 2, plus the newest one when the kill came between its rename and the prune
        seen |= {c.name for c in found}
    else:
        pytest.fail("the run never finished")
    assert kills >= 3, f"only {kills} kills landed; the run is too short for this test"
    assert len(complete_checkpoints(killed_dir)) == 2
    a, b = final_state(tmp_path / "straight"), final_state(killed_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    steps = [entry["step"] for entry in map(json.loads, (killed_dir / "logs.jsonl").read_text().splitlines())]
    assert steps == list(range(1, 13))  # redone iterations are not logged twice


# --- nothing a user owns is deleted or silently corrupted (docs/reliability.md, "What a run never does") -------------
def test_overwrite_removes_only_what_the_earlier_run_recorded_and_nothing_outside(places, tmp_path):
    import shutil

    root = tmp_path / "experiments"
    old, shared = root / "old", root / "shared-tensorboard"
    shutil.copytree(places / "RUN", old)
    (shared / "other-experiment").mkdir(parents=True)
    (shared / "other-experiment" / "events.out").write_text("another run's logs")
    (root / "sibling.txt").write_text("next to the output folder")
    (old / "notes.txt").write_text("the user's own file")
    outside = tmp_path / "kept"
    outside.mkdir()
    (outside / "precious.png").write_text("not the run's")
    shutil.rmtree(old / "logs", ignore_errors=True)
    (old / "samples").symlink_to(outside, target_is_directory=True)  # a link the run records as its `samples`
    record = json.loads((old / "train_act_outputs.json").read_text())  # and a record edited to point outside
    record["outputs"] += ["..", "../sibling.txt", str(outside), ".", "unet/../.."]
    (old / "train_act_outputs.json").write_text(json.dumps(record))
    for logging_dir in (str(shared), ".."):  # an absolute shared folder, then the output folder's parent
        reset_accelerator_state()
        train_act.main([*SMALL, "--output_dir", str(old), "--overwrite_output_dir", "--max_train_steps", "1",
                        "--checkpointing_steps", "1", "--logging_dir", logging_dir])  # fmt: skip
        assert (shared / "other-experiment" / "events.out").read_text() == "another run's logs"
        assert (root / "sibling.txt").is_file() and (outside / "precious.png").is_file()
        assert (old / "notes.txt").read_text() == "the user's own file"
        assert [c.name for c in complete_checkpoints(old)] == ["checkpoint-1"]
        assert not (old / "samples").is_symlink()
    record = json.loads((old / "train_act_outputs.json").read_text())["outputs"]
    assert ".." not in record and str(shared) not in record and "unet" in record


def test_non_finite_weights_are_never_saved(tmp_path, caplog):
    from accelerate import Accelerator

    from diffusers_act.training import ACTConfig, ACTTrainer, CheckpointManager
    from diffusers_act.training.checkpoints import nonfinite_networks
    from diffusers_act.training.config import TrainingError

    config = ACTConfig(total_steps=4, s0=2, s1=4, use_ema=True)
    trainer = ACTTrainer.build(tiny_unet(), config, Accelerator(cpu=True))
    checkpoints = CheckpointManager(tmp_path, trainer.accelerator)
    checkpoints.save(1, trainer)
    assert nonfinite_networks(trainer) == []
    with torch.no_grad():
        next(trainer.discriminator.parameters())[0] = float("inf")
        trainer.ema.shadow_params[0][0] = float("nan")
    assert nonfinite_networks(trainer) == ["discriminator", "ema"]
    with pytest.raises(TrainingError, match=r"Not saving checkpoint-2: the discriminator, ema weights are not finite. "
                                            r"The last good checkpoint is .*checkpoint-1\."):  # fmt: skip
        checkpoints.save(2, trainer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1"]


def png_ramp(path: Path) -> np.ndarray:
    """A 16x16 16-bit greyscale PNG of the 256 values 257 k (0 to 65535): the 8-bit grey levels k, scaled."""
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    PIL.Image.fromarray(ramp).save(path)
    return ramp


def test_sixteen_bit_images_are_scaled_to_eight_bits_not_clipped(tmp_path):
    from diffusers_act.training.data import decode_image, load_training_dataset, make_transform

    png_ramp(tmp_path / "ramp.png")
    assert PIL.Image.open(tmp_path / "ramp.png").mode == "I;16"
    for channels in (1, 3):
        decoded = np.asarray(decode_image({"path": str(tmp_path / "ramp.png")}, channels, 0))
        expected = np.arange(256).reshape(16, 16)
        assert np.array_equal(decoded if channels == 1 else decoded[..., 1], expected)
    # through the training transform: all 256 grey levels in [-1, 1] (clipping kept 2: 0 and 255)
    dataset = load_training_dataset(train_data_dir=str(tmp_path))
    pixels = make_transform("image", 1, 16)(dataset[:1])["pixel_values"][0]
    assert torch.equal(pixels, torch.arange(256.0).reshape(1, 16, 16) / 127.5 - 1)


def test_channels_come_from_the_whole_set_and_are_logged(tmp_path, caplog):
    from diffusers_act.training.data import image_channels, load_training_dataset

    rng = np.random.default_rng(0)
    (tmp_path / "mixed").mkdir()
    PIL.Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / "mixed" / "a.png")
    png_ramp(tmp_path / "mixed" / "b.png")
    PIL.Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "mixed" / "c.png")
    with caplog.at_level("INFO"):
        assert image_channels(load_training_dataset(train_data_dir=str(tmp_path / "mixed")), "image", chunk=2) == 3
    assert re.search(r"Training on 3 channels \(RGB\): .*c\.png is in colour; the 2 images before it are greyscale",
                     caplog.text)  # fmt: skip
    (tmp_path / "mixed" / "c.png").unlink()
    with caplog.at_level("INFO"):
        assert image_channels(load_training_dataset(train_data_dir=str(tmp_path / "mixed")), "image") == 1
    assert "Training on 1 channel: all 2 images are greyscale." in caplog.text


def test_disk_full_while_saving_is_one_line_and_keeps_earlier_checkpoints(places, tmp_path, capsys, monkeypatch):
    import shutil

    full = tmp_path / "FULL"
    shutil.copytree(places / "RUN", full)
    before = snapshot(full / "checkpoint-2")

    def no_space(*args, **kwargs):  # what safetensors raises on a full disk (its Rust I/O error)
        raise Exception("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr("diffusers_act.training.state.save_model", no_space)
    reset_accelerator_state()
    with pytest.raises(SystemExit):
        run_command_line(train_act.main, [*SMALL, "--output_dir", str(full), "--resume_from_checkpoint", "latest",
                                          "--max_train_steps", "3", "--checkpointing_steps", "1"])  # fmt: skip
    printed = "error: " + capsys.readouterr().err.rsplit("error: ", 1)[-1].strip()  # after the progress bar
    assert re.fullmatch(
        rf"error: The disk of {full} is full: writing checkpoint-3 needs about [\d.]+ MiB and failed, so it was "
        r"removed; earlier checkpoints are untouched\. Free some space \(or lower --checkpoints_total_limit\) and "
        r"resume with --resume_from_checkpoint latest\. \(--debug shows the traceback\)",
        printed,
    ), printed
    assert snapshot(full / "checkpoint-2") == before
    assert not list(full.glob(".checkpoint-*")) and [c.name for c in complete_checkpoints(full)] == ["checkpoint-2"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 1 MiB file system (tmpfs), where the machine allows mounting one (root, as on CI)."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); a patched writer test covers it")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_really_full_disk_is_one_line_for_each_writer(small_tmpfs, capsys):
    from diffusers_act.training.disk import DiskFullError, disk_full_errors

    big = torch.zeros(1_000_000)  # 4 MB
    writers = {
        "safetensors": lambda path: save_file({"x": big}, path / "x.safetensors"),
        "torch": lambda path: torch.save({"x": big}, path / "x.pt"),
        "text": lambda path: (path / "x.txt").write_text("x" * 4_000_000),
    }
    for name, write in writers.items():
        partial = small_tmpfs / "partial"
        partial.mkdir()
        with pytest.raises(DiskFullError, match=rf"The disk of {small_tmpfs} is full: writing {name} needs about"):
            with disk_full_errors(small_tmpfs, 500_000, name, cleanup=[partial]):  # passes the check, then fills
                write(partial)
        assert not partial.exists(), name  # the partial files are gone: the disk has room again
    # a run whose first checkpoint cannot fit stops before writing it, saying how much it needs
    reset_accelerator_state()
    with pytest.raises(SystemExit):
        run_command_line(train_act.main, [*SMALL, "--output_dir", str(small_tmpfs / "run"), "--checkpointing_steps",
                                          "1"])  # fmt: skip
    printed = "error: " + capsys.readouterr().err.rsplit("error: ", 1)[-1].strip()
    assert re.match(rf"error: Not enough disk space in {small_tmpfs / 'run'} to write checkpoint-1: about [\d.]+ MiB "
                    r"needed, [\d.]+ (KiB|MiB) free\. Nothing was written", printed), printed  # fmt: skip
    assert not list((small_tmpfs / "run").glob("*checkpoint-*"))


def test_trainer_state_schema(places):
    from diffusers_act.training.state import trainer_state_problems

    good = json.loads((places / "RUN" / "checkpoint-2" / "training" / "trainer_state.json").read_text())
    assert trainer_state_problems(good) == []
    assert trainer_state_problems({"augment": {"p": 0.5, "r1_ema": 0.1}, "ema": None}) == []
    assert trainer_state_problems([]) == ["it is not a JSON object"]
    assert trainer_state_problems({"ema": {"shadow_params": [], "decay": True, "optimization_step": 2.5}}) == [
        "unknown key 'ema.shadow_params'",
        "'ema.decay' has a value out of range or of the wrong type: True",
        "'ema.optimization_step' has a value out of range or of the wrong type: 2.5",
    ]
    assert trainer_state_problems({"augment": {"p": 1.5, "r1_ema": 0.0}, "extra": 1}) == [
        "unknown key 'extra'",
        "'augment' must be {'p': a number in [0, 1], 'r1_ema': a number >= 0}, got {'p': 1.5, 'r1_ema': 0.0}",
    ]


def test_a_log_line_cut_short_by_a_kill_is_dropped_on_resume(places, tmp_path, caplog):
    import shutil

    cut = tmp_path / "CUT"
    shutil.copytree(places / "RUN", cut)
    with open(cut / "logs.jsonl", "a") as f:
        f.write('{"step": 3, "loss_ct": 0.')  # a kill in the middle of writing a line
    reset_accelerator_state()
    with caplog.at_level("WARNING"):
        train_act.main([*SMALL, "--output_dir", str(cut), "--resume_from_checkpoint", "latest",
                        "--max_train_steps", "3", "--logging_steps", "1"])  # fmt: skip
    assert "logs.jsonl: dropped its last line, which was cut short" in caplog.text
    assert [json.loads(line)["step"] for line in (cut / "logs.jsonl").read_text().splitlines()] == [2, 3]


def test_an_interrupted_final_save_never_loads_and_the_next_run_completes_it(places, tmp_path, monkeypatch):
    import shutil

    from diffusers import DiffusionPipeline

    import diffusers_act.training.outputs as outputs

    extend = tmp_path / "EXTEND"
    shutil.copytree(places / "RUN", extend)
    moved, replace = [], outputs._replace

    def killed_after_the_first_move(source, target):
        if moved:
            raise RuntimeError("killed")
        moved.append(target.name)
        replace(source, target)

    monkeypatch.setattr(outputs, "_replace", killed_after_the_first_move)
    extend_run = [*SMALL, "--output_dir", str(extend), "--resume_from_checkpoint", "latest", "--max_train_steps", "3",
                  "--checkpointing_steps", "1"]  # fmt: skip
    reset_accelerator_state()
    with pytest.raises(RuntimeError, match="killed"):
        train_act.main(extend_run)
    assert moved and not (extend / "model_index.json").exists()  # half new, half old: it does not load
    with pytest.raises(OSError):
        DiffusionPipeline.from_pretrained(extend)
    monkeypatch.setattr(outputs, "_replace", replace)
    reset_accelerator_state()
    train_act.main(extend_run)  # resumes at the last checkpoint (3 of 3) and redoes the final save
    pipe = DiffusionPipeline.from_pretrained(extend)
    shipped = load_file(extend / "checkpoint-3" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(v, pipe.unet.state_dict()[k]) for k, v in shipped.items())
    assert json.loads((extend / "training_summary.json").read_text())["iterations"] == 3
    assert not (extend / ".final.tmp").exists()


def test_an_impossible_resolution_stops_before_any_work(tmp_path, capsys):
    reset_accelerator_state()
    with pytest.raises(SystemExit):
        run_command_line(train_act.main, [*SMALL, "--output_dir", str(tmp_path / "out"), "--resolution", "100000"])
    printed = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(r"error: --resolution 100000 with --train_batch_size 8 cannot fit: one activation of the UNet's "
                    r"first level \(8 x 32 x 100000 x 100000 fp32\) takes 9.3 TiB, more than the [\d.]+ GiB of cpu "
                    r"memory\. Lower --resolution or --train_batch_size\.", printed), printed  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_latest_warns_when_it_skips_a_damaged_checkpoint(places, tmp_path, caplog):
    import shutil

    from accelerate import Accelerator

    from diffusers_act.training import CheckpointManager

    folder = tmp_path / "SKIP"
    shutil.copytree(places / "RUN", folder)
    shutil.copytree(folder / "checkpoint-2", folder / "checkpoint-5")
    (folder / "checkpoint-5" / "training" / "optimizers.pt").unlink()
    with caplog.at_level("WARNING"):
        chosen = CheckpointManager(folder, Accelerator(cpu=True)).resolve("latest")
    assert chosen == folder / "checkpoint-2"
    assert (
        f"--resume_from_checkpoint latest skips {folder / 'checkpoint-5'}: it is damaged (training/optimizers.pt "
        f"is missing); resuming from {folder / 'checkpoint-2'}." in caplog.text
    )


def test_scheduler_configs_with_absurd_values_do_not_load(tmp_path):
    ACTPipeline(unet=tiny_unet(), scheduler=ConsistencyACTScheduler()).save_pretrained(tmp_path)
    config_file = tmp_path / "scheduler" / "scheduler_config.json"
    good = json.loads(config_file.read_text())
    for key, value, message in [
        ("sigma_data", 0, "`sigma_data` must be a finite positive number, got 0"),
        ("sigma_data", -1, "`sigma_data` must be a finite positive number, got -1"),
        ("rho", 0, "`rho` must be a finite positive number, got 0"),
        ("sigma_max", 1e400, "`sigma_max` must be a finite positive number, got inf"),
        ("num_train_timesteps", "40", "`num_train_timesteps` must be an integer of at least 2, got '40'"),
    ]:
        config_file.write_text(json.dumps({**good, key: value}))
        with pytest.raises(ValueError, match=re.escape(message)):
            ACTPipeline.from_pretrained(tmp_path)
    config_file.write_text(json.dumps({**good, "sigma_data": float("nan")}))  # NaN in JSON
    with pytest.raises(ValueError, match="`sigma_data` must be a finite positive number, got nan"):
        ACTPipeline.from_pretrained(tmp_path)


def test_resuming_with_another_number_of_processes_is_warned_about(places, tmp_path, caplog):
    import shutil

    from accelerate import Accelerator

    from diffusers_act.presets import unet_config
    from diffusers_act.training import ACTTrainer, CheckpointManager
    from diffusers_act.training.config import parse_args

    two = tmp_path / "TWO"
    shutil.copytree(places / "RUN", two)
    checkpoint = two / "checkpoint-2"
    shutil.copy(checkpoint / "random_states_0.json", checkpoint / "random_states_1.json")  # as two processes wrote it
    manifest = json.loads((checkpoint / "checkpoint.json").read_text())
    manifest["files"]["random_states_1.json"] = (checkpoint / "random_states_1.json").stat().st_size
    (checkpoint / "checkpoint.json").write_text(json.dumps(manifest))
    reset_accelerator_state()
    run, config = parse_args([*SMALL])
    trainer = ACTTrainer.build(unet_config("digits", run.resolution, 1, 10), config, Accelerator(cpu=True))
    with caplog.at_level("WARNING"):
        CheckpointManager(two, trainer.accelerator).load(checkpoint, trainer)
    assert (
        f"{checkpoint} was written by 2 process(es) and this run has 1: from here on the global batch is 1/2 of "
        "what it was" in caplog.text
    )


def test_lpips_offline_without_weights_stops_before_any_work(tmp_path, capsys, monkeypatch):
    from test_losses import FakeLPIPSPackage

    monkeypatch.setitem(sys.modules, "lpips", FakeLPIPSPackage)  # installed, but torchvision cannot download VGG16
    reset_accelerator_state()
    with pytest.raises(SystemExit):
        run_command_line(train_act.main, [*SMALL, "--output_dir", str(tmp_path / "out"), "--loss_type", "lpips"])
    printed = capsys.readouterr().err.strip().splitlines()[-1]
    assert printed.startswith("error: LPIPS needs torchvision's ImageNet VGG16 weights (vgg16-397923af.pth, 528 MB)")
    assert "pass --lpips_weights PATH" in printed and not (tmp_path / "out").exists()


def test_resuming_continues_the_run_that_wrote_the_checkpoint(places, tmp_path, caplog):
    import shutil

    other = tmp_path / "OTHER"
    shutil.copytree(places / "RUN", other)
    resume = [*SMALL, "--output_dir", str(other), "--resume_from_checkpoint"]
    # data of another kind (no labels): one error that names the difference, not a failed read of the weights
    reset_accelerator_state()
    another_run = r"checkpoint-2 is of another run than this one: num_class_embeds 10 in the checkpoint, None in this"
    with pytest.raises(ValueError, match=another_run + r" run; class names \{'0': '0'"):
        train_act.main([*resume, "latest", "--no-class_conditional"])
    # a checkpoint named as diffusers' scripts name it (inside --output_dir); other data and another length are said
    reset_accelerator_state()
    with caplog.at_level("WARNING"):
        train_act.main([*resume, "checkpoint-2", "--max_train_steps", "3", "--max_train_samples", "48"])
    assert (
        "was trained on {'source': 'scikit-learn digits', 'images': 64, 'classes': 10}, this run has "
        "{'source': 'scikit-learn digits', 'images': 48, 'classes': 10}: it goes on with other data" in caplog.text
    )
    assert "was written by a run of 2 iterations, this one has 3: the curricula N(k) and mu(k)" in caplog.text
    assert json.loads((other / "training_summary.json").read_text())["iterations"] == 3
    # another folder's checkpoint continues into this folder, and says so
    caplog.clear()
    reset_accelerator_state()
    with caplog.at_level("WARNING"):
        train_act.main([*SMALL, "--output_dir", str(tmp_path / "NEW"), "--resume_from_checkpoint",
                        str(other / "checkpoint-2"), "--max_train_steps", "3"])  # fmt: skip
    assert f"Resuming from {other / 'checkpoint-2'}, a checkpoint of another folder" in caplog.text
    assert (tmp_path / "NEW" / "model_index.json").is_file() and (other / "checkpoint-2").is_dir()
