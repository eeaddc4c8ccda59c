# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTImg2ImgPipeline: guided image editing (SDEdit) with an ACT consistency model (docs/editing.md)."""

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils import replace_example_docstring

# imported for the saved remote code: diffusers copies only the relative imports of the pipeline's own file with
# it, so every module this one needs, directly or not, is imported here (tests/test_pipeline_loading.py checks)
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .autoencoder import encode_images
from .editing import editing_sigmas, strength_to_sigma
from .editing_base import ACTEditingPipelineBase, Callback, Generator, _doc
from .image_inputs import ImageInput
from .pipeline_act import ACTPipeline  # noqa: F401

IMG2IMG_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTImg2ImgPipeline, ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-digits")
        >>> edit = ACTImg2ImgPipeline.from_pipe(pipe)
        >>> digit = edit(image=strokes, strength=0.6, class_labels=7).images[0]  # one step from sigma 5.8
        ```
"""


class ACTImg2ImgPipeline(ACTEditingPipelineBase):
    r"""
    Guided image editing from a stroke painting or a rough sketch (SDEdit; Consistency Models, section 6): the guide
    is noised to the level `sigma(strength)` and the consistency model denoises it, in one or more steps.

    `strength` in `[0, 1]` is a position on the scheduler's Karras ramp, not a share of the steps:
    `sigma = (sigma_min^(1/rho) + strength * (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho` (see
    [`strength_to_sigma`]); with the default scheduler 0.25, 0.5, 0.75 give sigma 0.17, 2.5 and 17.5. Low strength
    keeps the guide's layout and colours, high strength follows the model more.

    Args:
        unet ([`UNet2DModel`]):
            The consistency model's network.
        scheduler ([`ConsistencyACTScheduler`]):
            Owns the noise levels and the preconditioning.
    """

    @torch.no_grad()
    @replace_example_docstring(IMG2IMG_EXAMPLE)
    @_doc(
        r"""
        Turns guide images into images of the model's distribution.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                Guides (strokes, sketches, images) of the UNet's size and channels, in `[0, 1]`.
            strength (`float`, defaults to 0.5):
                In `[0, 1]`: the noise level `sigma(strength)` the guide is noised to (see above).
            batch_size (`int`, *optional*):
                Number of outputs; defaults to the number of images. A single image is used for the whole batch.
            num_inference_steps (`int`, defaults to 1):
                Steps from `sigma(strength)` down; the later levels divide the ramp below `strength` evenly
                ([`editing_sigmas`]).
            latents (`torch.Tensor`, *optional*):
                Standard Gaussian noise `(batch_size, channels, height, width)`, scaled by `sigma(strength)` and added
                to the guide.
{shared_args}

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the edited images.
        """
    )
    def __call__(
        self,
        image: ImageInput = None,
        strength: float = 0.5,
        batch_size: int | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        num_inference_steps: int = 1,
        generator: Generator = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callback = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> ImagePipelineOutput | tuple:
        sigma = strength_to_sigma(strength, self.scheduler)
        return self._from_level(
            image, sigma, batch_size, add_noise=True, latents=latents,
            class_labels=class_labels, num_inference_steps=num_inference_steps, generator=generator,
            output_type=output_type, return_dict=return_dict, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )  # fmt: skip

    def _from_level(
        self,
        image: ImageInput,
        sigma: float,
        batch_size: int | None,
        *,
        add_noise: bool,
        class_labels,
        num_inference_steps: int,
        generator: Generator,
        latents: torch.Tensor | None,
        output_type: str,
        return_dict: bool,
        callback_on_step_end: Callback,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> ImagePipelineOutput | tuple:
        """Samples from `image` at noise level `sigma` (after adding `sigma * noise` when `add_noise`)."""
        device, dtype = self._execution_device, self.unet.dtype
        sigmas = editing_sigmas(sigma, num_inference_steps, self.scheduler)
        start, batch_size = self.prepare_image(image, batch_size, device, dtype, in_range=add_noise)
        self._check_size(start, "image", (self.image_shape[0],))
        self._check_common(batch_size, generator, output_type, callback_on_step_end_tensor_inputs,
                           latents if add_noise else None)  # fmt: skip
        self.scheduler.set_timesteps(sigmas=sigmas, device=device)
        if self.vae is not None:  # a latent model starts from the guide's latents
            if not add_noise:
                raise ValueError(
                    "Denoising needs a pixel-space model: the noise of a noisy image is not Gaussian noise of its "
                    "latents. With a latent model, use ACTImg2ImgPipeline (its `strength` sets the noise level)."
                )
            start = encode_images(self.vae, start).to(dtype)
        if add_noise:
            start = start + sigma * self._noise(batch_size, generator, latents, device, dtype)
        labels = self.prepare_class_labels(batch_size, class_labels, generator, device)
        sample = self._sample_loop(
            start, labels, generator, None, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        return self._output(sample, output_type, return_dict)
