# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTPipeline: one-step, multistep, class-conditional and inpainting sampling of ACT consistency models."""

import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import (
    AutoencoderKL,
    CMStochasticIterativeScheduler,
    DiffusionPipeline,
    ImagePipelineOutput,
    UNet2DModel,
)
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler
from .autoencoder import decode_latents, encode_images, latent_repaint_mask, vae_scale_factor
from .editing import IdentityTransform, KnownCoordinates
from .image_inputs import ImageInput, check_image_values, count_images

logger = logging.get_logger(__name__)


EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import PIL.Image
        >>> import torch
        >>> from diffusers import DiffusionPipeline

        >>> import diffusers_act  # lets DiffusionPipeline load ACT pipelines with this package's classes

        >>> pipe = DiffusionPipeline.from_pretrained("your-name/act-digits")  # an ACTPipeline
        >>> generator = torch.Generator().manual_seed(0)
        >>> image = pipe(class_labels=3, generator=generator).images[0]  # one step, a 3
        >>> images = pipe(batch_size=4, num_inference_steps=2, generator=generator).images  # two steps

        >>> # zero-shot inpainting: white mask pixels are repainted, black ones kept
        >>> mask = PIL.Image.new("L", image.size, 0)
        >>> mask.paste(255, (0, 0, image.width, image.height // 2))  # repaint the top half
        >>> filled = pipe(image=image, mask_image=mask, num_inference_steps=4, generator=generator).images[0]
        ```
"""


class ACTPipeline(DiffusionPipeline):
    r"""
    Sampling from a consistency model trained with Adversarial Consistency Training.

    One step by default; more steps, explicit timesteps, class-conditional sampling and zero-shot inpainting
    (Consistency Models, Algorithm 4) through `image` + `mask_image`.

    Args:
        unet ([`UNet2DModel`]):
            The consistency model's network `F_theta`.
        scheduler ([`ConsistencyACTScheduler`] or [`CMStochasticIterativeScheduler`]):
            Owns the noise levels and the preconditioning. diffusers' [`CMStochasticIterativeScheduler`] samples the
            same images for models with `noise_conditioning="log"` (it is refused for `"sigma"` ones) but does not
            return the denoised estimate, which inpainting and the `"denoised"` callback tensor need;
            `ConsistencyACTScheduler.from_config(pipe.scheduler.config)` converts it.
        vae ([`AutoencoderKL`], *optional*):
            For a model trained in a VAE's latent space: the UNet makes latents, which are decoded to images
            (`output_type="latent"` returns them as they are); inpainting encodes the image and repaints the latents
            under the mask, enlarged to whole latents (docs/latent.md).
        id2label (`dict[int, str]`, *optional*):
            The name of each class of a class-conditional UNet (as diffusers' `DiTPipeline`), saved in
            `model_index.json`; `class_labels` then also takes names ([`get_label_ids`]).
    """

    model_cpu_offload_seq = "unet->vae"
    _optional_components = ["vae"]
    _callback_tensor_inputs = ["latents", "denoised"]

    def __init__(
        self,
        unet: UNet2DModel,
        scheduler: ConsistencyACTScheduler | CMStochasticIterativeScheduler,
        vae: AutoencoderKL | None = None,
        id2label: dict | None = None,
    ):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, vae=vae)
        id2label = {int(k): str(v) for k, v in id2label.items()} if id2label else None
        self.register_to_config(id2label=id2label)
        self.labels = {name: index for index, name in (id2label or {}).items()}  # name -> class id
        self.image_processor = VaeImageProcessor(vae_scale_factor=1, do_resize=False)

    def get_label_ids(self, label: str | list[str]) -> list[int]:
        """The class ids of class names (`id2label`'s values), as diffusers' `DiTPipeline.get_label_ids`."""
        names = [label] if isinstance(label, str) else list(label)
        if any(name not in self.labels for name in names):
            known = ", ".join(map(repr, sorted(self.labels))) or "none: this pipeline has no `id2label`"
            raise ValueError(f"{[n for n in names if n not in self.labels]} are not class names; they are {known}.")
        return [self.labels[name] for name in names]

    # ----------------------------------------------------------------------------------------------------------
    # Saving
    # ----------------------------------------------------------------------------------------------------------
    def save_config(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> None:
        """Writes `model_index.json` (called by `save_pretrained`) and beside it the pipeline's and the scheduler's
        code, which diffusers runs where this package is not imported (`diffusers_act.pipelines.remote_code`)."""
        super().save_config(save_directory, push_to_hub=push_to_hub, **kwargs)
        try:  # not an import statement: diffusers' remote-code loader would ask to `pip install` the package
            remote_code = importlib.import_module("diffusers_act.pipelines.remote_code")
        except ImportError:  # this class was loaded as remote code, where diffusers-act is not installed
            logger.warning(
                f"diffusers-act is not installed, so {save_directory} got no pipeline code and its model_index.json "
                "names this session's remote-code modules: it will not load elsewhere. Install diffusers-act (not on "
                "PyPI: `pip install -e .` in a clone of its repository, or a wheel built there) and save again."
            )
            return
        remote_code.write_remote_code(save_directory, type(self))

    # ----------------------------------------------------------------------------------------------------------
    # Input checking and preparation
    # ----------------------------------------------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """`(channels, height, width)` of what the UNet makes (the images, or the latents with a `vae`)."""
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return self.unet.config.in_channels, height, width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(channels, height, width)` of the images the pipeline makes (the VAE's decoded size with a `vae`)."""
        channels, height, width = self.latent_shape
        if getattr(self, "vae", None) is None:
            return channels, height, width
        factor = vae_scale_factor(self.vae)
        return self.vae.config.out_channels, height * factor, width * factor

    def check_inputs(
        self,
        batch_size: int,
        num_inference_steps: int,
        timesteps: list[int] | None,
        image: ImageInput | None,
        mask_image: ImageInput | None,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
        output_type: str,
        callback_on_step_end_tensor_inputs: list[str] | None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if num_inference_steps is not None and timesteps is not None:
            raise ValueError(
                "Pass either `num_inference_steps` or `timesteps`, not both: explicit `timesteps` fix the number "
                "of steps."
            )
        if (image is None) != (mask_image is None):
            missing = "mask_image" if mask_image is None else "image"
            raise ValueError(
                f"Inpainting needs both `image` and `mask_image`; `{missing}` is missing. Pass both (white mask "
                "pixels are repainted) or neither for unconditional sampling."
            )
        generators = generator if isinstance(generator, list) else [generator]
        if not all(g is None or isinstance(g, torch.Generator) for g in generators):
            raise ValueError(
                f"`generator` must be a `torch.Generator` or a list of them (one per image), got {generator!r}: e.g. "
                "`generator=torch.Generator().manual_seed(0)`."
            )
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"`generator` is a list of {len(generator)} generators but `batch_size` is {batch_size}; pass one "
                "generator per image or a single generator."
            )
        for name, value in (("image", image), ("mask_image", mask_image)):
            check_image_values(name, value)
        if latents is not None and not torch.isfinite(latents).all():
            raise ValueError("`latents` holds NaN or infinite values; pass standard Gaussian noise.")
        shape = (batch_size, *self.latent_shape)
        if latents is not None and tuple(latents.shape) != shape:
            raise ValueError(
                f"`latents` has shape {tuple(latents.shape)} but this UNet and `batch_size` need {shape}."
            )
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"`output_type` must be one of 'pil', 'np', 'pt', 'latent', got {output_type!r}.")
        unknown = [k for k in callback_on_step_end_tensor_inputs or [] if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has {unknown}; the tensors on offer are "
                f"{self._callback_tensor_inputs}."
            )
        if not hasattr(self.scheduler, "precondition_outputs") and (
            self.scheduler.config.get("noise_conditioning", "log") != "log"
        ):
            raise ValueError(
                f"This UNet was trained with `noise_conditioning={self.scheduler.config.noise_conditioning!r}` (the "
                f"scheduler config says so), which {type(self.scheduler).__name__} does not implement: it feeds the "
                "UNet `250 * ln(sigma)`, so the images would change. Sample with ConsistencyACTScheduler: "
                "`pipe.scheduler = ConsistencyACTScheduler.from_config(pipe.scheduler.config)`."
            )
        needs_denoised = image is not None or "denoised" in (callback_on_step_end_tensor_inputs or [])
        if needs_denoised and not hasattr(self.scheduler, "precondition_outputs"):
            raise ValueError(
                f"Inpainting and the `'denoised'` callback tensor need the denoised estimate of each step, which "
                f"{type(self.scheduler).__name__}.step does not return. Use ConsistencyACTScheduler: "
                "`pipe.scheduler = ConsistencyACTScheduler.from_config(pipe.scheduler.config)`."
            )

    def prepare_class_labels(
        self,
        batch_size: int,
        class_labels: int | str | list[int] | list[str] | torch.Tensor | None,
        generator: torch.Generator | list[torch.Generator] | None,
        device: torch.device,
    ) -> torch.Tensor | None:
        """Validates `class_labels` (ids, or names of `id2label`), or draws them from `generator` for a
        class-conditional UNet."""
        if isinstance(class_labels, str) or (
            isinstance(class_labels, (list, tuple)) and class_labels and all(isinstance(c, str) for c in class_labels)
        ):
            class_labels = self.get_label_ids(class_labels)
        num_classes = self.unet.config.num_class_embeds
        if num_classes is None:
            if class_labels is not None:
                raise ValueError(
                    "`class_labels` were given but this UNet is unconditional (`unet.config.num_class_embeds` is "
                    "None); drop `class_labels`."
                )
            return None
        if class_labels is None:
            generators = generator if isinstance(generator, list) else [generator] * batch_size
            labels = [
                torch.randint(0, num_classes, (1,), generator=g, device=g.device if g is not None else "cpu").cpu()
                for g in generators
            ]
            return torch.cat(labels).to(device)
        integers = isinstance(class_labels, (int, np.integer, torch.Tensor, np.ndarray)) or (
            isinstance(class_labels, (list, tuple)) and all(isinstance(c, (int, np.integer)) for c in class_labels)
        )
        if not integers or isinstance(class_labels, bool) or not np.size(class_labels):
            raise ValueError(
                f"`class_labels` must be an int, a non-empty list of ints, an integer tensor, or class names (with "
                f"`id2label`), got {class_labels!r}."
            )
        labels = torch.as_tensor(class_labels).reshape(-1)
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"`class_labels` must be integers, got dtype {labels.dtype}.")
        if labels.numel() == 1:
            labels = labels.expand(batch_size)
        if labels.numel() != batch_size:
            raise ValueError(
                f"`class_labels` holds {labels.numel()} labels but `batch_size` is {batch_size}; give one label, or "
                "one per image."
            )
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"`class_labels` must lie in [0, {num_classes - 1}] for this UNet ({num_classes} classes), got "
                f"{labels.tolist()}."
            )
        return labels.to(device=device, dtype=torch.long)

    def prepare_inpainting(
        self, image: ImageInput, mask_image: ImageInput, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Converts `image` (to `[-1, 1]`) and `mask_image` (to a boolean repaint mask, white = True) to tensors of
        the UNet's shape, with a batch of 1 or `batch_size`.
        """
        channels, height, width = self.image_shape
        image_processor = VaeImageProcessor(
            vae_scale_factor=1, do_resize=False, do_convert_rgb=channels == 3, do_convert_grayscale=channels == 1
        )
        mask_processor = VaeImageProcessor(
            vae_scale_factor=1, do_resize=False, do_normalize=False, do_binarize=True, do_convert_grayscale=True
        )
        known = image_processor.preprocess(image).to(device=device, dtype=dtype)
        repaint = mask_processor.preprocess(mask_image).to(device=device)
        for name, tensor, want_channels in (("image", known, channels), ("mask_image", repaint, 1)):
            if tuple(tensor.shape[-2:]) != (height, width) or tensor.shape[1] not in (want_channels, channels):
                raise ValueError(
                    f"`{name}` has shape {tuple(tensor.shape[1:])} (channels, height, width) but this UNet makes "
                    f"{channels}x{height}x{width} images; resize it to {height}x{width}"
                    + (f" with {want_channels} channel(s)." if name == "image" else ".")
                )
            if tensor.shape[0] not in (1, batch_size):
                raise ValueError(
                    f"`{name}` holds {tensor.shape[0]} images but `batch_size` is {batch_size}; pass one, or set "
                    f"`batch_size={tensor.shape[0]}`."
                )
        return known.expand(batch_size, -1, -1, -1), (repaint > 0.5).expand(batch_size, channels, -1, -1)

    def postprocess(self, sample: torch.Tensor, output_type: str) -> torch.Tensor | np.ndarray | list[PIL.Image.Image]:
        """`[-1, 1]` samples to `output_type` with diffusers' `VaeImageProcessor.postprocess`."""
        return self.image_processor.postprocess(sample, output_type=output_type)

    @property
    def num_timesteps(self) -> int:
        """Number of sampling steps of the current (or last) call, as on diffusers' pipelines."""
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` in a `callback_on_step_end` to skip the remaining steps."""
        return self._interrupt

    # ----------------------------------------------------------------------------------------------------------
    # Sampling
    # ----------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        batch_size: int | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        num_inference_steps: int | None = None,
        timesteps: list[int] | None = None,
        image: ImageInput | None = None,
        mask_image: ImageInput | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[["ACTPipeline", int, torch.Tensor, dict[str, Any]], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ) -> ImagePipelineOutput | tuple:
        r"""
        Generates images.

        Args:
            batch_size (`int`, *optional*):
                Number of images; defaults to the number of images to inpaint (`image`, `mask_image`) or of
                `latents`, else 1.
            class_labels (`int`, `str`, `list[int]`, `list[str]` or `torch.Tensor`, *optional*):
                Classes for a class-conditional UNet (ids, or names of `id2label`): one for all images or one per
                image. Drawn at random from `generator` when the UNet is class-conditional and none are given.
            num_inference_steps (`int`, *optional*, defaults to 1):
                Number of consistency steps (1 unless `timesteps` are given).
            timesteps (`list[int]`, *optional*):
                Strictly decreasing indices into the scheduler's grid (see [`ConsistencyACTScheduler.set_timesteps`]).
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them, *optional*):
                Image to inpaint (arrays and tensors in `[0, 1]`), of the UNet's size. Needs `mask_image`.
            mask_image (same types as `image`, *optional*):
                White (>= 0.5) pixels are repainted; black pixels are kept exactly.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                Makes sampling deterministic; a list gives one generator per image.
            latents (`torch.Tensor`, *optional*):
                Standard Gaussian noise of shape `(batch_size, channels, height, width)` to start from; it is scaled
                by `sigma_max`. Drawn from `generator` if not given.
            output_type (`str`, defaults to `"pil"`):
                `"pil"`, `"np"` (`[0, 1]`, channels last), `"pt"` (`[0, 1]`, channels first) or `"latent"` (the raw
                `[-1, 1]` samples).
            return_dict (`bool`, defaults to `True`):
                Return an [`~pipelines.ImagePipelineOutput`] rather than a tuple.
            callback_on_step_end (`Callable`, *optional*):
                Called after every step as `callback_on_step_end(pipe, step, timestep, callback_kwargs)`; may return
                a dict with replacement tensors (e.g. `{"latents": ...}`).
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`):
                Tensors passed in `callback_kwargs`: any of `"latents"` and `"denoised"`.

        Examples:

        Returns:
            [`~pipelines.ImagePipelineOutput`] or `tuple`: the images (a list for `"pil"`).
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        if batch_size is None:  # as diffusers' inpainting pipelines: one output per image given
            given = max(count_images(image), count_images(mask_image), 1) if image is not None else None
            batch_size = given or count_images(latents)
        self.check_inputs(batch_size, num_inference_steps, timesteps, image, mask_image, generator, latents,
                          output_type, callback_on_step_end_tensor_inputs)  # fmt: skip
        device, dtype = self._execution_device, self.unet.dtype
        if num_inference_steps is None and timesteps is None:
            num_inference_steps = 1

        self.scheduler.set_timesteps(num_inference_steps=num_inference_steps, timesteps=timesteps, device=device)
        latents = self._noise(batch_size, generator, latents, device, dtype) * self.scheduler.init_noise_sigma
        class_labels = self.prepare_class_labels(batch_size, class_labels, generator, device)
        keep_known = None
        if image is not None:  # inpainting: Algorithm 4 with A = identity
            known, repaint = self.prepare_inpainting(image, mask_image, batch_size, device, dtype)
            if self.vae is not None:  # the latents of the image, repainted where any pixel they cover is
                known = encode_images(self.vae, known).to(dtype)
                repaint = latent_repaint_mask(repaint, vae_scale_factor(self.vae)).expand_as(known)
            keep_known = KnownCoordinates.from_transform(known, IdentityTransform(~repaint))

        sample = self._sample_loop(
            latents, class_labels, generator, keep_known, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        # after the last step the scheduler returns the denoised sample itself (and inpainting the known pixels)
        return self._output(sample, output_type, return_dict)

    def _noise(self, batch_size: int, generator, latents: torch.Tensor | None, device, dtype) -> torch.Tensor:
        """Unit-variance noise of the UNet's image shape (drawn with `generator`), or the given `latents`."""
        if latents is None:
            return randn_tensor((batch_size, *self.latent_shape), generator=generator, device=device, dtype=dtype)
        return latents.to(device=device, dtype=dtype)

    def _sample_loop(
        self,
        latents: torch.Tensor,
        class_labels: torch.Tensor | None,
        generator: torch.Generator | list[torch.Generator] | None,
        keep_known: KnownCoordinates | None,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> torch.Tensor:
        """
        Consistency sampling over `self.scheduler.timesteps` from the noisy `latents` (every pipeline here runs this
        loop); with `keep_known`, every denoised estimate and its re-noised sample keep the known coordinates
        (Consistency Models, Algorithm 4). Returns the last sample, before the final clip to the image range.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self._num_timesteps = len(self.scheduler.timesteps)
        self._interrupt = False
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            if self.interrupt:
                continue
            model_input = self.scheduler.scale_model_input(latents, t)
            model_output = self.unet(model_input, t, class_labels=class_labels, return_dict=False)[0]
            step_output = self.scheduler.step(model_output, t, latents, generator=generator)
            # diffusers' CMStochasticIterativeScheduler returns no denoised estimate (check_inputs needs none then)
            latents, denoised = step_output.prev_sample, getattr(step_output, "pred_original_sample", None)
            if keep_known is not None:  # keep the known coordinates, re-noised with the step's noise (editing.py)
                latents, denoised = keep_known(latents, denoised)
            if callback_on_step_end is not None:
                callback_kwargs = {"latents": latents, "denoised": denoised}
                callback_kwargs = {k: callback_kwargs[k] for k in callback_on_step_end_tensor_inputs}
                overrides = callback_on_step_end(self, i, t, callback_kwargs) or {}
                latents = overrides.get("latents", latents)
                denoised = overrides.get("denoised", denoised)
        return latents

    def _output(self, sample: torch.Tensor, output_type: str, return_dict: bool) -> ImagePipelineOutput | tuple:
        if self.vae is not None and output_type != "latent":
            sample = decode_latents(self.vae, sample)
        images = self.postprocess(sample, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)
