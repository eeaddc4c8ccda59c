# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""How saved ACT pipelines load with diffusers' own `DiffusionPipeline.from_pretrained`, with or without this package.

A saved folder (or Hub repo) looks like this:

```
model_index.json                          {"_class_name": "ACTPipeline",
                                           "scheduler": ["scheduling_consistency_act", "ConsistencyACTScheduler"],
                                           "unet": ["diffusers", "UNet2DModel"]}
pipeline_act.py, editing.py               the pipeline's code (remote code)
scheduler/scheduling_consistency_act.py   the scheduler's code (a diffusers "custom component")
scheduler/scheduler_config.json, unet/    configs and safetensors weights
```

With this package imported, `DiffusionPipeline.from_pretrained(folder_or_repo)` resolves `_class_name` with
`getattr(diffusers, "ACTPipeline")` (diffusers' `_get_pipeline_class`) and the scheduler's library name as a module of
`diffusers.pipelines` (`get_class_obj_and_candidates` checks that before it looks for code in the component's folder),
so the installed classes load and none of the folder's code runs: `register_with_diffusers` provides both names.

Without this package, `DiffusionPipeline.from_pretrained(folder_or_repo, custom_pipeline="pipeline_act",
trust_remote_code=True)` runs the folder's code: diffusers' `_resolve_custom_pipeline_and_cls` finds `pipeline_act.py`,
and the scheduler loads as a custom component from `scheduler/scheduling_consistency_act.py`. The copies are the
package's own modules with the package-relative scheduler import pointed at that file (diffusers copies relative
imports of the form `from .folder.module import ...` with the pipeline file).
"""

import json
import re
from pathlib import Path

SCHEDULER_MODULE = "scheduling_consistency_act"
PIPELINE_MODULE = "pipeline_act"
# the one import that leaves the pipeline's package; in a saved folder the scheduler's code sits in scheduler/
_PACKAGE_IMPORT = re.compile(r"^from \.\.\.schedulers\.scheduling_consistency_act import ", flags=re.M)
_FOLDER_IMPORT = f"from .scheduler.{SCHEDULER_MODULE} import "
_SIBLING_IMPORT = re.compile(r"^\s*from \.(\w+) import ", flags=re.M)
_OTHER_RELATIVE_IMPORT = re.compile(r"^\s*(from \.\.|import \.)", flags=re.M)


def register_with_diffusers() -> None:
    """Makes `DiffusionPipeline.from_pretrained` load saved ACT pipelines (all of `diffusers_act.pipelines.act`) with
    this package's classes."""
    import diffusers
    import diffusers.pipelines

    from ..schedulers import scheduling_consistency_act
    from . import act

    for name in act.__all__:
        cls = getattr(act, name)
        if isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline):
            setattr(diffusers, name, cls)
    setattr(diffusers.pipelines, SCHEDULER_MODULE, scheduling_consistency_act)


def remote_code_files() -> dict[str, str]:
    """
    The code files a saved pipeline carries, by path in the folder: the pipeline module, the modules of its package
    that it imports (recursively), and the scheduler module.
    """
    from ..schedulers import scheduling_consistency_act
    from .act import pipeline_act

    package_dir = Path(pipeline_act.__file__).parent
    files, pending = {}, [PIPELINE_MODULE]
    while pending:
        name = pending.pop()
        if f"{name}.py" in files:
            continue
        source = (package_dir / f"{name}.py").read_text(encoding="utf-8")
        source = _PACKAGE_IMPORT.sub(_FOLDER_IMPORT, source)
        stray = _OTHER_RELATIVE_IMPORT.search(source)
        if stray:
            raise RuntimeError(
                f"{package_dir / name}.py imports from outside its package ({stray.group(0).strip()!r}): a saved "
                "pipeline's remote code cannot resolve it. Import from diffusers or from the same package."
            )
        files[f"{name}.py"] = source
        pending += _SIBLING_IMPORT.findall(source)
    scheduler_source = Path(scheduling_consistency_act.__file__).read_text(encoding="utf-8")
    if re.search(r"^\s*(from|import) \.", scheduler_source, flags=re.M):
        raise RuntimeError("The scheduler module must not use relative imports: it is written into saved folders.")
    files[f"scheduler/{SCHEDULER_MODULE}.py"] = scheduler_source
    return files


def write_remote_code(save_directory: str | Path) -> None:
    """
    Writes the code files into a folder that `save_pretrained` just wrote, and records the scheduler in
    `model_index.json` under its module name (the custom-component entry of diffusers) instead of this package's
    module path.
    """
    from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler

    save_directory = Path(save_directory)
    for relative, source in remote_code_files().items():
        (save_directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (save_directory / relative).write_text(source, encoding="utf-8")
    index_file = save_directory / "model_index.json"
    index = json.loads(index_file.read_text(encoding="utf-8"))
    if index.get("scheduler", [None])[-1] == ConsistencyACTScheduler.__name__:
        index["scheduler"] = [SCHEDULER_MODULE, ConsistencyACTScheduler.__name__]
        index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


__all__ = ["register_with_diffusers", "remote_code_files", "write_remote_code"]
