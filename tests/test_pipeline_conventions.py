# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""diffusers' generic pipeline checks (`PipelineTesterMixin` of diffusers' tests/pipelines/test_pipelines_common.py,
which the diffusers wheel does not ship), written once here with diffusers' test names and run on `ACTPipeline`, every
editing pipeline and, as the control, diffusers' own `ConsistencyModelPipeline`. Then: loading saved folders with and
without this package, and swapping in diffusers' `CMStochasticIterativeScheduler`."""

import contextlib
import inspect
import io
import json
import logging
import os
import re
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
from diffusers.utils import logging as diffusers_logging

from diffusers_act import (
    ACTColorizationPipeline,
    ACTDenoisingPipeline,
    ACTImg2ImgPipeline,
    ACTInterpolationPipeline,
    ACTPipeline,
    ACTSuperResolutionPipeline,
    ConsistencyACTScheduler,
)

TORCH_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
NO_ACCELERATOR = "needs an accelerator (diffusers marks it @require_accelerator); this machine has only a CPU"


def to_np(tensor):
    return tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)


def max_diff(a, b) -> float:
    return float(np.abs(to_np(a).astype(np.float64) - to_np(b).astype(np.float64)).max())


def modules(pipe) -> dict:
    return {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}


@contextlib.contextmanager
def diffusers_log(name: str = "diffusers.pipelines.pipeline_utils"):
    """What diffusers logs at INFO level under `name` (diffusers' loggers do not propagate to pytest's caplog)."""
    logger, stream = diffusers_logging.get_logger(name), io.StringIO()
    handler, level = logging.StreamHandler(stream), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# ---------------------------------------------------------------------------------------------------------------
# The checks, once
# ---------------------------------------------------------------------------------------------------------------
class PipelineConventions:
    """diffusers' `PipelineTesterMixin` checks that apply to image pipelines without text; subclasses give the
    pipeline, its dummy components and inputs, as diffusers' fast tests do."""

    pipeline_class = None
    params = frozenset(["batch_size"])  # diffusers' UNCONDITIONAL_IMAGE_GENERATION_PARAMS
    batch_params = frozenset()  # inputs the batched checks repeat once per image
    batch_key = "batch_size"  # the `num_images_per_prompt` analogue
    # diffusers' required_optional_params less `num_images_per_prompt` (as its ConsistencyModelPipeline tests)
    required_optional_params = frozenset(["num_inference_steps", "generator", "latents", "output_type", "return_dict"])
    steps = 2  # sampling steps of the dummy inputs (what the progress bar counts)

    def get_generator(self, seed):
        return torch.Generator("cpu").manual_seed(seed)

    def get_dummy_components(self):
        return {"unet": tiny_unet(), "scheduler": ConsistencyACTScheduler()}

    def get_dummy_inputs(self, seed=0):
        return {"batch_size": 1, "num_inference_steps": self.steps, "generator": self.get_generator(seed),
                "output_type": "np"}  # fmt: skip

    def batched_generator(self, batch_size):
        return [self.get_generator(i) for i in range(batch_size)]

    def make_pipe(self, components=None):
        pipe = self.pipeline_class(**(components or self.get_dummy_components()))
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def batched(self, inputs, batch_size):
        batched = {**inputs, **{k: batch_size * [inputs[k]] for k in self.batch_params if k in inputs}}
        if "generator" in inputs:
            batched["generator"] = self.batched_generator(batch_size)
        if self.batch_key in inputs:
            batched[self.batch_key] = batch_size
        return batched

    # -- saving and loading -----------------------------------------------------------------------------------------
    def test_save_load_local(self, tmp_path):
        pipe = self.make_pipe()
        output = pipe(**self.get_dummy_inputs())[0]
        pipe.save_pretrained(tmp_path, safe_serialization=False)
        assert [p.name for p in (tmp_path / "unet").iterdir() if "model" in p.name] == ["diffusion_pytorch_model.bin"]
        with diffusers_log() as log:
            loaded = self.pipeline_class.from_pretrained(tmp_path)
        for name in loaded.components:  # as diffusers' check: optional components left as None are not loaded
            assert (f"Loaded {name} as " in log.getvalue()) != (name in loaded._optional_components)
        assert type(loaded) is self.pipeline_class
        loaded.set_progress_bar_config(disable=True)
        np.testing.assert_array_equal(loaded(**self.get_dummy_inputs())[0], output)

    def test_save_load_optional_components(self, tmp_path):
        # diffusers' check: with every optional component None (the VAE of latent models), a save and a load give a
        # pipeline without it that makes the same images
        pipe = self.make_pipe()
        assert all(getattr(pipe, name) is None for name in pipe._optional_components)
        output = pipe(**self.get_dummy_inputs())[0]
        pipe.save_pretrained(tmp_path)
        loaded = self.pipeline_class.from_pretrained(tmp_path)
        assert all(getattr(loaded, name) is None for name in pipe._optional_components)
        loaded.set_progress_bar_config(disable=True)
        assert max_diff(loaded(**self.get_dummy_inputs())[0], output) < 1e-5
        expected, optional = self.pipeline_class._get_signature_keys(self.pipeline_class)
        assert set(expected) == {"unet", "scheduler", *self.pipeline_class._optional_components}
        assert set(optional) <= {"id2label"}  # config, not a component
        assert set(self.pipeline_class._optional_components) <= {"vae"}

    def test_serialization_with_variants(self, tmp_path):
        self.make_pipe().save_pretrained(tmp_path, variant="fp16", safe_serialization=False)
        config = json.loads((tmp_path / "model_index.json").read_text())
        assert "unet" in config
        files = sorted(p.name for p in (tmp_path / "unet").iterdir())
        assert files == ["config.json", "diffusion_pytorch_model.fp16.bin"]

    @pytest.mark.parametrize("safe_serialization", [False, True], ids=["bin", "safetensors"])
    def test_loading_with_variants(self, tmp_path, safe_serialization):
        pipe = self.make_pipe()
        pipe.save_pretrained(tmp_path, variant="fp16", safe_serialization=safe_serialization)
        loaded = self.pipeline_class.from_pretrained(tmp_path, variant="fp16")
        original, reloaded = dict(pipe.unet.named_parameters()), dict(loaded.unet.named_parameters())
        assert original.keys() == reloaded.keys()
        assert all(torch.equal(original[k], reloaded[k]) for k in original)

    def test_loading_with_incorrect_variants_raises_error(self, tmp_path):
        self.make_pipe().save_pretrained(tmp_path, safe_serialization=False)
        message = "You are trying to load the model files of the `variant=fp16`, but no such modeling files"
        with pytest.raises(ValueError, match=re.escape(message)):
            self.pipeline_class.from_pretrained(tmp_path, variant="fp16")

    def test_dtype_dict(self, tmp_path):
        self.make_pipe().save_pretrained(tmp_path, safe_serialization=False)
        dtype_dicts = [
            {"unet": torch.float64, "default": torch.float32},
            {"default": torch.float64},
            {"scheduler": torch.float16, "default": torch.float64},
            {"unet": torch.bfloat16},
        ]
        for dtype_dict in dtype_dicts:
            loaded = self.pipeline_class.from_pretrained(tmp_path, dtype=dtype_dict)
            for name, component in modules(loaded).items():
                assert component.dtype == dtype_dict.get(name, dtype_dict.get("default", torch.float32)), dtype_dict

    def test_dtype_alias(self, tmp_path):
        # `torch_dtype` is the deprecated spelling of `dtype` in diffusers 0.42, a dict included
        self.make_pipe().save_pretrained(tmp_path, safe_serialization=False)
        with pytest.warns(FutureWarning, match="torch_dtype"):
            old = self.pipeline_class.from_pretrained(tmp_path, torch_dtype=torch.float64)
        with pytest.warns(FutureWarning, match="torch_dtype"):
            old_dict = self.pipeline_class.from_pretrained(tmp_path, torch_dtype={"default": torch.double})
        new = self.pipeline_class.from_pretrained(tmp_path, dtype=torch.float64)
        assert old.unet.dtype == old_dict.unet.dtype == new.unet.dtype == torch.float64
        with pytest.raises(ValueError, match="You have passed both `dtype` and `torch_dtype`"):
            self.pipeline_class.from_pretrained(tmp_path, dtype=torch.float64, torch_dtype=torch.float64)

    def test_save_load_float16(self, tmp_path):
        # diffusers' check in float64: CPUs have no float16 convolutions
        components = {k: v.to(torch.float64) if isinstance(v, torch.nn.Module) else v
                      for k, v in self.get_dummy_components().items()}  # fmt: skip
        pipe = self.make_pipe(components)
        output = pipe(**self.get_dummy_inputs())[0]
        pipe.save_pretrained(tmp_path)
        loaded = self.pipeline_class.from_pretrained(tmp_path, dtype=torch.float64)
        loaded.set_progress_bar_config(disable=True)
        assert {name: c.dtype for name, c in modules(loaded).items()} == {"unet": torch.float64}
        np.testing.assert_array_equal(loaded(**self.get_dummy_inputs())[0], output)

    def test_pipeline_with_accelerator_device_map(self, tmp_path):
        pipe = self.make_pipe()
        output = pipe(**self.get_dummy_inputs())[0]
        pipe.save_pretrained(tmp_path)
        loaded = self.pipeline_class.from_pretrained(tmp_path, device_map=TORCH_DEVICE)
        loaded.set_progress_bar_config(disable=True)
        assert loaded.unet.device.type == TORCH_DEVICE
        assert max_diff(loaded(**self.get_dummy_inputs())[0], output) < 1e-4

    # -- calling ----------------------------------------------------------------------------------------------------
    def test_pipeline_call_signature(self):
        parameters = inspect.signature(self.pipeline_class.__call__).parameters
        optional = {k for k, v in parameters.items() if v.default is not inspect.Parameter.empty}
        assert self.params <= set(parameters) - {"self", "kwargs"}
        assert self.required_optional_params <= optional

    def test_inference_batch_consistent(self):
        pipe = self.make_pipe()
        for batch_size in (2, 3):
            output = pipe(**self.batched(self.get_dummy_inputs(), batch_size))
            assert len(output[0]) == batch_size

    def test_inference_batch_single_identical(self, batch_size=3):
        pipe = self.make_pipe()
        inputs = self.get_dummy_inputs()
        inputs["generator"] = self.get_generator(0)
        output = pipe(**inputs)
        output_batch = pipe(**self.batched(inputs, batch_size))
        assert output_batch[0].shape[0] == batch_size
        assert max_diff(output_batch[0][0], output[0][0]) < 1e-4

    def test_num_images_per_prompt(self):
        # the batching check: `batch_size` is the `num_images_per_prompt` analogue
        pipe = self.make_pipe()
        for batch_size in (1, 2, 3):
            inputs = {**self.get_dummy_inputs(), "batch_size": batch_size}  # one input image for the whole batch
            assert pipe(**inputs)[0].shape[0] == batch_size
            if self.batch_params:  # one input image per output image
                inputs = self.get_dummy_inputs()
                inputs.update({key: batch_size * [inputs[key]] for key in self.batch_params})
                if "batch_size" in inputs:
                    inputs["batch_size"] = batch_size
                assert pipe(**inputs)[0].shape[0] == batch_size

    def test_dict_tuple_outputs_equivalent(self):
        pipe = self.make_pipe()
        output = pipe(**self.get_dummy_inputs())[0]
        output_tuple = pipe(**self.get_dummy_inputs(), return_dict=False)
        assert isinstance(output_tuple, tuple) and len(output_tuple) == 1
        np.testing.assert_array_equal(output_tuple[0], output)

    def test_pt_np_pil_outputs_equivalent(self):
        pipe = self.make_pipe()
        output_pt = pipe(**{**self.get_dummy_inputs(), "output_type": "pt"})[0]
        output_np = pipe(**{**self.get_dummy_inputs(), "output_type": "np"})[0]
        output_pil = pipe(**{**self.get_dummy_inputs(), "output_type": "pil"})[0]
        np.testing.assert_array_equal(output_pt.cpu().numpy().transpose(0, 2, 3, 1), output_np)
        pil = np.asarray(output_pil[0]).astype(np.float64)
        np.testing.assert_array_equal(pil.reshape(output_np[0].shape), (output_np[0] * 255).round())

    def test_attention_slicing_forward_pass(self):
        pipe = self.make_pipe()
        output = pipe(**self.get_dummy_inputs())[0]
        for slice_size in (1, 2):
            pipe.enable_attention_slicing(slice_size=slice_size)
            assert max_diff(pipe(**self.get_dummy_inputs())[0], output) < 1e-3

    def test_progress_bar(self):
        pipe = self.pipeline_class(**self.get_dummy_components())
        with io.StringIO() as stderr, contextlib.redirect_stderr(stderr):
            pipe(**self.get_dummy_inputs())
            assert f"{self.steps}/{self.steps}" in stderr.getvalue(), "enabled, and stopped at the last step"
        pipe.set_progress_bar_config(disable=True)
        with io.StringIO() as stderr, contextlib.redirect_stderr(stderr):
            pipe(**self.get_dummy_inputs())
            assert stderr.getvalue() == "", "disabled"

    # -- callbacks --------------------------------------------------------------------------------------------------
    def has_step_end_callbacks(self):
        parameters = inspect.signature(self.pipeline_class.__call__).parameters
        return "callback_on_step_end" in parameters and "callback_on_step_end_tensor_inputs" in parameters

    def test_callback_inputs(self):
        if not self.has_step_end_callbacks():
            pytest.skip(f"{self.pipeline_class.__name__} has no `callback_on_step_end` (diffusers' check returns)")
        pipe = self.make_pipe()
        seen = []

        def callback_inputs_subset(pipe, i, t, callback_kwargs):
            seen.append(set(callback_kwargs))
            return callback_kwargs

        def callback_inputs_change_tensor(pipe, i, t, callback_kwargs):
            if i == pipe.num_timesteps - 1:
                callback_kwargs["latents"] = torch.zeros_like(callback_kwargs["latents"])
            return callback_kwargs

        inputs = {**self.get_dummy_inputs(), "output_type": "latent"}
        pipe(**inputs, callback_on_step_end=callback_inputs_subset, callback_on_step_end_tensor_inputs=["latents"])
        assert seen == [{"latents"}] * self.steps
        seen.clear()
        pipe(**inputs, callback_on_step_end=callback_inputs_subset,
             callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs)  # fmt: skip
        assert seen == [set(pipe._callback_tensor_inputs)] * self.steps
        output = pipe(**inputs, callback_on_step_end=callback_inputs_change_tensor,
                      callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs)[0]  # fmt: skip
        assert output.abs().sum() == 0
        with pytest.raises(ValueError, match=re.escape(f"the tensors on offer are {pipe._callback_tensor_inputs}")):
            pipe(**inputs, callback_on_step_end=callback_inputs_subset, callback_on_step_end_tensor_inputs=["x"])

    def test_callback_cfg(self):
        # diffusers' check changes `pipe._guidance_scale` from the callback at every step; these pipelines have no
        # guidance, so the callback changes other pipeline state, and a `PipelineCallback` brings its tensor inputs
        if not self.has_step_end_callbacks():
            pytest.skip(f"{self.pipeline_class.__name__} has no `callback_on_step_end` (diffusers' check returns)")
        pipe = self.make_pipe()
        pipe._steps_seen = 0

        def count_steps(pipe, i, t, callback_kwargs):
            pipe._steps_seen += 1
            return callback_kwargs

        pipe(**self.get_dummy_inputs(), callback_on_step_end=count_steps)
        assert pipe._steps_seen == pipe.num_timesteps == self.steps

        class ZeroLatentsAtLastStep(PipelineCallback):
            tensor_inputs = ["latents", "denoised"]

            def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
                assert set(callback_kwargs) == {"latents", "denoised"}
                if step_index == pipeline.num_timesteps - 1:
                    return {"latents": torch.zeros_like(callback_kwargs["latents"])}
                return {}

        inputs = {**self.get_dummy_inputs(), "output_type": "latent"}
        output = pipe(**inputs, callback_on_step_end=ZeroLatentsAtLastStep())
        assert output[0].abs().sum() == 0

    # -- devices, dtypes, components ----------------------------------------------------------------------------------
    def test_components_function(self):
        init_components = self.get_dummy_components()
        pipe = self.pipeline_class(**init_components)
        assert set(pipe.components) == set(init_components) | set(pipe._optional_components)  # the VAE: None
        assert all(pipe.components[k] is v for k, v in init_components.items())

    def test_to_device(self):
        components = self.get_dummy_components()
        pipe = self.pipeline_class(**components)
        pipe.set_progress_bar_config(disable=True)
        pipe.to("cpu")
        assert [m.device.type for m in modules(pipe).values()] == ["cpu"]
        assert np.isnan(to_np(pipe(**self.get_dummy_inputs())[0])).sum() == 0
        if TORCH_DEVICE == "cpu":
            pytest.skip(f"the accelerator half {NO_ACCELERATOR}")
        pipe.to(TORCH_DEVICE)
        assert [m.device.type for m in modules(pipe).values()] == [TORCH_DEVICE]
        assert np.isnan(to_np(pipe(**self.get_dummy_inputs())[0])).sum() == 0

    def test_to_dtype(self):
        components = self.get_dummy_components()
        pipe = self.pipeline_class(**components)
        assert [m.dtype for m in modules(pipe).values()] == [torch.float32]
        pipe.to(dtype=torch.float16)
        assert [m.dtype for m in modules(pipe).values()] == [torch.float16]
        assert pipe.dtype == torch.float16

    def one_step_inputs(self):
        """One step from given float32 `latents`: the same computation in any dtype (noise drawn in float64 is
        other noise)."""
        inputs = {**self.get_dummy_inputs(), "num_inference_steps": 1}
        if "latents" in inspect.signature(self.pipeline_class.__call__).parameters:
            inputs["latents"] = torch.randn(self.latents_shape, generator=self.get_generator(7))
        return inputs

    latents_shape = (1, 3, 8, 8)

    def test_float16_inference(self):
        # diffusers' check in float64 against float32 (float16 needs CUDA or XPU)
        pipe = self.make_pipe()
        output = pipe(**self.one_step_inputs())[0]
        pipe.to(dtype=torch.float64)
        assert max_diff(pipe(**self.one_step_inputs())[0], output) < 1e-5

    def test_model_cpu_offload_forward_pass(self):
        optional_vae = "vae" in self.pipeline_class._optional_components
        assert self.pipeline_class.model_cpu_offload_seq == ("unet->vae" if optional_vae else "unet")
        assert self.pipeline_class._exclude_from_cpu_offload == []
        if TORCH_DEVICE == "cpu":
            pytest.skip(f"enable_model_cpu_offload {NO_ACCELERATOR}")
        import accelerate

        pipe = self.make_pipe().to(TORCH_DEVICE)
        output = pipe(**self.get_dummy_inputs())[0]
        pipe.enable_model_cpu_offload(device=TORCH_DEVICE)
        assert pipe._execution_device.type == TORCH_DEVICE
        for _ in range(2):  # test_cpu_offload_forward_pass_twice as well
            assert max_diff(pipe(**self.get_dummy_inputs())[0], output) < 2e-4
            assert pipe.unet.device.type == "cpu" and isinstance(pipe.unet._hf_hook, accelerate.hooks.CpuOffload)

    def test_sequential_cpu_offload_forward_pass(self):
        if TORCH_DEVICE == "cpu":
            pytest.skip(f"enable_sequential_cpu_offload {NO_ACCELERATOR}")
        pipe = self.make_pipe().to(TORCH_DEVICE)
        output = pipe(**self.get_dummy_inputs())[0]
        pipe.enable_sequential_cpu_offload(device=TORCH_DEVICE)
        assert max_diff(pipe(**self.get_dummy_inputs())[0], output) < 1e-4
        assert pipe.unet.device.type == "meta"

    # -- from_pipe --------------------------------------------------------------------------------------------------
    original_pipeline_class = ACTPipeline

    def test_from_pipe_consistent_forward_pass(self):
        components = self.get_dummy_components()
        original = self.original_pipeline_class(**components)
        original.set_progress_bar_config(disable=True)
        before = original(**self.original_inputs())[0]
        output = self.make_pipe(components)(**self.get_dummy_inputs())[0]
        from_original = self.pipeline_class.from_pipe(original)
        from_original.set_progress_bar_config(disable=True)
        assert type(from_original) is self.pipeline_class and from_original.unet is original.unet
        np.testing.assert_array_equal(from_original(**self.get_dummy_inputs())[0], output)
        np.testing.assert_array_equal(original(**self.original_inputs())[0], before)

    def original_inputs(self):
        return {"batch_size": 1, "num_inference_steps": 2, "generator": self.get_generator(0), "output_type": "np"}


# ---------------------------------------------------------------------------------------------------------------
# The pipelines
# ---------------------------------------------------------------------------------------------------------------
class TestConsistencyModelPipeline(PipelineConventions):
    """The control: diffusers' own pipeline, with the inputs of diffusers' ConsistencyModelPipelineFastTests."""

    pipeline_class = ConsistencyModelPipeline

    def get_dummy_components(self):
        return {"unet": tiny_unet(), "scheduler": CMStochasticIterativeScheduler()}

    def get_dummy_inputs(self, seed=0):
        return {"batch_size": 1, "num_inference_steps": None, "timesteps": [22, 0],
                "generator": self.get_generator(seed), "output_type": "np"}  # fmt: skip

    def one_step_inputs(self):
        return {**super().one_step_inputs(), "num_inference_steps": None, "timesteps": [0]}


class TestACTPipeline(PipelineConventions):
    pipeline_class = ACTPipeline
    original_pipeline_class = ConsistencyModelPipeline  # from_pipe both ways, with diffusers' scheduler

    def get_dummy_components(self):
        return {"unet": tiny_unet(), "scheduler": ConsistencyACTScheduler()}

    def test_from_pipe_consistent_forward_pass(self):
        components = {"unet": tiny_unet(), "scheduler": CMStochasticIterativeScheduler()}
        original = quiet(ConsistencyModelPipeline(**components))
        ours = quiet(ACTPipeline.from_pipe(original))
        back = quiet(ConsistencyModelPipeline.from_pipe(ours))
        assert {k: v for k, v in back.config.items() if not k.startswith("_")} == {
            k: v for k, v in original.config.items() if not k.startswith("_")
        }
        np.testing.assert_array_equal(ours(**self.original_inputs())[0], original(**self.original_inputs())[0])


class TestACTPipelineClassConditional(TestACTPipeline):
    """Class labels drawn from each image's generator (and so batch-independent)."""

    def get_dummy_components(self):
        return {"unet": tiny_unet(num_class_embeds=4), "scheduler": ConsistencyACTScheduler()}

    def test_from_pipe_consistent_forward_pass(self):
        pytest.skip("ConsistencyModelPipeline draws class labels from the global RNG, not from `generator`")


class TestACTPipelineInpainting(PipelineConventions):
    pipeline_class = ACTPipeline
    batch_params = frozenset(["image", "mask_image"])

    def get_dummy_inputs(self, seed=0):
        image = torch.linspace(0, 1, 3 * 8 * 8).reshape(1, 3, 8, 8)
        mask = torch.zeros(1, 1, 8, 8)
        mask[..., :4, :] = 1
        return {**super().get_dummy_inputs(seed), "image": image, "mask_image": mask}

    def original_inputs(self):
        return self.get_dummy_inputs()


class EditingConventions(PipelineConventions):
    batch_params = frozenset(["image"])

    def get_dummy_inputs(self, seed=0):
        return {"image": self.image(), "num_inference_steps": self.steps, "generator": self.get_generator(seed),
                "output_type": "np"}  # fmt: skip

    def image(self):
        return torch.linspace(0, 1, 3 * 8 * 8).reshape(1, 3, 8, 8)


class TestACTColorizationPipeline(EditingConventions):
    pipeline_class = ACTColorizationPipeline
    params = frozenset(["image", "batch_size"])

    def image(self):
        return torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)


class TestACTSuperResolutionPipeline(EditingConventions):
    pipeline_class = ACTSuperResolutionPipeline
    params = frozenset(["image", "batch_size"])

    def image(self):
        return torch.tensor([[0.1, 0.9], [0.6, 0.3]]).expand(1, 3, 2, 2)


class TestACTImg2ImgPipeline(EditingConventions):
    pipeline_class = ACTImg2ImgPipeline
    params = frozenset(["image", "strength", "batch_size"])

    def get_dummy_inputs(self, seed=0):
        return {**super().get_dummy_inputs(seed), "strength": 0.6}


class TestACTDenoisingPipeline(EditingConventions):
    pipeline_class = ACTDenoisingPipeline
    params = frozenset(["image", "sigma", "batch_size"])
    # no `latents`: the noisy images are the start, and the steps' noise comes from `generator`
    required_optional_params = PipelineConventions.required_optional_params - {"latents"}

    def get_dummy_inputs(self, seed=0):
        return {**super().get_dummy_inputs(seed), "sigma": 0.5}


class TestACTInterpolationPipeline(EditingConventions):
    """The batch is `num_images` points on the path between two noise draws; its first image does not depend on how
    many there are."""

    pipeline_class = ACTInterpolationPipeline
    params = frozenset(["num_images"])
    batch_params = frozenset()
    batch_key = "num_images"
    latents_shape = (2, 3, 8, 8)  # the two ends

    def get_dummy_inputs(self, seed=0):
        return {"num_images": 2, "num_inference_steps": self.steps, "generator": self.get_generator(seed),
                "output_type": "np"}  # fmt: skip

    def batched_generator(self, batch_size):
        return self.get_generator(0)  # one generator draws both ends whatever the number of images

    def test_num_images_per_prompt(self):
        pipe = self.make_pipe()
        for num_images in (2, 3, 5):
            assert pipe(**{**self.get_dummy_inputs(), "num_images": num_images})[0].shape[0] == num_images


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# diffusers' CMStochasticIterativeScheduler in place of ours
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [{"num_inference_steps": 1}, {"num_inference_steps": 3}, {"timesteps": [22, 0]}])
def test_diffusers_scheduler_samples_the_same_images_for_log_conditioning(steps):
    pipe = quiet(ACTPipeline(unet=tiny_unet(num_class_embeds=4), scheduler=ConsistencyACTScheduler()))
    ours = pipe(batch_size=2, generator=gen(1), output_type="latent", **steps).images
    pipe.scheduler = CMStochasticIterativeScheduler.from_config(pipe.scheduler.config)
    # a default value is not carried over by from_config: no key means "log", as in ConsistencyACTScheduler
    assert "noise_conditioning" not in pipe.scheduler.config
    theirs = pipe(batch_size=2, generator=gen(1), output_type="latent", **steps).images
    # diffusers adds noise of sqrt(sigma_min^2 - sigma_min^2) (float32 rounding: about 1e-6) after its last step
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_diffusers_scheduler_is_refused_for_sigma_conditioning(tmp_path):
    unet = tiny_unet()
    pipe = quiet(ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler(noise_conditioning="sigma")))
    expected = pipe(batch_size=2, generator=gen(0), output_type="latent").images
    stock = CMStochasticIterativeScheduler.from_config(pipe.scheduler.config)
    # what the refusal prevents: diffusers' scheduler feeds this UNet 250 ln(sigma), not sigma
    changed = quiet(ConsistencyModelPipeline(unet=unet, scheduler=stock))(batch_size=2, generator=gen(0),
                                                                          output_type="pt")  # fmt: skip
    assert max_diff(changed.images * 2 - 1, expected) > 0.01
    message = (
        "This UNet was trained with `noise_conditioning='sigma'` (the scheduler config says so), which "
        "CMStochasticIterativeScheduler does not implement: it feeds the UNet `250 * ln(sigma)`, so the images would "
        "change. Sample with ConsistencyACTScheduler: `pipe.scheduler = "
        "ConsistencyACTScheduler.from_config(pipe.scheduler.config)`."
    )
    pipe.scheduler = stock
    with pytest.raises(ValueError, match=re.escape(message)):
        pipe(batch_size=2, generator=gen(0))
    pipe.save_pretrained(tmp_path)  # the key survives saving and loading, and so does the refusal
    loaded = quiet(DiffusionPipeline.from_pretrained(tmp_path))
    assert type(loaded.scheduler) is CMStochasticIterativeScheduler
    with pytest.raises(ValueError, match=re.escape(message)):
        loaded(batch_size=2, generator=gen(0))
    loaded.scheduler = ConsistencyACTScheduler.from_config(loaded.scheduler.config)
    assert loaded.scheduler.config.noise_conditioning == "sigma"
    torch.testing.assert_close(loaded(batch_size=2, generator=gen(0), output_type="latent").images, expected,
                               rtol=0, atol=0)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Loading saved folders: the installed classes with this package imported, diffusers' remote code without it
# ---------------------------------------------------------------------------------------------------------------
SAVED = {  # pipeline class: (module that model_index.json names, the call, as code run here and in a subprocess)
    ACTPipeline: ("pipeline_act", "dict(batch_size=2, class_labels=[1, 3], num_inference_steps=2)"),
    ACTColorizationPipeline: (
        "pipeline_act_colorization",
        "dict(image=torch.linspace(0, 1, 64).reshape(1, 1, 8, 8), batch_size=2, class_labels=[1, 3], "
        "num_inference_steps=2)",
    ),
}


def saved_pipeline(folder, pipeline_class):
    scheduler = ConsistencyACTScheduler(noise_conditioning="sigma", num_train_timesteps=20)
    pipe = quiet(pipeline_class(unet=tiny_unet(num_class_embeds=4), scheduler=scheduler))
    pipe.save_pretrained(folder)
    return pipe


def sample_of(pipe, pipeline_class):
    return pipe(**eval(SAVED[pipeline_class][1]), generator=gen(5), output_type="pt").images


def hub_cache(folder, cache_dir, repo_id="someone/act-digits"):
    """Lays `folder` out as huggingface_hub's cache of a downloaded model repo (refs/main -> snapshots/<commit>)."""
    import shutil

    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folder, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return repo_id


@pytest.mark.parametrize("pipeline_class", list(SAVED), ids=lambda c: c.__name__)
def test_model_index_names_the_pipeline_code_as_a_diffusers_custom_pipeline(tmp_path, pipeline_class):
    saved_pipeline(tmp_path, pipeline_class)
    module = SAVED[pipeline_class][0]
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == [module, pipeline_class.__name__]
    assert index["scheduler"] == ["scheduling_consistency_act", "ConsistencyACTScheduler"]
    code = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py")}
    shared = {"editing_base.py"} if module != "pipeline_act" else set()  # what the editing pipelines share
    common = {"pipeline_act.py", "editing.py", "autoencoder.py", "image_inputs.py"}
    common.add("scheduler/scheduling_consistency_act.py")
    assert code == {*common, f"{module}.py", *shared}
    assert f"class {pipeline_class.__name__}(" in (tmp_path / f"{module}.py").read_text()


@pytest.mark.parametrize("layout", ["folder", "hub"])
@pytest.mark.parametrize("loader", ["DiffusionPipeline", "the class"])
@pytest.mark.parametrize("pipeline_class", list(SAVED), ids=lambda c: c.__name__)
def test_with_the_package_imported_the_installed_classes_load(tmp_path, pipeline_class, loader, layout, monkeypatch):
    pipe = saved_pipeline(tmp_path / "saved", pipeline_class)
    for code in (tmp_path / "saved").rglob("*.py"):  # the folder's code would fail if it ran
        code.write_text("raise RuntimeError('the folder code ran')\n")
    source, kwargs = tmp_path / "saved", {}
    if layout == "hub":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        source, kwargs = hub_cache(tmp_path / "saved", tmp_path / "cache"), {"cache_dir": tmp_path / "cache"}
    loaded = quiet((DiffusionPipeline if loader == "DiffusionPipeline" else pipeline_class).from_pretrained(
        source, **kwargs))  # fmt: skip
    assert type(loaded) is pipeline_class and type(loaded.scheduler) is ConsistencyACTScheduler
    torch.testing.assert_close(sample_of(loaded, pipeline_class), sample_of(pipe, pipeline_class), rtol=0, atol=0)


def test_a_saved_folder_loads_as_another_act_pipeline_class(tmp_path):
    saved_pipeline(tmp_path / "act", ACTPipeline)
    saved_pipeline(tmp_path / "colorization", ACTColorizationPipeline)
    assert type(ACTColorizationPipeline.from_pretrained(tmp_path / "act")) is ACTColorizationPipeline
    assert type(ACTPipeline.from_pretrained(tmp_path / "colorization")) is ACTPipeline


def test_the_hub_download_path_resolves_the_installed_class_and_leaves_explicit_custom_pipelines_to_diffusers():
    from diffusers.pipelines import pipeline_utils

    config = {"_class_name": ["pipeline_act", "ACTPipeline"], "unet": ["diffusers", "UNet2DModel"]}
    # as DiffusionPipeline.download calls it for a repo whose model_index.json names a custom pipeline
    download_call = dict(load_connected_pipeline=False, repo_id="someone/act-digits", hub_revision=None,
                         cache_dir=None, revision=None, trust_remote_code=False)  # fmt: skip
    resolved = pipeline_utils._get_pipeline_class(
        DiffusionPipeline, config, custom_pipeline="pipeline_act", class_name="ACTPipeline", **download_call
    )
    assert resolved is ACTPipeline
    message = "The repository for someone/act-digits contains custom code in pipeline_act.py which must be executed"
    with pytest.raises(ValueError, match=re.escape(message)):  # custom_pipeline="pipeline_act" passed by the user
        pipeline_utils._get_pipeline_class(
            DiffusionPipeline, config, custom_pipeline="pipeline_act", class_name=None, **download_call
        )
    other = {**config, "_class_name": ["my_pipeline", "ACTPipeline"]}  # not this package's module: diffusers decides
    with pytest.raises(ValueError, match=re.escape("contains custom code in my_pipeline.py")):
        pipeline_utils._get_pipeline_class(
            DiffusionPipeline, other, custom_pipeline="my_pipeline", class_name="ACTPipeline", **download_call
        )


WITHOUT_IMPORT = """
import sys, torch
from diffusers import DiffusionPipeline
try:
    DiffusionPipeline.from_pretrained({folder!r})
except ValueError as error:
    print("REFUSED:", error)
pipe = DiffusionPipeline.from_pretrained({folder!r}, trust_remote_code=True)
pipe.set_progress_bar_config(disable=True)
assert "diffusers_act" not in sys.modules, "the package was imported"
print("LOADED:", type(pipe).__module__, type(pipe).__name__, type(pipe.scheduler).__module__)
torch.save(pipe(**{call}, generator=torch.Generator().manual_seed(5), output_type="pt").images, {out!r})
"""


@pytest.mark.slow  # a fresh interpreter per case (5 s): with the slow tests, so the fast suite stays under 2 minutes
@pytest.mark.parametrize(
    "pipeline_class",
    [ACTPipeline, ACTColorizationPipeline],
    ids=lambda c: c.__name__,
)
def test_without_the_package_imported_diffusers_asks_to_trust_the_folder_code(tmp_path, pipeline_class):
    pipe = saved_pipeline(tmp_path / "saved", pipeline_class)
    module, call = SAVED[pipeline_class]
    code = WITHOUT_IMPORT.format(folder=str(tmp_path / "saved"), call=call, out=str(tmp_path / "images.pt"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    refused = f"REFUSED: The directory {tmp_path / 'saved'} contains custom code in {module}.py which must be executed"
    assert refused in result.stdout and "Pass `trust_remote_code=True` to allow loading remote code" in result.stdout
    assert f"LOADED: diffusers_modules.local.{module} {pipeline_class.__name__} diffusers_modules." in result.stdout
    assert "pip install" not in result.stderr, result.stderr
    torch.testing.assert_close(torch.load(tmp_path / "images.pt"), sample_of(pipe, pipeline_class), rtol=0, atol=0)


NOT_INSTALLED = """
import sys
class NoDiffusersAct:  # this process behaves as if diffusers-act were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "diffusers_act":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoDiffusersAct())
from diffusers import DiffusionPipeline
DiffusionPipeline.from_pretrained({folder!r}, trust_remote_code=True).save_pretrained({again!r})
"""


@pytest.mark.slow  # a fresh interpreter (5 s)
def test_remote_code_saving_without_the_package_says_how_to_install_it(tmp_path):
    saved_pipeline(tmp_path / "saved", ACTPipeline)
    code = NOT_INSTALLED.format(folder=str(tmp_path / "saved"), again=str(tmp_path / "again"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"diffusers-act is not installed, so {tmp_path / 'again'} got no pipeline code and its model_index.json names "
        "this session's remote-code modules: it will not load elsewhere. Install diffusers-act (not on PyPI: "
        "`pip install -e .` in a clone of its repository, or a wheel built there) and save again."
    ) in result.stderr
    assert "pip install diffusers_act" not in result.stderr  # diffusers' hint for a module it saw imported
    assert not list((tmp_path / "again").rglob("*.py"))
