#!/usr/bin/env python
# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Writes docs/api.md, the API reference, from the public classes' and functions' signatures and docstrings.

python scripts/make_api_docs.py           # regenerate (a test fails when docs/api.md is out of date)
"""

import inspect
import re
import sys
from pathlib import Path

import diffusers_act
import diffusers_act.evaluation as evaluation
import diffusers_act.training as training

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "api.md"
SECTIONS = {
    "Sampling": [diffusers_act.ConsistencyACTScheduler, diffusers_act.ACTPipeline],
    "Zero-shot editing (docs/editing.md)": [
        diffusers_act.ACTColorizationPipeline,
        diffusers_act.ACTSuperResolutionPipeline,
        diffusers_act.ACTImg2ImgPipeline,
        diffusers_act.ACTDenoisingPipeline,
        diffusers_act.ACTInterpolationPipeline,
        diffusers_act.replace_known,
        diffusers_act.KnownCoordinates,
        diffusers_act.OrthogonalTransform,
        diffusers_act.IdentityTransform,
        diffusers_act.LuminanceTransform,
        diffusers_act.BlockAverageTransform,
        diffusers_act.strength_to_sigma,
        diffusers_act.slerp,
    ],
    "Models and presets": [diffusers_act.ACTDiscriminator, diffusers_act.unet_from_preset],
    "Training (`diffusers_act.training`)": [getattr(training, name) for name in training.__all__],
    "Evaluation (`diffusers_act.evaluation`)": [getattr(evaluation, name) for name in evaluation.__all__],
}
# methods inherited from diffusers' mixins are documented by diffusers
SKIP_METHODS = {"forward"}


def signature(obj) -> str:
    """The signature, with module paths dropped from class names (`torch._C.Generator` -> `Generator`)."""
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    return re.sub(r"\b(?:[a-z_]\w*\.)+([A-Z]\w*)", r"\1", text)


def entry(obj, level: str = "###") -> list[str]:
    name = getattr(obj, "__name__", repr(obj))
    if not callable(obj):
        return [f"{level} `{name}`", "", f"A constant: `{obj!r}`.", ""]
    lines = [f"{level} `{name}{signature(obj)}`", "", inspect.getdoc(obj) or "", ""]
    if inspect.isclass(obj):
        for method_name, method in vars(obj).items():
            public = not method_name.startswith("_") or method_name == "__call__"
            if (
                public
                and method_name not in SKIP_METHODS
                and (inspect.isfunction(method) or isinstance(method, classmethod))
            ):
                function = method.__func__ if isinstance(method, classmethod) else method
                doc = inspect.getdoc(function)
                if doc:
                    lines += [f"#### `{name}.{method_name}{signature(function)}`", "", doc, ""]
    return lines


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the code by `python scripts/make_api_docs.py`; do not edit by hand.",
        "",
    ]
    for title, objects in SECTIONS.items():
        lines += [f"## {title}", ""]
        for obj in objects:
            if isinstance(obj, (int, str, float)):
                continue
            lines += entry(obj)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}", file=sys.stderr)
