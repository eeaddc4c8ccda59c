# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACT pipelines in the diffusers ecosystem: `DiffusionPipeline.from_pretrained` with and without this package (the
remote-code path), Hub snapshots, schedulers both ways, callbacks and the pipeline's example docstring."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_unet
from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline, DiffusionPipeline
from diffusers.callbacks import PipelineCallback

from diffusers_act import ACTPipeline, ConsistencyACTScheduler
from diffusers_act.pipelines.act import pipeline_act
from diffusers_act.pipelines.remote_code import PACKAGE_DIR, PIPELINE_MODULES, remote_code_files


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def cond_pipe():
    scheduler = ConsistencyACTScheduler(noise_conditioning="sigma", num_train_timesteps=20)
    return quiet(ACTPipeline(unet=tiny_unet(num_class_embeds=10, in_channels=1, out_channels=1), scheduler=scheduler))


def sample(pipe, **kwargs):
    kwargs = {"batch_size": 2, "class_labels": [3, 7], "num_inference_steps": 2, "generator": gen(5), **kwargs}
    return pipe(output_type="pt", **kwargs).images


def files_of(folder):
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------------------------
# What save_pretrained writes
# ---------------------------------------------------------------------------------------------------------------
def test_saved_folder_holds_code_and_safetensors_only(cond_pipe, tmp_path):
    cond_pipe.save_pretrained(tmp_path)
    assert files_of(tmp_path) == {
        "model_index.json",
        "pipeline_act.py",
        "editing.py",
        "autoencoder.py",
        "image_inputs.py",
        "scheduler/scheduler_config.json",
        "scheduler/scheduling_consistency_act.py",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
    }
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_act", "ACTPipeline"]  # diffusers' custom-pipeline form
    assert index["scheduler"] == ["scheduling_consistency_act", "ConsistencyACTScheduler"]
    assert index["unet"] == ["diffusers", "UNet2DModel"] and index["vae"] == [None, None]  # no VAE: pixel space
    # the scheduler is the package's module verbatim; the pipeline's one package-external import points at it
    scheduler_source = Path(sys.modules[ConsistencyACTScheduler.__module__].__file__).read_text()
    assert (tmp_path / "scheduler/scheduling_consistency_act.py").read_text() == scheduler_source
    code = (tmp_path / "pipeline_act.py").read_text()
    assert "from .scheduler.scheduling_consistency_act import ConsistencyACTScheduler" in code
    assert not re.search(r"^\s*from \.\.", code, flags=re.M)
    assert code.replace("from .scheduler.", "from ...schedulers.") == Path(pipeline_act.__file__).read_text()


def test_a_diffusers_scheduler_is_recorded_as_diffusers(cond_pipe, tmp_path):
    cond_pipe.scheduler = CMStochasticIterativeScheduler()
    cond_pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "CMStochasticIterativeScheduler"]
    loaded = quiet(DiffusionPipeline.from_pretrained(tmp_path))
    assert type(loaded) is ACTPipeline and type(loaded.scheduler) is CMStochasticIterativeScheduler


# ---------------------------------------------------------------------------------------------------------------
# Loading with this package: DiffusionPipeline gives our classes, and runs none of the folder's code
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loader", [DiffusionPipeline, ACTPipeline])
def test_diffusion_pipeline_loads_a_saved_folder_as_act_pipeline(cond_pipe, tmp_path, loader):
    cond_pipe.save_pretrained(tmp_path)
    # the folder's code would fail if it ran: loading must use the installed classes
    for code in ("pipeline_act.py", "editing.py", "scheduler/scheduling_consistency_act.py"):
        (tmp_path / code).write_text("raise RuntimeError('the folder code ran')\n")
    loaded = quiet(loader.from_pretrained(tmp_path))
    assert type(loaded) is ACTPipeline and type(loaded.scheduler) is ConsistencyACTScheduler
    assert loaded.scheduler.config.noise_conditioning == "sigma" and loaded.scheduler.config.num_train_timesteps == 20
    torch.testing.assert_close(sample(loaded), sample(cond_pipe), rtol=0, atol=1e-6)


def make_hub_cache(folder, cache_dir, repo_id="someone/act-digits"):
    """Lays `folder` out as huggingface_hub's cache of a downloaded model repo (refs/main -> snapshots/<commit>)."""
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folder, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return repo_id


def test_diffusion_pipeline_loads_a_hub_snapshot_offline(cond_pipe, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cond_pipe.save_pretrained(tmp_path / "saved")
    repo_id = make_hub_cache(tmp_path / "saved", tmp_path / "cache")
    loaded = quiet(DiffusionPipeline.from_pretrained(repo_id, cache_dir=tmp_path / "cache"))
    assert type(loaded) is ACTPipeline and type(loaded.scheduler) is ConsistencyACTScheduler
    torch.testing.assert_close(sample(loaded), sample(cond_pipe), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Loading without this package: diffusers' remote-code path
# ---------------------------------------------------------------------------------------------------------------
BLOCK_PACKAGE = """
import sys

class _NoDiffusersAct:  # this process behaves as if diffusers-act were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "diffusers_act":
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, _NoDiffusersAct())
"""


def run_without_package(code, tmp_path, **env):
    script = tmp_path / "remote.py"
    script.write_text(BLOCK_PACKAGE + textwrap.dedent(code))
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), **env}
    # run from tmp_path, without the test folder or the source tree on sys.path
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )


REMOTE_LOAD = """
import sys
import torch
from diffusers import DiffusionPipeline

source = sys.argv[1] if len(sys.argv) > 1 else {source!r}
pipe = DiffusionPipeline.from_pretrained(source, custom_pipeline="pipeline_act", trust_remote_code=True, **{kwargs})
pipe.set_progress_bar_config(disable=True)
assert "diffusers_act" not in sys.modules
print(type(pipe).__module__, type(pipe).__name__, type(pipe.scheduler).__module__, type(pipe.scheduler).__name__)
images = pipe(batch_size=2, class_labels=[3, 7], num_inference_steps=2, generator=torch.Generator().manual_seed(5),
              output_type="pt").images
torch.save(images, {out!r})
"""


@pytest.mark.parametrize("layout", ["folder", "hub"])
def test_a_saved_folder_loads_without_the_package_through_remote_code(cond_pipe, tmp_path, layout):
    cond_pipe.save_pretrained(tmp_path / "saved")
    if layout == "folder":
        source, kwargs = str(tmp_path / "saved"), {}
    else:
        source = make_hub_cache(tmp_path / "saved", tmp_path / "cache")
        kwargs = {"cache_dir": str(tmp_path / "cache")}
    result = run_without_package(
        REMOTE_LOAD.format(source=source, kwargs=kwargs, out=str(tmp_path / "images.pt")), tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pipeline_module, pipeline_name, scheduler_module, scheduler_name = result.stdout.split()[-4:]
    assert pipeline_module.startswith("diffusers_modules.") and pipeline_name == "ACTPipeline"
    assert scheduler_module.startswith("diffusers_modules.") and scheduler_name == "ConsistencyACTScheduler"
    torch.testing.assert_close(torch.load(tmp_path / "images.pt"), sample(cond_pipe), rtol=0, atol=1e-6)


def test_remote_code_needs_trust_remote_code(cond_pipe, tmp_path):
    cond_pipe.save_pretrained(tmp_path / "saved")
    code = REMOTE_LOAD.replace(", trust_remote_code=True", "").format(
        source=str(tmp_path / "saved"), kwargs={}, out="x"
    )
    result = run_without_package(code, tmp_path)
    assert result.returncode != 0 and "trust_remote_code=True" in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# Schedulers both ways
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "steps", [{"num_inference_steps": 1}, {"num_inference_steps": 3}, {"timesteps": [22, 0]}, {"timesteps": [39, 3]}]
)
def test_act_pipeline_with_diffusers_scheduler_matches_diffusers_pipeline(unet, steps):
    ours = quiet(ACTPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler()))
    theirs = quiet(ConsistencyModelPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler()))
    a = ours(batch_size=3, generator=gen(2), output_type="pt", **steps).images
    b = theirs(batch_size=3, generator=gen(2), output_type="pt", **steps).images
    assert a.shape == (3, 3, 8, 8)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("steps", [{"num_inference_steps": 1}, {"num_inference_steps": 2}, {"timesteps": [22, 0]}])
def test_diffusers_pipeline_with_our_scheduler_matches_diffusers_scheduler(steps):
    unet = tiny_unet(num_class_embeds=4)
    with_ours = quiet(ConsistencyModelPipeline(unet=unet, scheduler=ConsistencyACTScheduler()))
    with_theirs = quiet(ConsistencyModelPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler()))
    kwargs = {"batch_size": 2, "class_labels": [1, 3], "output_type": "pt", **steps}
    a = with_ours(generator=gen(4), **kwargs).images
    b = with_theirs(generator=gen(4), **kwargs).images
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_diffusers_scheduler_cannot_inpaint_and_says_how_to_convert(unet):
    pipe = quiet(ACTPipeline(unet=unet, scheduler=CMStochasticIterativeScheduler()))
    with pytest.raises(ValueError, match=r"ConsistencyACTScheduler.from_config\(pipe.scheduler.config\)"):
        pipe(image=np.zeros((8, 8, 3), np.float32), mask_image=np.ones((8, 8), np.float32))
    with pytest.raises(ValueError, match="does not return"):
        pipe(callback_on_step_end=lambda *a: {}, callback_on_step_end_tensor_inputs=["denoised"])


# ---------------------------------------------------------------------------------------------------------------
# Callback conventions
# ---------------------------------------------------------------------------------------------------------------
def test_callback_zeroing_latents_at_the_last_step_uses_num_timesteps(pipe):
    seen = []

    def zero_last(p, i, t, kwargs):
        seen.append((i, p.num_timesteps))
        if i == p.num_timesteps - 1:
            return {"latents": torch.zeros_like(kwargs["latents"])}
        return {}

    out = pipe(num_inference_steps=3, generator=gen(0), output_type="latent", callback_on_step_end=zero_last).images
    assert seen == [(0, 3), (1, 3), (2, 3)]
    assert torch.equal(out, torch.zeros_like(out))
    pipe(timesteps=[22, 0], callback_on_step_end=zero_last)
    assert pipe.num_timesteps == 2


def test_interrupt_skips_the_remaining_steps(pipe):
    calls, after_first = [], []

    def stop_after_first(p, i, t, kwargs):
        calls.append(i)
        after_first.append(kwargs["latents"].clone())
        p._interrupt = True
        return {}

    out = pipe(num_inference_steps=3, generator=gen(3), output_type="latent", callback_on_step_end=stop_after_first)
    assert calls == [0] and pipe.interrupt
    # the output is the first step's result: the denoised image re-noised to the second level, still noisy
    assert torch.equal(out.images, after_first[0])
    assert out.images.abs().max() > 1.5
    pipe(num_inference_steps=2, generator=gen(3))
    assert not pipe.interrupt  # reset by every call


class ZeroAtLastStep(PipelineCallback):
    tensor_inputs = ["latents"]

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        if step_index == pipeline.num_timesteps - 1:
            return {"latents": torch.zeros_like(callback_kwargs["latents"])}
        return {}


def test_pipeline_callback_objects_work(pipe):
    out = pipe(num_inference_steps=2, output_type="latent", callback_on_step_end=ZeroAtLastStep()).images
    assert torch.equal(out, torch.zeros_like(out))


# ---------------------------------------------------------------------------------------------------------------
# Post-processing and docs
# ---------------------------------------------------------------------------------------------------------------
def test_output_is_diffusers_image_processor_postprocess(pipe):
    latent = pipe(batch_size=2, generator=gen(1), output_type="latent").images
    for output_type in ("pt", "np"):
        got = pipe(batch_size=2, generator=gen(1), output_type=output_type).images
        expected = pipe.image_processor.postprocess(latent, output_type=output_type)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    pil = pipe(batch_size=2, generator=gen(1)).images
    np.testing.assert_array_equal(np.asarray(pil[1]), (latent[1].permute(1, 2, 0) / 2 + 0.5).mul(255).round().byte())


def test_example_docstring_runs_against_a_saved_folder(tmp_path, monkeypatch):
    doc = ACTPipeline.__call__.__doc__
    assert "Examples:" in doc and 'DiffusionPipeline.from_pretrained("your-name/act-digits")' in doc
    pipe = ACTPipeline(unet=tiny_unet(num_class_embeds=10, in_channels=1, out_channels=1, sample_size=16),
                       scheduler=ConsistencyACTScheduler())  # fmt: skip
    pipe.save_pretrained(tmp_path / "act-digits")
    lines = [line.strip()[4:] for line in doc.splitlines() if line.strip().startswith(">>>")]
    code = "\n".join(lines).replace('"your-name/act-digits"', repr(str(tmp_path / "act-digits")))
    namespace = {}
    exec(compile(code, "EXAMPLE_DOC_STRING", "exec"), namespace)
    assert type(namespace["pipe"]) is ACTPipeline
    assert len(namespace["images"]) == 4 and namespace["image"].size == (16, 16)
    filled, image = np.asarray(namespace["filled"]), np.asarray(namespace["image"])
    np.testing.assert_array_equal(filled[8:], image[8:])  # the bottom half is kept
    assert (filled[:8] != image[:8]).any()


@pytest.mark.parametrize("module", PIPELINE_MODULES)
def test_each_pipeline_module_imports_every_module_its_remote_code_needs(module):
    # diffusers copies only the pipeline file's own relative imports into its module cache (for a local folder), so a
    # module needed only through another one would be missing when the saved folder's code runs
    relative = re.compile(r"^\s*from \.(\w+) import ", flags=re.M)

    def imports(name):
        return set(relative.findall((PACKAGE_DIR / f"{name}.py").read_text()))

    needed, pending = set(), [module]
    while pending:
        for name in imports(pending.pop()) - needed:
            needed.add(name)
            pending.append(name)
    assert needed - {module} == imports(module)
    assert {f"{name}.py" for name in needed | {module}} == {f for f in remote_code_files(module) if "/" not in f}
