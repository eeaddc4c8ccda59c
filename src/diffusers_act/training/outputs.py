# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The run's output folder: whether a run may write it, what `--overwrite_output_dir` may remove (only what an
earlier run recorded as its own, never anything outside the folder), the final save (staged, then moved in with
`model_index.json` last, so an interrupted save never loads as a model), and disk-full errors in one line."""

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .checkpoints import complete_checkpoints
from .disk import disk_full_errors

logger = logging.getLogger(__name__)

# what a run writes into its output folder, besides checkpoints and its --logging_dir
RUN_OUTPUTS = (
    "model_index.json", "unet", "scheduler", "discriminator", "README.md", "samples.png", "samples",
    "training_summary.json", "logs.jsonl",
)  # fmt: skip
RECORD = "train_act_outputs.json"  # the run's record of what it writes, made before it writes anything else
STAGING = ".final.tmp"  # where the final pipeline is written before it is moved in
# checkpoints, their temporary and doomed forms, and a staged final save: a recorded run owns them all
OWNED_PATTERN = re.compile(r"\.?checkpoint-\d+(\.tmp|\.deleting)?|" + re.escape(STAGING))


def inside(output_dir: Path, relative: str) -> Path | None:
    """`output_dir / relative` when it names something strictly inside `output_dir` (its parent folders resolved, so a
    link or `..` cannot lead out), else None."""
    path = output_dir / relative
    if not relative or Path(relative).is_absolute() or path.name in ("", ".", ".."):
        return None
    parent, root = path.parent.resolve(), output_dir.resolve()
    return path if parent == root or root in parent.parents else None


def run_outputs(output_dir: Path, logging_dir: str) -> list[str]:
    """What this run writes into `output_dir` (relative paths): its files and, when it lies inside, `logging_dir`."""
    logs = inside(output_dir, logging_dir)
    return [*RUN_OUTPUTS, *([logs.relative_to(output_dir).as_posix()] if logs is not None else [])]


def recorded_outputs(output_dir: Path) -> list[str] | None:
    """The outputs an earlier run recorded in `output_dir` ([`RECORD`]); None when there is no readable record."""
    try:
        outputs = json.loads((output_dir / RECORD).read_text())["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [entry for entry in outputs if isinstance(entry, str)] if isinstance(outputs, list) else None


def check_output_dir(
    output_dir: str | Path, resume_from_checkpoint: str | None, overwrite: bool, logging_dir: str = "logs"
) -> list[Path]:
    """
    Checks, before any work, that a run may write `output_dir`: it can be created and written, and it holds no
    earlier run unless this one resumes it (a checkpoint path, or `latest` when a complete checkpoint exists) or
    replaces it (`overwrite`). Returns what `overwrite` is to remove: the outputs the earlier run recorded as its own
    (its checkpoints, model, samples, logs and a `logging_dir` inside the folder). Anything of an earlier run that no
    record names is an error, not removed; nothing outside `output_dir` is ever returned.
    """
    output_dir = Path(output_dir)
    if overwrite and resume_from_checkpoint:
        raise ValueError(
            "Pass --resume_from_checkpoint to continue the run in --output_dir, or --overwrite_output_dir to replace "
            "it, not both."
        )
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
    record = recorded_outputs(output_dir)
    recorded = {p for p in (inside(output_dir, entry) for entry in record or []) if p is not None}
    unrecorded = [p for p in earlier if record is None or p not in recorded and not OWNED_PATTERN.fullmatch(p.name)]
    if unrecorded:
        names = ", ".join(sorted(p.name for p in unrecorded)[:4])
        raise ValueError(
            f"--overwrite_output_dir removes only what an earlier run recorded in {output_dir / RECORD}, and "
            f"{output_dir} holds {names} that no run recorded (an older version's run, or your own files): move or "
            "delete them yourself, or pass another --output_dir."
        )
    owned = [p for p in output_dir.iterdir() if OWNED_PATTERN.fullmatch(p.name)]
    return sorted({*earlier, *owned, *(p for p in recorded if p.exists() or p.is_symlink()), output_dir / RECORD})


def remove_paths(paths: list[Path]) -> None:
    """Removes files and folders (a link itself, never what it points to); those that do not exist are skipped."""
    for path in paths:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path)


def claim_output_dir(output_dir: str | Path, earlier_run: list[Path], logging_dir: str) -> None:
    """
    Call once all checks have passed, on the main process, before the run writes anything: removes `earlier_run`
    ([`check_output_dir`]'s list; with `--overwrite_output_dir`) and records what this run writes in [`RECORD`]
    (kept with what a resumed run recorded before), so that a later `--overwrite_output_dir` removes exactly that.
    A `logging_dir` outside `output_dir` is written but never recorded, so never removed.
    """
    output_dir = Path(output_dir)
    remove_paths(earlier_run)
    remove_paths([output_dir / STAGING])  # an interrupted final save: it is redone at the end of this run
    if inside(output_dir, logging_dir) is None:
        logger.info(f"--logging_dir {logging_dir} is outside --output_dir: it is written, and never removed by a run.")
    output_dir.mkdir(parents=True, exist_ok=True)
    earlier = [entry for entry in recorded_outputs(output_dir) or [] if inside(output_dir, entry) is not None]
    outputs = list(dict.fromkeys([*earlier, *run_outputs(output_dir, logging_dir)]))
    record = {"written_by": "examples/train_act/train_act.py (diffusers-act)", "outputs": outputs}
    partial = output_dir / f".{RECORD}.tmp"
    partial.write_text(json.dumps(record, indent=2))
    os.replace(partial, output_dir / RECORD)


def _replace(source: Path, target: Path) -> None:
    """Moves `source` to `target`, replacing it: one rename for a file; an old folder is renamed away first."""
    if target.is_dir() and not target.is_symlink():
        doomed = target.with_name(f".{target.name}.replaced")
        remove_paths([doomed])
        os.replace(target, doomed)
        os.replace(source, target)
        shutil.rmtree(doomed)
    else:
        os.replace(source, target)


def save_final(output_dir: str | Path, write: Callable[[Path], None], needed_bytes: int = 0) -> None:
    """
    Writes the final pipeline as checkpoints are written: `write(folder)` fills a staging folder inside `output_dir`
    (which starts with the current `README.md`, so a card that is updated keeps the user's text), then each entry
    replaces its old version, `model_index.json` last. Until that last rename the folder has no `model_index.json`,
    so a save interrupted half-way never loads as a pipeline that mixes two runs; the next run redoes it.
    """
    output_dir = Path(output_dir)
    staging = output_dir / STAGING
    remove_paths([staging])
    with disk_full_errors(output_dir, needed_bytes, "the final pipeline", cleanup=[staging]):
        staging.mkdir(parents=True)
        if (output_dir / "README.md").is_file():
            shutil.copy2(output_dir / "README.md", staging / "README.md")
        write(staging)
    (output_dir / "model_index.json").unlink(missing_ok=True)  # from here on the folder is no pipeline
    for entry in sorted(staging.iterdir()):
        if entry.name != "model_index.json":
            _replace(entry, output_dir / entry.name)
    os.replace(staging / "model_index.json", output_dir / "model_index.json")
    staging.rmdir()
