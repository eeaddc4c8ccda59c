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
from safetensors.torch import load_file

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
    manifest = json.loads((crafted / "checkpoint.json").read_text())
    manifest["files"]["training/optimizers.pt"] = (crafted / "training" / "optimizers.pt").stat().st_size
    (crafted / "checkpoint.json").write_text(json.dumps(manifest))
    return root


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


PLACES = ("RUN", "EMPTY", "BROKEN", "DAMAGED", "CORRUPT", "CRAFTED", "OUT")


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


def test_pipeline_loads_safetensors_only_unless_told(tmp_path):
    pipe = ACTPipeline(unet=tiny_unet(), scheduler=ConsistencyACTScheduler())
    pipe.save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert list((tmp_path / "bin" / "unet").glob("*.bin")) and not list((tmp_path / "bin").rglob("*.safetensors"))
    with pytest.raises(OSError, match="safetensors"):
        ACTPipeline.from_pretrained(tmp_path / "bin")
    loaded = ACTPipeline.from_pretrained(tmp_path / "bin", use_safetensors=False)  # explicit: a trusted source
    assert all(torch.equal(a, b) for a, b in zip(loaded.unet.parameters(), pipe.unet.parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latents": torch.full((1, 3, 8, 8), float("nan"))}, "`latents` holds NaN"),
        ({"image": torch.full((1, 3, 8, 8), float("inf")), "mask_image": torch.ones(1, 1, 8, 8)}, "`image` holds NaN"),
        ({"image": torch.zeros(1, 3, 8, 8), "mask_image": torch.full((1, 1, 8, 8), float("nan"))}, "`mask_image`"),
        ({"image": torch.full((1, 3, 8, 8), -0.5), "mask_image": torch.ones(1, 1, 8, 8)}, r"in \[0, 1\], got \[-0.5"),
        ({"image": np.full((8, 8, 3), 200, np.uint8), "mask_image": np.ones((8, 8), np.float32)}, "by 255"),
        ({"image": torch.zeros(1, 3, 8, 8), "mask_image": torch.full((1, 1, 8, 8), 2.0)}, r"got \[2, 2\]"),
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
