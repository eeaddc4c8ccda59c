# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Training checkpoints that are safe to load, complete or absent, and sampleable the diffusers way.

`checkpoint-N/` holds `model_index.json`, `unet/` (the network the pipeline would ship) and `scheduler/`, so
`ACTPipeline.from_pretrained("out/checkpoint-N")` works; `training/` holds the trainer's state (safetensors, JSON and
`optimizers.pt`, read with `torch.load(weights_only=True)`); `random_states_R.json` each process's random state; and
`checkpoint.json`, written last, the step and a manifest of every file with its size. A checkpoint is written to a
hidden `.checkpoint-N.tmp` folder and renamed, and removed by renaming it to `.checkpoint-N.deleting` first, so a
killed run never leaves a folder that looks complete and is not.
"""

import json
import logging
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from ..pipelines.act.pipeline_act import ACTPipeline
from .trainer import ACTTrainer

logger = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"checkpoint-(\d+)")
MANIFEST = "checkpoint.json"


def _files(folder: Path) -> dict[str, int] | None:
    """Relative path -> size of every file; None when the folder changes while it is read (e.g. another process
    prunes it), which no complete checkpoint does."""
    try:
        return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    except FileNotFoundError:
        return None


def checkpoint_problems(folder: str | Path) -> list[str]:
    """What keeps `folder` from being a complete checkpoint: no manifest, or files missing, of another size or not
    in it. Empty for a complete one."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"no readable {MANIFEST}"]
    found = _files(folder)
    if found is None:
        return ["files disappeared while it was read (being removed?)"]
    found.pop(MANIFEST, None)
    problems = [f"{name} is missing" for name in listed if name not in found]
    problems += [
        f"{name} has {found[name]} bytes, not {size}" for name, size in listed.items() if found.get(name, size) != size
    ]
    problems += [f"{name} is not in {MANIFEST}" for name in found if name not in listed]
    return problems


def is_complete(folder: Path) -> bool:
    """Whether `folder` holds a manifest and exactly the files it lists, with their sizes."""
    return folder.is_dir() and not checkpoint_problems(folder)


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete `checkpoint-N` folders of `output_dir`, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [d for d in output_dir.iterdir() if CHECKPOINT.fullmatch(d.name) and is_complete(d)]
    return sorted(found, key=lambda d: int(CHECKPOINT.fullmatch(d.name).group(1)))


def random_state() -> dict:
    """This process's Python, NumPy, torch and CUDA random states as JSON values."""
    numpy_state, (version, internal, gauss) = np.random.get_state(), random.getstate()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": torch.get_rng_state().tolist(),
        "cuda": [state.tolist() for state in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_random_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# what a run writes into its output folder, besides checkpoints
RUN_OUTPUTS = (
    "model_index.json", "unet", "scheduler", "discriminator", "README.md", "samples.png", "samples",
    "training_summary.json", "logs.jsonl",
)  # fmt: skip


def check_output_dir(output_dir: str | Path, resume_from_checkpoint: str | None, overwrite: bool) -> list[Path]:
    """
    Checks, before any work, that a run may write `output_dir`: it can be created and written, and it holds no
    earlier run unless this one resumes it (a checkpoint path, or `latest` when a complete checkpoint exists) or
    replaces it (`overwrite`). Returns what `overwrite` is to remove (the earlier run's checkpoints, model and logs);
    the caller removes it on the main process.
    """
    output_dir = Path(output_dir)
    existing = output_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--output_dir {output_dir}: {existing} is a file, not a folder.")
    try:  # a real write (os.access says yes to root on a read-only file system)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(
            f"--output_dir {output_dir} cannot be written (a test file in {existing}: {error.strerror})."
        ) from None
    earlier = [output_dir / name for name in RUN_OUTPUTS if (output_dir / name).exists()]
    earlier += sorted(output_dir.glob("checkpoint-*")) + sorted(output_dir.glob(".checkpoint-*"))
    resume = resume_from_checkpoint and (resume_from_checkpoint != "latest" or complete_checkpoints(output_dir))
    if not earlier or resume:
        return []
    if not overwrite:
        names = ", ".join(sorted({p.name for p in earlier})[:4])
        if resume_from_checkpoint:
            raise ValueError(
                f"--output_dir {output_dir} holds an earlier run ({names}) but no complete checkpoint to resume: "
                "pass --overwrite_output_dir to replace it, or another --output_dir."
            )
        raise ValueError(
            f"--output_dir {output_dir} holds an earlier run ({names}): pass --resume_from_checkpoint latest to "
            "continue it, --overwrite_output_dir to replace it, or another --output_dir."
        )
    return earlier


def remove_paths(paths: list[Path]) -> None:
    """Removes files and folders; those that do not exist are skipped."""
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


class CheckpointManager:
    """
    Saves, lists, prunes and loads the checkpoints of one output folder (after edm2's `CheckpointIO`: the loop calls
    `save` and `load` and nothing else). Every process calls `save` and `load`; only the main one writes shared
    files.

    Args:
        output_dir (`str` or `Path`): The run's folder.
        accelerator: The run's `Accelerator`.
        total_limit (`int`, *optional*): Keep only the newest `total_limit` checkpoints.
    """

    def __init__(self, output_dir: str | Path, accelerator: Accelerator, total_limit: int | None = None):
        self.output_dir, self.accelerator, self.total_limit = Path(output_dir), accelerator, total_limit
        if accelerator.is_main_process and self.output_dir.is_dir():  # leftovers of a killed save or prune
            for stale in [*self.output_dir.glob(".checkpoint-*.tmp"), *self.output_dir.glob(".checkpoint-*.deleting")]:
                shutil.rmtree(stale, ignore_errors=True)
        accelerator.wait_for_everyone()

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return complete_checkpoints(self.output_dir)

    def latest(self) -> Path | None:
        found = self.complete()
        return found[-1] if found else None

    def resolve(self, resume_from_checkpoint: str | None) -> Path | None:
        """The checkpoint to resume from: None, `"latest"` (None when there is none) or a complete folder."""
        if not resume_from_checkpoint:
            return None
        if resume_from_checkpoint == "latest":
            latest = self.latest()
            if latest is None:
                logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {self.output_dir}; starting fresh.")
            return latest
        path = Path(resume_from_checkpoint)
        problems = checkpoint_problems(path) if path.is_dir() else ["no such folder"]
        if problems:
            raise ValueError(
                f"--resume_from_checkpoint {path} is not a complete checkpoint ({'; '.join(problems[:3])}). Pass a "
                "checkpoint-N folder of --output_dir, or 'latest'."
            )
        return path

    def save(self, step: int, trainer: "ACTTrainer", **state) -> Path:
        """Writes `checkpoint-{step}` (the trainer, every process's random state, `state` as JSON) and prunes."""
        acc = self.accelerator
        final, partial = self.output_dir / f"checkpoint-{step}", self.output_dir / f".checkpoint-{step}.tmp"
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        acc.wait_for_everyone()
        (partial / f"random_states_{acc.process_index}.json").write_text(json.dumps(random_state()))
        if acc.is_main_process:
            trainer.save_state(partial / "training")
            ACTPipeline(unet=trainer.sampled_unet(), scheduler=trainer.scheduler).save_pretrained(partial)
        acc.wait_for_everyone()
        if acc.is_main_process:
            manifest = {"step": step, **state, "files": _files(partial)}
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
            if final.exists():
                self._remove(final)
            os.replace(partial, final)
            if self.total_limit is not None:
                for old in self.complete()[: -self.total_limit]:
                    self._remove(old)
            logger.info(f"Saved {final}")
        acc.wait_for_everyone()
        return final

    def _remove(self, checkpoint: Path) -> None:
        doomed = checkpoint.with_name(f".{checkpoint.name}.deleting")
        os.replace(checkpoint, doomed)  # one atomic step: from here on it is no checkpoint
        shutil.rmtree(doomed)
        logger.info(f"Removed old checkpoint {checkpoint}")

    def load(self, path: Path, trainer: "ACTTrainer") -> dict:
        """Restores the trainer and this process's random state from `path`; returns the saved JSON state."""
        problems = checkpoint_problems(path)
        if problems:
            raise ValueError(f"Checkpoint {path} is damaged: {'; '.join(problems[:3])}.")
        trainer.load_state(path / "training")
        states = path / f"random_states_{self.accelerator.process_index}.json"
        if states.is_file():
            set_random_state(json.loads(states.read_text()))
        else:
            logger.warning(f"{states} is missing (a different number of processes?); random draws will differ.")
        return json.loads((path / MANIFEST).read_text())
