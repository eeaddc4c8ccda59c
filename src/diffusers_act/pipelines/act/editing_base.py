# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""What ACT's zero-shot editing pipelines share (colorization, super-resolution, guided editing, denoising,
interpolation; one pipeline per module beside this one): image preparation, checks, the sampling loop with known
coordinates, and the shared docstring arguments. See docs/editing.md."""

from collections.abc import Callable
from typing import Any

import torch
from diffusers import ImagePipelineOutput
from diffusers.image_processor import VaeImageProcessor

# imported for the saved remote code: diffusers copies the pipeline file's relative imports (the scheduler) with it
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .autoencoder import PixelKnownCoordinates
from .editing import KnownCoordinates
from .image_inputs import ImageInput, check_image_values
from .pipeline_act import ACTPipeline

Callback = Callable[[ACTPipeline, int, torch.Tensor, dict[str, Any]], dict] | None
Generator = torch.Generator | list[torch.Generator] | None

_SHARED_ARGS = {
    "class_labels": """
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*):
                Classes for a class-conditional UNet: one for all images or one per image. Drawn at random from
                `generator` when the UNet is class-conditional and none are given, as in [`ACTPipeline`].""",
    "generator": """
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                Makes editing deterministic; a list gives one generator per image.""",
    "output_type": """
            output_type (`str`, defaults to `"pil"`):
                `"pil"`, `"np"` (`[0, 1]`, channels last), `"pt"` (`[0, 1]`, channels first) or `"latent"` (the raw
                `[-1, 1]` samples before the final clip to the image range, where the edit's constraint holds
                exactly).""",
    "return_dict": """
            return_dict (`bool`, defaults to `True`):
                Return an [`~pipelines.ImagePipelineOutput`] rather than a tuple.""",
    "callback_on_step_end": """
            callback_on_step_end (`Callable`, *optional*):
                Called after every step as `callback_on_step_end(pipe, step, timestep, callback_kwargs)`; may return
                a dict with replacement tensors (e.g. `{"latents": ...}`).""",
    "callback_on_step_end_tensor_inputs": """
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`):
                Tensors passed in `callback_kwargs`: any of `"latents"` and `"denoised"`.""",
}


def _doc(text: str, exclude: tuple[str, ...] = ()) -> Callable:
    """Puts the arguments that every editing pipeline shares (but `exclude`) into a `__call__` docstring's `Args:`."""
    shared = "".join(doc for name, doc in _SHARED_ARGS.items() if name not in exclude).strip("\n")

    def decorator(function: Callable) -> Callable:
        function.__doc__ = text.replace("{shared_args}", shared)
        return function

    return decorator


class ACTEditingPipelineBase(ACTPipeline):
    """What the editing pipelines share: image preparation, the sampling loop, and `ACTPipeline`'s loading and
    input checks."""

    def _check_common(
        self,
        batch_size: int,
        generator: Generator,
        output_type: str,
        callback_on_step_end_tensor_inputs: list[str] | None,
        latents: torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
    ) -> None:
        if not hasattr(self.scheduler, "precondition_outputs"):  # by what it offers (remote code has its own class)
            raise ValueError(
                f"Editing needs the denoised estimate of each step and free noise levels, which "
                f"{type(self.scheduler).__name__} does not give. Use ConsistencyACTScheduler: "
                "`pipe.scheduler = ConsistencyACTScheduler.from_config(pipe.scheduler.config)`."
            )
        self.check_inputs(
            batch_size=batch_size,
            num_inference_steps=num_inference_steps,
            timesteps=timesteps,
            image=None,
            mask_image=None,
            generator=generator,
            latents=latents,
            output_type=output_type,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )

    def prepare_image(
        self,
        image: ImageInput,
        batch_size: int | None,
        device: torch.device,
        dtype: torch.dtype,
        name: str = "image",
        in_range: bool = True,
    ) -> tuple[torch.Tensor, int]:
        """
        Converts `image` (PIL, or arrays / tensors in `[0, 1]`) to a `[-1, 1]` tensor `(batch, channels, h, w)` and
        returns it with the batch size: `batch_size`, or the number of images when `batch_size` is None. With
        `in_range=False` values outside `[0, 1]` are accepted (noisy images).
        """
        if image is None:
            raise ValueError(f"`{name}` is required.")
        if in_range:
            check_image_values(name, image)
        processor = VaeImageProcessor(vae_scale_factor=1, do_resize=False, do_normalize=False)
        tensor = processor.preprocess(image).to(device=device, dtype=dtype)
        if not torch.isfinite(tensor).all():
            raise ValueError(f"`{name}` holds NaN or infinite values.")
        batch_size = tensor.shape[0] if batch_size is None else batch_size
        if tensor.shape[0] not in (1, batch_size):
            raise ValueError(
                f"`{name}` holds {tensor.shape[0]} images but `batch_size` is {batch_size}; pass one, or set "
                f"`batch_size={tensor.shape[0]}`."
            )
        return (tensor * 2 - 1).expand(batch_size, -1, -1, -1), batch_size

    def _check_size(self, tensor: torch.Tensor, name: str, channels: tuple[int, ...]) -> None:
        want_channels, height, width = self.image_shape
        if tuple(tensor.shape[-2:]) != (height, width) or tensor.shape[1] not in channels:
            raise ValueError(
                f"`{name}` has shape {tuple(tensor.shape[1:])} (channels, height, width) but this UNet makes "
                f"{want_channels}x{height}x{width} images; pass {height}x{width} images with "
                f"{' or '.join(map(str, channels))} channel(s)."
            )

    def _sample_with_known(
        self,
        keep_known: KnownCoordinates,
        batch_size: int,
        *,
        class_labels,
        num_inference_steps: int | None,
        timesteps: list[int] | None,
        generator: Generator,
        latents: torch.Tensor | None,
        output_type: str,
        return_dict: bool,
        callback_on_step_end: Callback,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> ImagePipelineOutput | tuple:
        """Algorithm 4 from `sigma_max * latents` on `ACTPipeline`'s schedule, keeping `keep_known`."""
        device, dtype = self._execution_device, self.unet.dtype
        if num_inference_steps is None and timesteps is None:
            num_inference_steps = 1
        self.scheduler.set_timesteps(num_inference_steps=num_inference_steps, timesteps=timesteps, device=device)
        noise = self._noise(batch_size, generator, latents, device, dtype) * self.scheduler.init_noise_sigma
        labels = self.prepare_class_labels(batch_size, class_labels, generator, device)
        if self.vae is not None:  # the edit is in pixel space: applied to the decoded estimates (autoencoder.py)
            keep_known = PixelKnownCoordinates(keep_known, self.vae)
        sample = self._sample_loop(
            noise, labels, generator, keep_known, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        return self._output(sample, output_type, return_dict)
