# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Writes a benchmark's table into a marked section of a Markdown file, leaving other sections intact."""

from pathlib import Path


def write_section(path: str | Path, name: str, body: str) -> None:
    """Replaces (or appends) the block between `<!-- {name}:start -->` and `<!-- {name}:end -->` in `path`."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def shown_command(script: str, argv: list[str], hidden: tuple[str, ...]) -> str:
    """`python {script} ...` as run, leaving out the flags starting with one of `hidden` (where the outputs went) and
    their values."""
    shown, skip = [], False
    for arg in argv:
        if skip or arg.startswith(hidden):
            skip = not skip and "=" not in arg
            continue
        shown.append(arg)
    return " ".join(["python", script, *shown])
