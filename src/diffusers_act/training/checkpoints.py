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
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from ..pipelines.act.pipeline_act import ACTPipeline
from .config import TrainingError
from .disk import disk_full_errors
from .state import estimated_checkpoint_bytes, is_count, nonfinite_networks
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
        self.data = None  # the run's TrainingData: its class names and identity are saved with each checkpoint
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
        """The checkpoint to resume from: None, `"latest"` (None when there is none; a warning names each damaged
        checkpoint newer than the one chosen) or a complete folder."""
        if not resume_from_checkpoint:
            return None
        if resume_from_checkpoint == "latest":
            latest = self.latest()
            newest = int(CHECKPOINT.fullmatch(latest.name).group(1)) if latest else -1
            for folder in sorted(self.output_dir.glob("checkpoint-*")) if self.output_dir.is_dir() else []:
                named = CHECKPOINT.fullmatch(folder.name)
                if named and int(named.group(1)) > newest:
                    logger.warning(
                        f"--resume_from_checkpoint latest skips {folder}: it is damaged "
                        f"({'; '.join(checkpoint_problems(folder)[:3])}); resuming from {latest or 'nothing'}."
                    )
            if latest is None:
                logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {self.output_dir}; starting fresh.")
            return latest
        path = Path(resume_from_checkpoint)
        if not path.is_dir() and len(path.parts) == 1 and (self.output_dir / path).is_dir():
            path = self.output_dir / path  # a checkpoint-N of --output_dir named alone, as diffusers' scripts take it
        problems = checkpoint_problems(path) if path.is_dir() else ["no such folder"]
        if problems:
            raise ValueError(
                f"--resume_from_checkpoint {path} is not a complete checkpoint ({'; '.join(problems[:3])}). Pass a "
                "checkpoint-N folder of --output_dir, or 'latest'."
            )
        if path.resolve().parent != self.output_dir.resolve():
            logger.warning(
                f"Resuming from {path}, a checkpoint of another folder: this run continues it and writes its "
                f"checkpoints and model into {self.output_dir}; the other folder is not changed."
            )
        return path

    def save(self, step: int, trainer: "ACTTrainer", **state) -> Path:
        """Writes `checkpoint-{step}` (the trainer, every process's random state, `state` as JSON) and prunes. Weights
        that are not finite are never saved, and a full disk is one error that names the folder and the space
        needed, with the partial checkpoint removed and the earlier ones untouched."""
        acc = self.accelerator
        bad = nonfinite_networks(trainer)  # the same weights on every process: all stop alike
        if bad:
            raise TrainingError(
                f"Not saving checkpoint-{step}: the {', '.join(bad)} weights are not finite. The last good checkpoint "
                f"is {self.latest() or 'none was written'}."
            )
        final, partial = self.output_dir / f"checkpoint-{step}", self.output_dir / f".checkpoint-{step}.tmp"
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        acc.wait_for_everyone()
        (partial / f"random_states_{acc.process_index}.json").write_text(json.dumps(random_state()))
        error = None
        if acc.is_main_process:
            latest = self.latest()
            needed = checkpoint_bytes(latest) if latest else estimated_checkpoint_bytes(trainer)
            try:
                with disk_full_errors(self.output_dir, needed, f"checkpoint-{step}", cleanup=[partial]):
                    trainer.save_state(partial / "training")
                    id2label = getattr(self.data, "id2label", None)
                    pipeline = ACTPipeline(trainer.shipped_unet(), trainer.scheduler, id2label=id2label)
                    pipeline.save_pretrained(partial)
            except Exception as caught:
                error = caught
        acc.wait_for_everyone()
        failed = [None if error is None else str(error)]
        if acc.num_processes > 1:
            broadcast_object_list(failed)
        if error is not None:
            raise error
        if failed[0] is not None:
            raise TrainingError(failed[0])
        if acc.is_main_process:
            manifest = {"step": step, "total_steps": trainer.config.total_steps, "data": self._data_identity(),
                        **state, "files": _files(partial)}  # fmt: skip
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

    def _data_identity(self) -> dict | None:
        data = self.data
        if data is None:
            return None
        return {"source": str(data.source), "images": len(data.dataset), "classes": data.num_classes}

    def _check_same_run(self, path: Path, manifest: dict, trainer: "ACTTrainer") -> None:
        """Resuming continues the run that wrote `path`: a generator of another shape or other class names is an
        error that says so (not a failed read), other data or another length a warning."""
        saved = json.loads((path / "unet" / "config.json").read_text())
        built = json.loads(json.dumps(dict(trainer.shipped_unet().config)))  # tuples as JSON lists
        differ = [f"{key} {saved.get(key)!r} in the checkpoint, {built.get(key)!r} in this run" for key in
                  ("sample_size", "in_channels", "num_class_embeds", "block_out_channels", "layers_per_block",
                   "down_block_types", "up_block_types") if saved.get(key) != built.get(key)]  # fmt: skip
        index = json.loads((path / "model_index.json").read_text()).get("id2label") or None
        names = getattr(self.data, "id2label", None)
        names = {str(k): v for k, v in names.items()} if names else None
        if self.data is not None and index != names:
            differ.append(f"class names {index} in the checkpoint, {names} in this run's data")
        if differ:
            raise ValueError(
                f"Checkpoint {path} is of another run than this one: {'; '.join(differ)[:600]}. Resume with the data "
                "and flags of the run that wrote it, or start a new run in another --output_dir (or fine-tune from "
                "its model with --pretrained_model_name_or_path)."
            )
        data, now, total = manifest.get("data"), self._data_identity(), manifest.get("total_steps")
        if data and now and data != now:
            logger.warning(f"{path} was trained on {data}, this run has {now}: it goes on with other data.")
        if total is not None and total != trainer.config.total_steps:
            logger.warning(
                f"{path} was written by a run of {total} iterations, this one has {trainer.config.total_steps}: the "
                "curricula N(k) and mu(k) (and the learning-rate schedule) span the total, so from here on they "
                "differ from the interrupted run's. Pass its --max_train_steps to continue it exactly."
            )

    def _remove(self, checkpoint: Path) -> None:
        doomed = checkpoint.with_name(f".{checkpoint.name}.deleting")
        os.replace(checkpoint, doomed)  # one atomic step: from here on it is no checkpoint
        shutil.rmtree(doomed)
        logger.info(f"Removed old checkpoint {checkpoint}")

    def load(self, path: Path, trainer: "ACTTrainer") -> dict:
        """Restores the trainer and this process's random state from `path`; returns the saved JSON state. Edited
        metadata and non-finite weights are errors that name the file, before training starts."""
        problems = checkpoint_problems(path)
        if problems:
            raise ValueError(f"Checkpoint {path} is damaged: {'; '.join(problems[:3])}.")
        manifest = json.loads((path / MANIFEST).read_text())
        step, named = manifest.get("step"), CHECKPOINT.fullmatch(path.name)
        if not is_count(step) or (named and int(named.group(1)) != step):
            raise ValueError(
                f"{path / MANIFEST}: 'step' must be a non-negative integer"
                + (f" equal to the folder's {named.group(1)}" if named else "")
                + f", got {step!r}. Resume from another checkpoint."
            )
        self._check_same_run(path, manifest, trainer)
        trainer.load_state(path / "training")
        bad = nonfinite_networks(trainer)
        if bad:
            others = [c for c in self.complete() if c.resolve() != path.resolve()]
            hint = f" (e.g. --resume_from_checkpoint {others[-1]})" if others else ""
            raise ValueError(
                f"Checkpoint {path} holds non-finite weights ({', '.join(bad)}), from a diverged run or an edited "
                f"file: resuming would train (and ship) NaN. Resume from an earlier checkpoint{hint}."
            )
        saved_by, processes = len(list(path.glob("random_states_*.json"))), self.accelerator.num_processes
        if saved_by != processes:
            logger.warning(
                f"{path} was written by {saved_by} process(es) and this run has {processes}: from here on the global "
                f"batch is {processes}/{saved_by} of what it was, and the data order and random draws differ from an "
                f"uninterrupted run. Resume with {saved_by} process(es) to continue it exactly."
            )
        states = path / f"random_states_{self.accelerator.process_index}.json"
        if states.is_file():
            set_random_state(json.loads(states.read_text()))
        else:
            logger.warning(f"{states} is missing (a different number of processes?); random draws will differ.")
        return manifest


def checkpoint_bytes(folder: Path) -> int:
    """The size of a complete checkpoint, from its manifest."""
    return sum(json.loads((folder / MANIFEST).read_text())["files"].values())
