# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""ACTPipeline: one-step, multistep, class-conditional and inpainting sampling of ACT consistency models."""

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput, UNet2DModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import randn_tensor
from huggingface_hub import hf_hub_download, snapshot_download

from ...schedulers.scheduling_consistency_act import ConsistencyACTScheduler

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | list

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from diffusers_act import ACTPipeline

        >>> pipe = ACTPipeline.from_pretrained("user/act-cifar10")
        >>> images = pipe(batch_size=4).images  # one step
        >>> images = pipe(batch_size=4, num_inference_steps=2).images  # multistep
        >>> filled = pipe(image=photo, mask_image=mask, num_inference_steps=4).images[0]  # white = repaint
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
        scheduler ([`ConsistencyACTScheduler`]):
            Owns the noise levels and the preconditioning. A [`CMStochasticIterativeScheduler`] config loads into it
            with `ConsistencyACTScheduler.from_config(...)`.
    """

    model_cpu_offload_seq = "unet"
    _callback_tensor_inputs = ["latents", "denoised"]

    def __init__(self, unet: UNet2DModel, scheduler: ConsistencyACTScheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    # ----------------------------------------------------------------------------------------------------------
    # Loading from the Hub
    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "ACTPipeline":
        """
        Loads a saved `ACTPipeline` from a folder or a Hub repo (see `DiffusionPipeline.from_pretrained`). Weights
        are read from safetensors files only, which cannot run code; `use_safetensors=False` explicitly allows
        pickled `.bin` weights from a source you trust.
        """
        kwargs.setdefault("use_safetensors", True)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def download(cls, pretrained_model_name: str, **kwargs) -> str:
        """
        Downloads a saved `ACTPipeline` from the Hub and returns the local folder.

        diffusers' own `download` refuses pipelines whose components live outside diffusers; this one fetches
        `model_index.json` and the config and safetensors files of the components it lists (not, for instance,
        the `discriminator/` folder or training checkpoints that a training run may have pushed beside them).
        """
        hub_kwargs = {
            key: kwargs[key]
            for key in ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision")
            if kwargs.get(key) is not None
        }
        index_file = hf_hub_download(pretrained_model_name, cls.config_name, **hub_kwargs)
        with open(index_file, encoding="utf-8") as f:
            components = [name for name, value in json.load(f).items() if not name.startswith("_") and value]
        allow_patterns = [cls.config_name] + [f"{name}/*.json" for name in components]
        allow_patterns += [f"{name}/*.safetensors" for name in components]
        return snapshot_download(pretrained_model_name, allow_patterns=allow_patterns, **hub_kwargs)

    # ----------------------------------------------------------------------------------------------------------
    # Input checking and preparation
    # ----------------------------------------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(channels, height, width)` of the images the UNet makes, from `unet.config`."""
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return self.unet.config.in_channels, height, width

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
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"`generator` is a list of {len(generator)} generators but `batch_size` is {batch_size}; pass one "
                "generator per image or a single generator."
            )
        for name, value in (("image", image), ("mask_image", mask_image)):
            _check_image_values(name, value)
        if latents is not None and not torch.isfinite(latents).all():
            raise ValueError("`latents` holds NaN or infinite values; pass standard Gaussian noise.")
        shape = (batch_size, *self.image_shape)
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

    def prepare_class_labels(
        self,
        batch_size: int,
        class_labels: int | list[int] | torch.Tensor | None,
        generator: torch.Generator | list[torch.Generator] | None,
        device: torch.device,
    ) -> torch.Tensor | None:
        """Validates `class_labels`, or draws them from `generator` for a class-conditional UNet."""
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
        if output_type == "latent":
            return sample
        images = (sample / 2 + 0.5).clamp(0, 1)
        if output_type == "pt":
            return images
        images = images.float().cpu().permute(0, 2, 3, 1).numpy()
        return images if output_type == "np" else self.numpy_to_pil(images)

    # ----------------------------------------------------------------------------------------------------------
    # Sampling
    # ----------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
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
            batch_size (`int`, defaults to 1):
                Number of images.
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*):
                Classes for a class-conditional UNet: one for all images or one per image. Drawn at random from
                `generator` when the UNet is class-conditional and none are given.
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
        self.check_inputs(
            batch_size,
            num_inference_steps,
            timesteps,
            image,
            mask_image,
            generator,
            latents,
            output_type,
            callback_on_step_end_tensor_inputs,
        )
        device, dtype = self._execution_device, self.unet.dtype
        if num_inference_steps is None and timesteps is None:
            num_inference_steps = 1

        self.scheduler.set_timesteps(num_inference_steps=num_inference_steps, timesteps=timesteps, device=device)
        shape = (batch_size, *self.image_shape)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents.to(device=device, dtype=dtype) * self.scheduler.init_noise_sigma
        class_labels = self.prepare_class_labels(batch_size, class_labels, generator, device)
        inpainting = image is not None
        if inpainting:
            known, repaint = self.prepare_inpainting(image, mask_image, batch_size, device, dtype)

        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_input = self.scheduler.scale_model_input(latents, t)
            model_output = self.unet(model_input, t, class_labels=class_labels, return_dict=False)[0]
            latents, denoised = self.scheduler.step(model_output, t, latents, generator=generator, return_dict=False)
            if inpainting:
                # CM Algorithm 4: keep the known pixels of the denoised image, re-noised with the same noise
                latents = torch.where(repaint, latents, known + (latents - denoised))
                denoised = torch.where(repaint, denoised, known)
            if callback_on_step_end is not None:
                callback_kwargs = {"latents": latents, "denoised": denoised}
                callback_kwargs = {k: callback_kwargs[k] for k in callback_on_step_end_tensor_inputs}
                overrides = callback_on_step_end(self, i, t, callback_kwargs) or {}
                latents = overrides.get("latents", latents)
                denoised = overrides.get("denoised", denoised)

        # after the last step the scheduler returns the denoised sample itself (and inpainting the known pixels)
        images = self.postprocess(latents, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


def _check_image_values(name: str, value: "ImageInput | None") -> None:
    """Arrays and tensors given as images must be finite and in `[0, 1]` (PIL images always are)."""
    for item in value if isinstance(value, list) else [value]:
        if item is None or isinstance(item, PIL.Image.Image):
            continue
        tensor = torch.as_tensor(np.asarray(item) if isinstance(item, np.ndarray) else item).float()
        if not torch.isfinite(tensor).all():
            raise ValueError(f"`{name}` holds NaN or infinite values.")
        low, high = tensor.min().item(), tensor.max().item()
        if low < 0 or high > 1:
            raise ValueError(
                f"`{name}` values must lie in [0, 1], got [{low:g}, {high:g}]. Divide uint8 images by 255, map "
                "[-1, 1] images with `x / 2 + 0.5`, or pass PIL images."
            )
