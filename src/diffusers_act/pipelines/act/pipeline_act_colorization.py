# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTColorizationPipeline: zero-shot colorization with an RGB ACT consistency model (docs/editing.md)."""

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils import replace_example_docstring

# imported for the saved remote code: diffusers copies only the relative imports of the pipeline's own file with
# it, so every module this one needs, directly or not, is imported here (tests/test_pipeline_loading.py checks)
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .autoencoder import PixelKnownCoordinates  # noqa: F401
from .editing import KnownCoordinates, LuminanceTransform
from .editing_base import ACTEditingPipelineBase, Callback, Generator, _doc
from .image_inputs import ImageInput
from .pipeline_act import ACTPipeline  # noqa: F401

COLORIZATION_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTColorizationPipeline, ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-rgb-model")
        >>> colorize = ACTColorizationPipeline.from_pipe(pipe)
        >>> colored = colorize(image=grey_photo, num_inference_steps=4).images[0]  # same luminance as grey_photo
        ```
"""


class ACTColorizationPipeline(ACTEditingPipelineBase):
    r"""
    Zero-shot colorization with an RGB consistency model (Consistency Models, Algorithm 4): the output keeps the
    input's luminance `0.299 R + 0.587 G + 0.114 B` exactly and regenerates the two chroma axes of an orthogonal
    colour transform ([`LuminanceTransform`]).

    Args:
        unet ([`UNet2DModel`]):
            The consistency model's network, with 3 channels.
        scheduler ([`ConsistencyACTScheduler`]):
            Owns the noise levels and the preconditioning.
    """

    @torch.no_grad()
    @replace_example_docstring(COLORIZATION_EXAMPLE)
    @_doc(
        r"""
        Colorizes grey images.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                Grey images (1 channel) or RGB images whose luminance is kept, of the UNet's size, in `[0, 1]`.
            batch_size (`int`, *optional*):
                Number of outputs; defaults to the number of images. A single image is used for the whole batch.
            num_inference_steps (`int`, *optional*, defaults to 1):
                Number of consistency steps, as in [`ACTPipeline`].
            timesteps (`list[int]`, *optional*):
                Strictly decreasing indices into the scheduler's grid, as in [`ACTPipeline`].
            latents (`torch.Tensor`, *optional*):
                Standard Gaussian noise `(batch_size, 3, height, width)` to start from (scaled by `sigma_max`).
{shared_args}

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the colorized images.
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
        channels = self.image_shape[0]
        if channels != 3:
            raise ValueError(
                f"Colorization needs an RGB model (3 channels); this UNet has {channels} channel(s) "
                "(`unet.config.in_channels`)."
            )
        device, dtype = self._execution_device, self.unet.dtype
        grey, batch_size = self.prepare_image(image, batch_size, device, dtype)
        self._check_size(grey, "image", (1, 3))
        self._check_common(batch_size, generator, output_type, callback_on_step_end_tensor_inputs, latents,
                           num_inference_steps, timesteps)  # fmt: skip
        transform = LuminanceTransform()
        luminance = transform.luminance(grey) if grey.shape[1] == 3 else grey  # the weights sum to 1: works in [-1, 1]
        keep_known = KnownCoordinates.from_transform(luminance.expand(-1, 3, -1, -1), transform)
        return self._sample_with_known(
            keep_known, batch_size, timesteps=timesteps, latents=latents,
            class_labels=class_labels, num_inference_steps=num_inference_steps, generator=generator,
            output_type=output_type, return_dict=return_dict, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )  # fmt: skip
