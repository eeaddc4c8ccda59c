# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTInterpolationPipeline: images along the spherical path between two noise tensors (docs/editing.md)."""

import torch
from diffusers import ImagePipelineOutput
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

# imported for the saved remote code: diffusers copies only the relative imports of the pipeline's own file with
# it, so every module this one needs, directly or not, is imported here (tests/test_pipeline_loading.py checks)
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .autoencoder import PixelKnownCoordinates  # noqa: F401
from .editing import slerp
from .editing_base import ACTEditingPipelineBase, Callback, Generator, _doc
from .image_inputs import ImageInput  # noqa: F401
from .pipeline_act import ACTPipeline  # noqa: F401

INTERPOLATION_EXAMPLE = """
    Examples:
        ```py
        >>> import torch
        >>> from diffusers_act import ACTInterpolationPipeline, ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-digits")
        >>> interpolate = ACTInterpolationPipeline.from_pipe(pipe)
        >>> seeds = [torch.Generator().manual_seed(s) for s in (1, 2)]
        >>> path = interpolate(num_images=8, generator=seeds, class_labels=4).images  # seed 1 ... seed 2
        ```
"""


class ACTInterpolationPipeline(ACTEditingPipelineBase):
    r"""
    Interpolation between two noise tensors (Consistency Models, section 6): images sampled from points of the
    spherical interpolation ([`slerp`]) between them. The ends are the images [`ACTPipeline`] makes from the same
    noise; in multistep sampling every image on the path gets the same re-noising noise, so the path stays smooth.

    Args:
        unet ([`UNet2DModel`]):
            The consistency model's network.
        scheduler ([`ConsistencyACTScheduler`]):
            Owns the noise levels and the preconditioning.
    """

    @torch.no_grad()
    @replace_example_docstring(INTERPOLATION_EXAMPLE)
    @_doc(
        r"""
        Samples the images along the path between two noise tensors.

        Args:
            num_images (`int`, defaults to 8):
                Points on the path, both ends included (at least 2), at `alpha = 0, 1/(n-1), ..., 1`.
            latents (`torch.Tensor`, *optional*):
                The two ends, standard Gaussian noise of shape `(2, channels, height, width)`. Drawn from
                `generator` if not given.
            generator (`torch.Generator` or a list of two, *optional*):
                One generator draws both ends (and the re-noising noise); a list of two draws one end each (the
                noise `ACTPipeline` would draw from each for one image, so two seeds give the images of those seeds at
                the ends), and the first also draws the re-noising noise and random class labels.
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*):
                One class for the whole path, or one per image. Drawn at random (one for the path) from `generator`
                when the UNet is class-conditional and none are given.
            num_inference_steps (`int`, *optional*, defaults to 1):
                Number of consistency steps, as in [`ACTPipeline`].
            timesteps (`list[int]`, *optional*):
                Strictly decreasing indices into the scheduler's grid, as in [`ACTPipeline`].
{shared_args}

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the `num_images` images along the path.
        """,
        exclude=("class_labels", "generator"),
    )
    def __call__(
        self,
        num_images: int = 8,
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
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 2:
            raise ValueError(f"`num_images` must be an integer of at least 2 (both ends), got {num_images!r}.")
        if isinstance(generator, list) and len(generator) != 2:
            raise ValueError(
                f"`generator` is a list of {len(generator)} generators; pass two (one per end) or a single one."
            )
        self._check_common(num_images, None, output_type, callback_on_step_end_tensor_inputs, None,
                           num_inference_steps, timesteps)  # fmt: skip
        device, dtype = self._execution_device, self.unet.dtype
        shape = (2, *self.latent_shape)
        if latents is not None and tuple(latents.shape) != shape:
            raise ValueError(f"`latents` has shape {tuple(latents.shape)} but the two ends need {shape}.")
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents.to(device=device, dtype=dtype)
        first = generator[0] if isinstance(generator, list) else generator
        if first is None:
            first = torch.Generator(device=device).manual_seed(int(torch.randint(0, 2**62, (1,)).item()))

        if num_inference_steps is None and timesteps is None:
            num_inference_steps = 1
        self.scheduler.set_timesteps(num_inference_steps=num_inference_steps, timesteps=timesteps, device=device)
        alphas = torch.linspace(0, 1, num_images, dtype=torch.float64)
        path = slerp(latents[0], latents[1], alphas) * self.scheduler.init_noise_sigma
        if class_labels is None or torch.as_tensor(class_labels).numel() == 1:
            labels = self.prepare_class_labels(1, class_labels, first, device)
            labels = None if labels is None else labels.expand(num_images)
        else:
            labels = self.prepare_class_labels(num_images, class_labels, first, device)
        # one copy of the first generator per image: the same re-noising noise all along the path
        step_generators = [torch.Generator(device=first.device).set_state(first.get_state()) for _ in alphas]
        sample = self._sample_loop(
            path, labels, step_generators, None, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        return self._output(sample, output_type, return_dict)
