# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTSuperResolutionPipeline: zero-shot super-resolution with an ACT consistency model (docs/editing.md)."""

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils import replace_example_docstring

# imported for the saved remote code: diffusers copies only the relative imports of the pipeline's own file with
# it, so every module this one needs, directly or not, is imported here (tests/test_pipeline_loading.py checks)
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .autoencoder import PixelKnownCoordinates  # noqa: F401
from .editing import BlockAverageTransform, KnownCoordinates
from .editing_base import ACTEditingPipelineBase, Callback, Generator, _doc
from .image_inputs import ImageInput
from .pipeline_act import ACTPipeline  # noqa: F401

SUPER_RESOLUTION_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTPipeline, ACTSuperResolutionPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-digits")
        >>> upscale = ACTSuperResolutionPipeline.from_pipe(pipe)
        >>> big = upscale(image=small_2x2, class_labels=3, num_inference_steps=4).images[0]  # 8x8
        ```
"""


class ACTSuperResolutionPipeline(ACTEditingPipelineBase):
    r"""
    Zero-shot super-resolution (Consistency Models, Algorithm 4): from a low-resolution image whose size divides the
    UNet's by a factor `k`, makes an image of the UNet's size whose `k x k` block averages equal the low-resolution
    pixels ([`BlockAverageTransform`]; exactly with `output_type="latent"`, before the final clip to the image range);
    the rest of each block is regenerated.

    Args:
        unet ([`UNet2DModel`]):
            The consistency model's network.
        scheduler ([`ConsistencyACTScheduler`]):
            Owns the noise levels and the preconditioning.
    """

    @torch.no_grad()
    @replace_example_docstring(SUPER_RESOLUTION_EXAMPLE)
    @_doc(
        r"""
        Upscales low-resolution images to the UNet's size.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                Low-resolution images in `[0, 1]` with the UNet's channels, whose height and width divide the UNet's
                (e.g. 4x4 for a 16x16 model: factor 4; the factors of height and width may differ).
            batch_size (`int`, *optional*):
                Number of outputs; defaults to the number of images. A single image is used for the whole batch.
            num_inference_steps (`int`, *optional*, defaults to 1):
                Number of consistency steps, as in [`ACTPipeline`].
            timesteps (`list[int]`, *optional*):
                Strictly decreasing indices into the scheduler's grid, as in [`ACTPipeline`].
            latents (`torch.Tensor`, *optional*):
                Standard Gaussian noise `(batch_size, channels, height, width)` to start from (scaled by
                `sigma_max`).
{shared_args}

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the images, of the UNet's size.
        """
    )
    def __call__(
        self,
        image: ImageInput = None,
        batch_size: int | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        generator: Generator = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callback = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> ImagePipelineOutput | tuple:
        device, dtype = self._execution_device, self.unet.dtype
        small, batch_size = self.prepare_image(image, batch_size, device, dtype)
        channels, height, width = self.image_shape
        low_h, low_w = small.shape[-2:]
        if small.shape[1] != channels or height % low_h or width % low_w:
            raise ValueError(
                f"`image` has shape {tuple(small.shape[1:])} (channels, height, width); super-resolution needs "
                f"{channels} channel(s) and a height and width that divide the UNet's {height}x{width} (e.g. "
                f"{height // 4}x{width // 4} for a factor of 4)."
            )
        factor = (height // low_h, width // low_w)
        self._check_common(batch_size, generator, output_type, callback_on_step_end_tensor_inputs, latents,
                           num_inference_steps, timesteps)  # fmt: skip
        reference = small.repeat_interleave(factor[0], dim=2).repeat_interleave(factor[1], dim=3)
        keep_known = KnownCoordinates.from_transform(reference, BlockAverageTransform(factor))
        return self._sample_with_known(
            keep_known, batch_size, timesteps=timesteps, latents=latents,
            class_labels=class_labels, num_inference_steps=num_inference_steps, generator=generator,
            output_type=output_type, return_dict=return_dict, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )  # fmt: skip
