# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""A full disk as one line that names the folder and the space needed, instead of a trace from safetensors' or
torch's writer; the partial files removed."""

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def format_bytes(size: float) -> str:
    """`size` bytes in B, KiB, MiB, GiB or TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


class DiskFullError(OSError):
    """A write that the disk has no room for; its message names the folder and the space needed."""


# how safetensors (a Rust io::Error) and other writers word a full disk or quota
DISK_FULL_MESSAGES = ("No space left on device", "StorageFull", "os error 28", "Disk quota exceeded")


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a full disk or quota: an `OSError` with ENOSPC / EDQUOT, or the
    messages of safetensors' and torch's writers for them."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(error) for text in DISK_FULL_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def disk_full_errors(folder: Path, needed_bytes: int, what: str, cleanup: list[Path] = ()) -> Iterator[None]:
    """
    Checks that `folder`'s disk has about `needed_bytes` free before writing `what`, and turns a full disk while
    writing (an `OSError`, or the traces of safetensors and torch) into one `OSError` that names the folder and the
    space needed, after removing the partial files in `cleanup`. Other errors pass through, the partial files removed.
    """
    def remove_partial_files():
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)

    free = shutil.disk_usage(folder).free
    if needed_bytes and free < needed_bytes:
        remove_partial_files()
        raise DiskFullError(
            f"Not enough disk space in {folder} to write {what}: about {format_bytes(needed_bytes)} needed, "
            f"{format_bytes(free)} free. Nothing was written and earlier checkpoints are untouched: free some space "
            "(or lower --checkpoints_total_limit) and resume with --resume_from_checkpoint latest."
        )
    try:
        yield
    except Exception as error:
        # torch's writer says only "unexpected pos": a disk left with less than 1 MiB free is full too
        full = is_disk_full(error) or shutil.disk_usage(folder).free < 2**20
        remove_partial_files()
        if not full:
            raise
        raise DiskFullError(
            f"The disk of {folder} is full: writing {what} needs about {format_bytes(needed_bytes)} and failed, so "
            "it was removed; earlier checkpoints are untouched. Free some space (or lower --checkpoints_total_limit) "
            "and resume with --resume_from_checkpoint latest."
        ) from error
