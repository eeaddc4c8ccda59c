# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTDenoisingPipeline: one-step denoising at a known noise level with an ACT consistency model (docs/editing.md)."""

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils import replace_example_docstring

# imported for the saved remote code: diffusers copies only the relative imports of the pipeline's own file with
# it, so every module this one needs, directly or not, is imported here (tests/test_pipeline_loading.py checks)
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .autoencoder import PixelKnownCoordinates  # noqa: F401
from .editing import KnownCoordinates  # noqa: F401
from .editing_base import Callback, Generator, _doc
from .image_inputs import ImageInput
from .pipeline_act import ACTPipeline  # noqa: F401
from .pipeline_act_img2img import ACTImg2ImgPipeline

DENOISING_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTDenoisingPipeline, ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-digits")
        >>> denoise = ACTDenoisingPipeline.from_pipe(pipe)
        >>> clean = denoise(image=noisy, sigma=0.5, output_type="pt").images  # noisy = clean + 0.25 z in [0, 1] units
        ```
"""


class ACTDenoisingPipeline(ACTImg2ImgPipeline):
    r"""
    Denoising of images at a known noise level `sigma` in one step: `f(2 * image - 1, sigma)`, the consistency
    function itself. `sigma` is in the model's units (images in `[-1, 1]`): an image in `[0, 1]` with Gaussian noise
    of standard deviation `s` has `sigma = 2 s`.

    Args:
        unet ([`UNet2DModel`]):
            The consistency model's network.
        scheduler ([`ConsistencyACTScheduler`]):
            Owns the noise levels and the preconditioning.
    """

    @torch.no_grad()
    @replace_example_docstring(DENOISING_EXAMPLE)
    @_doc(
        r"""
        Denoises images.

        Args:
            image (`np.ndarray`, `torch.Tensor`, `PIL.Image.Image` or a list of them):
                Noisy images of the UNet's size and channels: clean images in `[0, 1]` plus noise of standard
                deviation `sigma / 2` (values outside `[0, 1]` are allowed).
            sigma (`float`):
                Their noise level in `[sigma_min, sigma_max]`, in the model's `[-1, 1]` units.
            batch_size (`int`, *optional*):
                Number of outputs; defaults to the number of images.
            num_inference_steps (`int`, defaults to 1):
                One step is the consistency function; more steps re-noise to lower levels as in
                [`ACTImg2ImgPipeline`].
{shared_args}

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the denoised images.
        """
    )
    def __call__(
        self,
        image: ImageInput = None,
        sigma: float = None,
        batch_size: int | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        num_inference_steps: int = 1,
        generator: Generator = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callback = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> ImagePipelineOutput | tuple:
        sigma_min, sigma_max = self.scheduler.config.sigma_min, self.scheduler.config.sigma_max
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma_min <= sigma <= sigma_max:
            raise ValueError(
                f"`sigma` must be the images' noise level, a number in [sigma_min, sigma_max] = [{sigma_min}, "
                f"{sigma_max}] in the model's [-1, 1] units (twice the noise std of [0, 1] images); got {sigma!r}."
            )
        return self._from_level(
            image, float(sigma), batch_size, add_noise=False, latents=None,
            class_labels=class_labels, num_inference_steps=num_inference_steps, generator=generator,
            output_type=output_type, return_dict=return_dict, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
        )  # fmt: skip
