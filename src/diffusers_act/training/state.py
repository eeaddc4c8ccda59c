# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The training state a checkpoint holds, in one registry ([`STATE_FILES`]): each file with how it is saved and how
it is read back. Nothing is read in a way that can run code: safetensors, JSON (checked key by key) and the
optimizers' states with `torch.load(weights_only=True)`. Adding a piece of state is one entry here."""

import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

if TYPE_CHECKING:
    from .trainer import ACTTrainer


class StateFile(NamedTuple):
    """One file of the state: saved when `present(trainer)`, read back by `load(trainer, path, device)`."""

    name: str
    present: Callable[["ACTTrainer"], bool]
    save: Callable[["ACTTrainer", Path], None]
    load: Callable[["ACTTrainer", Path, str], None]


def _unwrap(trainer, name: str) -> torch.nn.Module:
    module = getattr(trainer, name)
    return module if name == "target_unet" else trainer.accelerator.unwrap_model(module)


def _network(file: str, attribute: str, needed: Callable = lambda trainer: True) -> StateFile:
    return StateFile(
        file, needed, lambda trainer, path: save_model(_unwrap(trainer, attribute), str(path)),
        lambda trainer, path, device: load_model(_unwrap(trainer, attribute), str(path), device=device),
    )  # fmt: skip


def _save_ema(trainer, path: Path) -> None:
    names = [name for name, _ in _unwrap(trainer, "unet").named_parameters()]
    save_file({n: p.detach().contiguous() for n, p in zip(names, trainer.ema.shadow_params, strict=True)}, path)


def _load_ema(trainer, path: Path, device: str) -> None:
    shadow = load_file(path, device=device)
    trainer.ema.shadow_params = [shadow[name] for name, _ in _unwrap(trainer, "unet").named_parameters()]


def _save_optimizers(trainer, path: Path) -> None:
    optimizers = {"generator": trainer.optimizer.state_dict()}
    if trainer.discriminator_optimizer is not None:
        optimizers["discriminator"] = trainer.discriminator_optimizer.state_dict()
    optimizers["lr_schedulers"] = [schedule.state_dict() for schedule in trainer.lr_schedulers]
    if trainer.accelerator.scaler is not None:
        optimizers["scaler"] = trainer.accelerator.scaler.state_dict()
    torch.save(optimizers, path)


def _load_optimizers(trainer, path: Path, device: str) -> None:
    optimizers = torch.load(path, map_location="cpu", weights_only=True)
    trainer.optimizer.load_state_dict(optimizers["generator"])
    if trainer.discriminator_optimizer is not None:
        trainer.discriminator_optimizer.load_state_dict(optimizers["discriminator"])
    for schedule, state in zip(trainer.lr_schedulers, optimizers["lr_schedulers"], strict=True):
        schedule.load_state_dict(state)
    if trainer.accelerator.scaler is not None and "scaler" in optimizers:
        trainer.accelerator.scaler.load_state_dict(optimizers["scaler"])


class StateFileError(ValueError):
    """A state file that was read but holds values this version never writes."""


def _load_json_state(trainer, path: Path, device: str) -> None:
    state = json.loads(path.read_text())
    problems = trainer_state_problems(state)
    if problems:
        raise StateFileError(f"is not a trainer state this version wrote: {'; '.join(problems[:3])}")
    trainer.load_state_dict(state)


# read in this order: the small JSON state is checked before any weights are loaded
STATE_FILES = (
    StateFile("trainer_state.json", lambda trainer: True,
              lambda trainer, path: path.write_text(json.dumps(trainer.state_dict(), indent=2)), _load_json_state),
    _network("generator.safetensors", "unet"),
    _network("target.safetensors", "target_unet"),
    _network("discriminator.safetensors", "discriminator", lambda trainer: trainer.discriminator is not None),
    StateFile("ema.safetensors", lambda trainer: trainer.ema is not None, _save_ema, _load_ema),
    StateFile("optimizers.pt", lambda trainer: True, _save_optimizers, _load_optimizers),
)  # fmt: skip


def save_trainer_state(trainer: "ACTTrainer", directory: str | Path) -> None:
    """Writes every [`STATE_FILES`] entry the trainer has into `directory` (on the main process: under DDP the state
    is identical on every process)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in STATE_FILES:
        if entry.present(trainer):
            entry.save(trainer, directory / entry.name)


def load_trainer_state(trainer: "ACTTrainer", directory: str | Path) -> None:
    """Reads what [`save_trainer_state`] wrote, on every process; a file that cannot be read safely (a crafted
    pickle, a damaged safetensors file, edited JSON) is an error that names it."""
    directory, device = Path(directory), str(trainer.accelerator.device)
    for entry in STATE_FILES:
        if not entry.present(trainer):
            continue
        try:
            entry.load(trainer, directory / entry.name, device)
        except StateFileError as error:
            raise ValueError(f"{directory / entry.name} {error}. Resume from another checkpoint.") from error
        except Exception as error:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            if isinstance(error, pickle.UnpicklingError):  # torch.load(weights_only=True) refused it
                reason = "it holds pickled objects that only a code-running pickle load could read"
            raise ValueError(
                f"Cannot read {directory / entry.name} ({reason}). Resume from another checkpoint: checkpoint files "
                "are read as safetensors, JSON or weights-only torch files, never as pickles."
            ) from error


def is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: object, low: float = -math.inf, high: float = math.inf) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


# the evaluation EMA's counters (diffusers' EMAModel.state_dict without its weights): key -> check
EMA_STATE = {
    "decay": lambda v: _is_number(v, 0, 1), "min_decay": lambda v: _is_number(v, 0, 1),
    "optimization_step": is_count, "update_after_step": is_count, "use_ema_warmup": lambda v: isinstance(v, bool),
    "inv_gamma": lambda v: _is_number(v, 0), "power": lambda v: _is_number(v, 0),
}  # fmt: skip


def trainer_state_dict(trainer: "ACTTrainer") -> dict:
    """[`ACTTrainer.state_dict`]: the augmentation controller, the evaluation EMA's counters (diffusers' `EMAModel`
    state without its weights) and the EMA m of `--loss_scale adaptive` ([`AdaptiveScale`]), each None when off."""
    ema = trainer.ema
    return {
        "augment": None if trainer.augment_controller is None else trainer.augment_controller.state_dict(),
        "ema": None if ema is None else {k: v for k, v in ema.state_dict().items() if k != "shadow_params"},
        "loss_scale": None if trainer.loss_scale is None else trainer.loss_scale.state_dict(),
    }


def load_trainer_state_dict(trainer: "ACTTrainer", state: dict) -> None:
    """[`ACTTrainer.load_state_dict`]: restores what [`trainer_state_dict`] wrote; a part this trainer does not use
    (or a state written before the part existed) is ignored."""
    if trainer.augment_controller is not None and state.get("augment") is not None:
        trainer.augment_controller.load_state_dict(state["augment"])
        trainer.augment.p = trainer.augment_controller.p
    if trainer.ema is not None and state.get("ema") is not None:
        for key, value in state["ema"].items():
            setattr(trainer.ema, key, value)
    if trainer.loss_scale is not None and state.get("loss_scale") is not None:
        trainer.loss_scale.load_state_dict(state["loss_scale"], trainer.accelerator.device)


def trainer_state_problems(state: object) -> list[str]:
    """What keeps `state` (a parsed `trainer_state.json`) from being one [`ACTTrainer.state_dict`] wrote: unknown
    keys, wrong types, values out of range. Empty for a good one."""
    if not isinstance(state, dict):
        return ["it is not a JSON object"]
    problems = [f"unknown key {key!r}" for key in state if key not in ("augment", "ema", "loss_scale")]
    augment, ema, scale = state.get("augment"), state.get("ema"), state.get("loss_scale")
    if augment is not None and not (
        isinstance(augment, dict) and set(augment) == {"p", "r1_ema"} and _is_number(augment["p"], 0, 1)
        and _is_number(augment["r1_ema"], 0)
    ):  # fmt: skip
        problems.append(f"'augment' must be {{'p': a number in [0, 1], 'r1_ema': a number >= 0}}, got {augment!r}")
    if scale is not None and not (
        isinstance(scale, dict) and set(scale) == {"ema"} and (scale["ema"] is None or _is_number(scale["ema"], 0))
    ):
        problems.append(f"'loss_scale' must be {{'ema': a number >= 0 or null}}, got {scale!r}")
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
