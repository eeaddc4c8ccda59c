# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Zero-shot editing pipelines for ACT consistency models: colorization, super-resolution, guided editing (SDEdit),
interpolation and denoising. They share `ACTPipeline`'s components (`from_pipe`) and its conventions (class labels,
generators, output types, callbacks); inpainting stays on `ACTPipeline` (`image` + `mask_image`). See
docs/editing.md."""

from collections.abc import Callable
from typing import Any

import torch
from diffusers import ImagePipelineOutput
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

# imported for the saved remote code: diffusers copies the pipeline file's relative imports (the scheduler) with it
from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler  # noqa: F401
from .editing import (
    BlockAverageTransform,
    KnownCoordinates,
    LuminanceTransform,
    editing_sigmas,
    slerp,
    strength_to_sigma,
)
from .pipeline_act import ACTPipeline, ImageInput, _check_image_values

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


class _ACTEditingPipeline(ACTPipeline):
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
            _check_image_values(name, image)
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
        sample = self._sample_loop(
            noise, labels, generator, keep_known, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        return self._output(sample, output_type, return_dict)


# ---------------------------------------------------------------------------------------------------------------
# Colorization
# ---------------------------------------------------------------------------------------------------------------
COLORIZATION_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTColorizationPipeline, ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-rgb-model")
        >>> colorize = ACTColorizationPipeline.from_pipe(pipe)
        >>> colored = colorize(image=grey_photo, num_inference_steps=4).images[0]  # same luminance as grey_photo
        ```
"""


class ACTColorizationPipeline(_ACTEditingPipeline):
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
            keep_known, batch_size, class_labels, num_inference_steps, timesteps, generator, latents, output_type,
            return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Super-resolution
# ---------------------------------------------------------------------------------------------------------------
SUPER_RESOLUTION_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTPipeline, ACTSuperResolutionPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-digits")
        >>> upscale = ACTSuperResolutionPipeline.from_pipe(pipe)
        >>> big = upscale(image=small_4x4, class_labels=3, num_inference_steps=4).images[0]  # 16x16
        ```
"""


class ACTSuperResolutionPipeline(_ACTEditingPipeline):
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
            keep_known, batch_size, class_labels, num_inference_steps, timesteps, generator, latents, output_type,
            return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Guided editing (SDEdit) and denoising: start part-way down the noise levels
# ---------------------------------------------------------------------------------------------------------------
IMG2IMG_EXAMPLE = """
    Examples:
        ```py
        >>> from diffusers_act import ACTImg2ImgPipeline, ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-digits")
        >>> edit = ACTImg2ImgPipeline.from_pipe(pipe)
        >>> digit = edit(image=strokes, strength=0.6, class_labels=7).images[0]  # one step from sigma 5.8
        ```
"""


class ACTImg2ImgPipeline(_ACTEditingPipeline):
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
            image, sigma, True, batch_size, class_labels, num_inference_steps, generator, latents, output_type,
            return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs,
        )  # fmt: skip

    def _from_level(
        self,
        image: ImageInput,
        sigma: float,
        add_noise: bool,
        batch_size: int | None,
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
        if add_noise:
            start = start + sigma * self._noise(batch_size, generator, latents, device, dtype)
        labels = self.prepare_class_labels(batch_size, class_labels, generator, device)
        sample = self._sample_loop(
            start, labels, generator, None, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        return self._output(sample, output_type, return_dict)


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
            image, float(sigma), False, batch_size, class_labels, num_inference_steps, generator, None, output_type,
            return_dict, callback_on_step_end, callback_on_step_end_tensor_inputs,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Interpolation
# ---------------------------------------------------------------------------------------------------------------
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


class ACTInterpolationPipeline(_ACTEditingPipeline):
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
        shape = (2, *self.image_shape)
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
