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
import math
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
        self.id2label = None  # class names, saved with each checkpoint's pipeline once the data are known
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
        problems = checkpoint_problems(path) if path.is_dir() else ["no such folder"]
        if problems:
            raise ValueError(
                f"--resume_from_checkpoint {path} is not a complete checkpoint ({'; '.join(problems[:3])}). Pass a "
                "checkpoint-N folder of --output_dir, or 'latest'."
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
                    pipeline = ACTPipeline(trainer.sampled_unet(), trainer.scheduler, id2label=self.id2label)
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
        """Restores the trainer and this process's random state from `path`; returns the saved JSON state. Edited
        metadata and non-finite weights are errors that name the file, before training starts."""
        problems = checkpoint_problems(path)
        if problems:
            raise ValueError(f"Checkpoint {path} is damaged: {'; '.join(problems[:3])}.")
        manifest = json.loads((path / MANIFEST).read_text())
        step, named = manifest.get("step"), CHECKPOINT.fullmatch(path.name)
        if not _is_count(step) or (named and int(named.group(1)) != step):
            raise ValueError(
                f"{path / MANIFEST}: 'step' must be a non-negative integer"
                + (f" equal to the folder's {named.group(1)}" if named else "")
                + f", got {step!r}. Resume from another checkpoint."
            )
        state_file = path / "training" / "trainer_state.json"
        try:
            problems = trainer_state_problems(json.loads(state_file.read_text()))
        except (OSError, ValueError) as error:
            problems = [f"{type(error).__name__}: {error}"]
        if problems:
            raise ValueError(
                f"{state_file} is not a trainer state this version wrote: {'; '.join(problems[:3])}. Resume from "
                "another checkpoint."
            )
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


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: object, low: float = -math.inf, high: float = math.inf) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


# the evaluation EMA's counters (diffusers' EMAModel.state_dict without its weights): key -> check
EMA_STATE = {
    "decay": lambda v: _is_number(v, 0, 1), "min_decay": lambda v: _is_number(v, 0, 1),
    "optimization_step": _is_count, "update_after_step": _is_count, "use_ema_warmup": lambda v: isinstance(v, bool),
    "inv_gamma": lambda v: _is_number(v, 0), "power": lambda v: _is_number(v, 0),
}  # fmt: skip


def trainer_state_problems(state: object) -> list[str]:
    """What keeps `state` (a parsed `trainer_state.json`) from being one [`ACTTrainer.state_dict`] wrote: unknown
    keys, wrong types, values out of range. Empty for a good one."""
    if not isinstance(state, dict):
        return ["it is not a JSON object"]
    problems = [f"unknown key {key!r}" for key in state if key not in ("augment", "ema")]
    augment, ema = state.get("augment"), state.get("ema")
    if augment is not None and not (
        isinstance(augment, dict) and set(augment) == {"p", "r1_ema"} and _is_number(augment["p"], 0, 1)
        and _is_number(augment["r1_ema"], 0)
    ):  # fmt: skip
        problems.append(f"'augment' must be {{'p': a number in [0, 1], 'r1_ema': a number >= 0}}, got {augment!r}")
    if ema is not None and not isinstance(ema, dict):
        problems.append(f"'ema' must be an object, got {ema!r}")
    for key, value in (ema if isinstance(ema, dict) else {}).items():
        if key not in EMA_STATE:
            problems.append(f"unknown key 'ema.{key}'")
        elif not EMA_STATE[key](value):
            problems.append(f"'ema.{key}' has a value out of range or of the wrong type: {value!r}")
    return problems


def trainer_networks(trainer: "ACTTrainer") -> dict[str, list[torch.Tensor]]:
    """The weights a checkpoint holds, by network: generator, target, discriminator, ema."""
    unwrap = trainer.accelerator.unwrap_model
    networks = {"generator": list(unwrap(trainer.unet).parameters())}
    networks["target"] = list(trainer.target_unet.parameters())
    if trainer.discriminator is not None:
        networks["discriminator"] = list(unwrap(trainer.discriminator).parameters())
    if trainer.ema is not None:
        networks["ema"] = list(trainer.ema.shadow_params)
    return networks


def nonfinite_networks(trainer: "ACTTrainer") -> list[str]:
    """The networks of [`trainer_networks`] that hold a NaN or an infinite weight (one read from the device)."""
    networks = {name: tensors for name, tensors in trainer_networks(trainer).items() if tensors}
    finite = torch.stack([torch.stack([torch.isfinite(t).all() for t in ts]).all() for ts in networks.values()])
    return [name for name, ok in zip(networks, finite.tolist(), strict=True) if not ok]


def estimated_checkpoint_bytes(trainer: "ACTTrainer") -> int:
    """About what a checkpoint of `trainer` takes on disk: its networks, the shipped UNet (the generator's size) and
    two RAdam moments per trained weight."""
    sizes = {k: sum(t.numel() * t.element_size() for t in ts) for k, ts in trainer_networks(trainer).items()}
    return sum(sizes.values()) + 3 * sizes["generator"] + 2 * sizes.get("discriminator", 0)


def checkpoint_bytes(folder: Path) -> int:
    """The size of a complete checkpoint, from its manifest."""
    return sum(json.loads((folder / MANIFEST).read_text())["files"].values())
