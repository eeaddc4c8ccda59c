# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""How saved ACT pipelines load with diffusers' own `DiffusionPipeline.from_pretrained`, with or without this package.

A saved folder (or Hub repo) looks like this:

```
model_index.json                          {"_class_name": ["pipeline_act", "ACTPipeline"],
                                           "scheduler": ["scheduling_consistency_act", "ConsistencyACTScheduler"],
                                           "unet": ["diffusers", "UNet2DModel"]}
pipeline_act.py, editing.py               the pipeline's code (remote code; an editing pipeline adds its own
                                           module, e.g. pipeline_act_img2img.py, and names it in `_class_name`)
scheduler/scheduling_consistency_act.py   the scheduler's code (a diffusers "custom component")
scheduler/scheduler_config.json, unet/    configs and weights
```

`_class_name` names the pipeline's module and class, diffusers' form for a custom pipeline whose code is in the
folder. Without this package imported, `DiffusionPipeline.from_pretrained(folder_or_repo)` therefore asks for
`trust_remote_code=True`, and with it runs the folder's code: diffusers' `_resolve_custom_pipeline_and_cls` finds
`pipeline_act.py`, and the scheduler loads as a custom component from `scheduler/scheduling_consistency_act.py`. The
copies are the package's own modules with the package-relative scheduler import pointed at that file (diffusers copies
relative imports of the form `from .folder.module import ...` with the pipeline file).

With this package imported, none of the folder's code runs and the installed classes load, with
`DiffusionPipeline.from_pretrained` as with `ACTPipeline.from_pretrained`: `register_with_diffusers` wraps diffusers'
`_get_pipeline_class` so that `[module, class]` naming one of this package's pipeline modules resolves as the plain
class name does (`getattr(diffusers, "ACTPipeline")`), and registers the scheduler's module name as a module of
`diffusers.pipelines` (`get_class_obj_and_candidates` checks that before it looks for code in the component's folder).
"""

import functools
import inspect
import json
import re
from pathlib import Path

SCHEDULER_MODULE = "scheduling_consistency_act"
PIPELINE_MODULE = "pipeline_act"
# the modules that define pipelines, one each (as diffusers lays out its pipelines)
PIPELINE_MODULES = (
    PIPELINE_MODULE, "pipeline_act_colorization", "pipeline_act_denoising", "pipeline_act_img2img",
    "pipeline_act_interpolation", "pipeline_act_super_resolution",
)  # fmt: skip
PACKAGE_DIR = Path(__file__).parent / "act"  # the pipelines' package, whose modules a saved folder carries
# the one import that leaves the pipeline's package; in a saved folder the scheduler's code sits in scheduler/
_PACKAGE_IMPORT = re.compile(r"^from \.\.\.schedulers\.scheduling_consistency_act import ", flags=re.M)
_FOLDER_IMPORT = f"from .scheduler.{SCHEDULER_MODULE} import "
_SIBLING_IMPORT = re.compile(r"^\s*from \.(\w+) import ", flags=re.M)
_OTHER_RELATIVE_IMPORT = re.compile(r"^\s*(from \.\.|import \.)", flags=re.M)


def register_with_diffusers(pipelines: dict[str, type]) -> None:
    """Makes `DiffusionPipeline.from_pretrained` load saved ACT pipelines with this package's classes (`pipelines`:
    name -> class, those of `diffusers_act.pipelines.act`)."""
    import diffusers
    import diffusers.pipelines
    from diffusers.pipelines import pipeline_utils

    from ..schedulers import scheduling_consistency_act

    for name, cls in pipelines.items():
        setattr(diffusers, name, cls)
    setattr(diffusers.pipelines, SCHEDULER_MODULE, scheduling_consistency_act)
    get_pipeline_class = getattr(pipeline_utils, "_get_pipeline_class", None)  # private: absent, nothing is wrapped
    if get_pipeline_class is not None and not hasattr(get_pipeline_class, "_resolves_installed_act_pipelines"):
        pipeline_utils._get_pipeline_class = _resolving_installed_pipelines(get_pipeline_class, dict(pipelines))


def _resolving_installed_pipelines(get_pipeline_class, pipelines: dict[str, type]):
    """
    Wraps diffusers' `_get_pipeline_class` (of `from_pretrained` and `download`): when `_class_name` is
    `[module, class]` with one of `PIPELINE_MODULES` and a class this package registered with diffusers, and
    diffusers took the custom pipeline from it (the user passed no `custom_pipeline`), the pipeline class is resolved
    as for `_class_name: class`; anything else goes to diffusers unchanged.
    """
    import diffusers

    signature = inspect.signature(get_pipeline_class)
    if not {"config", "custom_pipeline", "class_name"} <= set(signature.parameters):
        return get_pipeline_class  # another diffusers: left as it is (the folder's code then asks for trust)

    @functools.wraps(get_pipeline_class)
    def get_installed_or_custom_pipeline_class(*args, **kwargs):
        call = signature.bind(*args, **kwargs)
        named = (call.arguments.get("config") or {}).get("_class_name")
        module, class_name = Path(str(call.arguments.get("custom_pipeline"))).stem, call.arguments.get("class_name")
        installed = pipelines.get(str(class_name))
        if (
            isinstance(named, (list, tuple))
            and list(named) == [module, class_name]
            and module in PIPELINE_MODULES
            and installed is not None
            and getattr(diffusers, class_name, None) is installed
        ):
            call.arguments["custom_pipeline"] = None  # as for `"_class_name": class_name`
            if "repo_id" in signature.parameters:
                call.arguments["repo_id"] = None
        return get_pipeline_class(*call.args, **call.kwargs)

    get_installed_or_custom_pipeline_class._resolves_installed_act_pipelines = True
    return get_installed_or_custom_pipeline_class


def remote_code_files(pipeline_module: str = PIPELINE_MODULE) -> dict[str, str]:
    """
    The code files a saved pipeline carries, by path in the folder: the pipeline's module (one of
    `PIPELINE_MODULES`), the modules of its package that it imports (recursively), and the scheduler module.
    """
    from ..schedulers import scheduling_consistency_act

    if pipeline_module not in PIPELINE_MODULES:
        raise ValueError(f"`pipeline_module` must be one of {PIPELINE_MODULES}, got {pipeline_module!r}.")
    package_dir = PACKAGE_DIR
    files, pending = {}, [pipeline_module]
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


def write_remote_code(save_directory: str | Path, pipeline_class: type) -> None:
    """
    Writes the code files into a folder that `pipeline_class.save_pretrained` just wrote, and records in
    `model_index.json` the pipeline as `[module, class]` (diffusers' custom-pipeline entry) and the scheduler under its
    module name (the custom-component entry) instead of this package's module path. A pipeline class defined outside
    this package keeps its plain name, and the folder the code of `ACTPipeline`.
    """
    from ..schedulers.scheduling_consistency_act import ConsistencyACTScheduler

    save_directory = Path(save_directory)
    index_file = save_directory / "model_index.json"
    index = json.loads(index_file.read_text(encoding="utf-8"))
    package, _, module = pipeline_class.__module__.rpartition(".")
    if module in PIPELINE_MODULES and package.endswith("pipelines.act"):
        index["_class_name"] = [module, pipeline_class.__name__]
    for relative, source in remote_code_files(module if module in PIPELINE_MODULES else PIPELINE_MODULE).items():
        (save_directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (save_directory / relative).write_text(source, encoding="utf-8")
    if index.get("scheduler", [None])[-1] == ConsistencyACTScheduler.__name__:
        index["scheduler"] = [SCHEDULER_MODULE, ConsistencyACTScheduler.__name__]
    index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


__all__ = ["register_with_diffusers", "remote_code_files", "write_remote_code"]
