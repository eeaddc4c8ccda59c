# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Consistency-model scheduler for Adversarial Consistency Training (ACT).

It owns the two formulas that training and sampling share: the Karras time grid and the consistency-model
preconditioning `f(x, t) = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t))` (docs/algorithm.md).
"""

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

NOISE_CONDITIONINGS = ("log", "sigma")


@dataclass
class ConsistencyACTSchedulerOutput(BaseOutput):
    """
    Output of [`ConsistencyACTScheduler.step`].

    Args:
        prev_sample (`torch.Tensor` of shape `(batch_size, num_channels, height, width)`):
            The sample for the next step: the denoised image re-noised to the next noise level (equal to
            `pred_original_sample` after the last step).
        pred_original_sample (`torch.Tensor` of shape `(batch_size, num_channels, height, width)`):
            The consistency function's estimate of the clean image, `f(x, sigma)`.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class ConsistencyACTScheduler(SchedulerMixin, ConfigMixin):
    """
    One-step and multistep sampling for consistency models trained with ACT, and the preconditioning helpers that
    training uses.

    Its config is that of diffusers' [`CMStochasticIterativeScheduler`] (same keys, same defaults, same sampling
    results) plus `noise_conditioning`, so configs load both ways with `from_config`.

    Args:
        num_train_timesteps (`int`, defaults to 40):
            Size of the Karras grid that `num_inference_steps` and integer `timesteps` index into.
        sigma_min (`float`, defaults to 0.002):
            Smallest noise level (the consistency model's epsilon, where `f(x, sigma_min) = x`).
        sigma_max (`float`, defaults to 80.0):
            Largest noise level; one-step sampling starts from `sigma_max * z`.
        sigma_data (`float`, defaults to 0.5):
            Standard deviation of the data distribution (EDM).
        s_noise (`float`, defaults to 1.0):
            Scale of the fresh noise added between steps of multistep sampling.
        rho (`float`, defaults to 7.0):
            Exponent of the Karras grid.
        clip_denoised (`bool`, defaults to `True`):
            Whether to clip the denoised images to `[-1, 1]` while sampling.
        noise_conditioning (`str`, defaults to `"log"`):
            What the UNet receives as its time input. `"log"`: `1000 * 0.25 * ln(sigma + 1e-44)`, as diffusers'
            consistency-model pipeline feeds it. `"sigma"`: the raw sigma, as the authors' ACT code (and so their
            published checkpoints) feed it.
    """

    _compatibles = ["CMStochasticIterativeScheduler"]
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 40,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sigma_data: float = 0.5,
        s_noise: float = 1.0,
        rho: float = 7.0,
        clip_denoised: bool = True,
        noise_conditioning: str = "log",
    ):
        if noise_conditioning not in NOISE_CONDITIONINGS:
            raise ValueError(f"`noise_conditioning` must be one of {NOISE_CONDITIONINGS}, got {noise_conditioning!r}. "
                             "Use 'log' for diffusers-style models and 'sigma' for the authors' ACT checkpoints.")
        integer = isinstance(num_train_timesteps, (int, np.integer)) and not isinstance(num_train_timesteps, bool)
        if not integer or num_train_timesteps < 2:
            raise ValueError(f"`num_train_timesteps` must be an integer of at least 2, got {num_train_timesteps!r}.")
        positive = {"sigma_min": sigma_min, "sigma_max": sigma_max, "sigma_data": sigma_data, "rho": rho}
        for name, value in {**positive, "s_noise": s_noise}.items():
            number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if not number or not np.isfinite(value) or value < 0 or (value == 0 and name in positive):
                wanted = "a finite positive number" if name in positive else "a finite number >= 0"
                raise ValueError(f"`{name}` must be {wanted}, got {value!r}.")
        if not sigma_min < sigma_max:
            raise ValueError(f"Need 0 < `sigma_min` < `sigma_max`, got sigma_min={sigma_min}, sigma_max={sigma_max}.")

        self.init_noise_sigma = sigma_max
        sigmas = self._karras(np.linspace(0, 1, num_train_timesteps))
        self.sigmas = torch.from_numpy(sigmas)
        self.timesteps = torch.from_numpy(self.sigma_to_t(sigmas))
        self.num_inference_steps = None
        self.custom_timesteps = False
        self._step_index = None
        self._begin_index = None

    # --- The time grid ---
    def _karras(self, ramp: np.ndarray) -> np.ndarray:
        """Karras sigmas in float64: `ramp = 0` gives `sigma_max`, `ramp = 1` gives `sigma_min`."""
        min_inv_rho = self.config.sigma_min ** (1 / self.config.rho)
        max_inv_rho = self.config.sigma_max ** (1 / self.config.rho)
        return (max_inv_rho + np.asarray(ramp, dtype=np.float64) * (min_inv_rho - max_inv_rho)) ** self.config.rho

    def sigma_to_ramp(self, sigmas: float | np.ndarray) -> np.ndarray:
        """The inverse of the Karras ramp in float64: `ramp` with `_karras(ramp) = sigma` (`sigma_max` -> 0,
        `sigma_min` -> 1, outside `[0, 1]` beyond them); `karras_sigmas(N)[i]` is at `1 - i / (N - 1)`."""
        # NumPy's power for the ends too, so that sigma_min and sigma_max map to exactly 1 and 0
        min_inv_rho, max_inv_rho = np.array([self.config.sigma_min, self.config.sigma_max]) ** (1 / self.config.rho)
        inv_rho = np.asarray(sigmas, dtype=np.float64) ** (1 / self.config.rho)
        return (inv_rho - max_inv_rho) / (min_inv_rho - max_inv_rho)

    def karras_sigmas(
        self, num_timesteps: int, device: str | torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """
        The training grid (docs/algorithm.md): `num_timesteps` noise levels in ascending order, `t_0 = sigma_min`
        and `t_{N-1} = sigma_max`.

        Args:
            num_timesteps (`int`):
                Number of grid points N (at least 2), e.g. the curriculum's N(k).
            device (`str` or `torch.device`, *optional*):
                Where to put the result.
            dtype (`torch.dtype`, defaults to `torch.float32`):
                Data type of the result.

        Returns:
            `torch.Tensor` of shape `(num_timesteps,)`.
        """
        if num_timesteps < 2:
            raise ValueError(f"`num_timesteps` must be at least 2, got {num_timesteps}.")
        sigmas = self._karras(np.linspace(1, 0, num_timesteps))
        sigmas[0], sigmas[-1] = self.config.sigma_min, self.config.sigma_max
        return torch.from_numpy(sigmas).to(device=device, dtype=dtype)

    def sigma_to_t(self, sigmas: float | np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """
        Converts noise levels to the UNet's time input (see `noise_conditioning`). Accepts floats, NumPy arrays (in
        float64, returning NumPy) and tensors (returning tensors).
        """
        if isinstance(sigmas, torch.Tensor):
            return self.precondition_noise(sigmas)
        sigmas = np.asarray(sigmas, dtype=np.float64)
        return self.precondition_noise(torch.from_numpy(sigmas)).numpy()

    def t_to_sigma(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Inverse of [`~ConsistencyACTScheduler.sigma_to_t`] for tensors: the noise level of a UNet time input."""
        timesteps = _as_float_tensor(timesteps)
        if self.config.noise_conditioning == "sigma":
            return timesteps
        return torch.exp(timesteps.double() / 250.0).to(timesteps.dtype)

    # --- Preconditioning: the consistency function f_theta (shared by training and sampling) ---
    def get_scalings_for_boundary_condition(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        `c_skip` and `c_out` of the consistency-model parametrisation (Consistency Models, appendix C), with
        epsilon = `sigma_min`, so that `c_skip(sigma_min) = 1` and `c_out(sigma_min) = 0`.
        """
        sigma_min, sigma_data = self.config.sigma_min, self.config.sigma_data
        c_skip = sigma_data**2 / ((sigma - sigma_min) ** 2 + sigma_data**2)
        c_out = (sigma - sigma_min) * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
        return c_skip, c_out

    def precondition_inputs(self, sample: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """
        The UNet's input `c_in(sigma) * sample`, `c_in = 1 / sqrt(sigma^2 + sigma_data^2)`.

        Args:
            sample (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
                Noisy images `x + sigma * z`.
            sigma (`torch.Tensor` of shape `()` or `(batch_size,)`, or `float`):
                Their noise levels.
        """
        sigma = _broadcast_sigma(sigma, sample)
        return sample / ((sigma**2 + self.config.sigma_data**2) ** 0.5).to(sample.dtype)

    def precondition_noise(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """
        The UNet's time input `c_noise(sigma)`: `250 * ln(sigma + 1e-44)` (computed in float64, as diffusers does)
        or the raw sigma, by `noise_conditioning`.
        """
        sigma = _as_float_tensor(sigma)
        if self.config.noise_conditioning == "sigma":
            return sigma
        return (1000 * 0.25 * torch.log(sigma.double() + 1e-44)).to(sigma.dtype)

    def precondition_outputs(
        self, sample: torch.Tensor, model_output: torch.Tensor, sigma: torch.Tensor | float
    ) -> torch.Tensor:
        """
        The consistency function `f(x, sigma) = c_skip(sigma) * x + c_out(sigma) * F(...)`: turns the UNet's raw
        output for the noisy `sample` into the estimate of the clean image. `f(x, sigma_min) = x` exactly.

        Args:
            sample (`torch.Tensor`):
                The noisy images that were fed (after [`precondition_inputs`]) to the UNet.
            model_output (`torch.Tensor`):
                The UNet's output `F`.
            sigma (`torch.Tensor` of shape `()` or `(batch_size,)`, or `float`):
                The noise levels of `sample`.
        """
        sigma = _broadcast_sigma(sigma, sample)
        c_skip, c_out = self.get_scalings_for_boundary_condition(sigma)
        return c_skip.to(sample.dtype) * sample + c_out.to(model_output.dtype) * model_output

    # --- Sampling (the diffusers scheduler API) ---
    @property
    def step_index(self) -> int | None:
        """Index of the current step in `sigmas`; increases by one after each `step`."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Index of the first step, when a pipeline sets it with `set_begin_index`."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Sets the index of the first step (for pipelines that start part-way through the schedule)."""
        self._begin_index = begin_index

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: list[int] | None = None,
        sigmas: list[float] | np.ndarray | torch.Tensor | None = None,
    ) -> None:
        """
        Sets the noise levels of sampling, exactly as [`CMStochasticIterativeScheduler`] does (or, with `sigmas`,
        any levels, e.g. to start part-way down the schedule for image editing).

        Args:
            num_inference_steps (`int`, *optional*):
                Number of steps; grid indices `i * (num_train_timesteps // num_inference_steps)` are used.
            device (`str` or `torch.device`, *optional*):
                Where to put `timesteps`.
            timesteps (`list[int]`, *optional*):
                Strictly decreasing indices into the `num_train_timesteps`-point Karras grid, as in diffusers:
                index `i` stands for `sigma = karras(i / (num_train_timesteps - 1))` with index 0 at `sigma_max`, and
                sampling visits them from the largest sigma down. E.g. `[22, 0]` with 40 train timesteps samples at
                sigma 80 and then at sigma ~1.38 (the 2-step schedule of the Consistency Models paper).
            sigmas (`list[float]`, `np.ndarray` or `torch.Tensor`, *optional*):
                Strictly decreasing noise levels in `[sigma_min, sigma_max]`, visited in the given order (any values,
                not only grid points). Pass exactly one of `num_inference_steps`, `timesteps` and `sigmas`.
        """
        given = [name for name, arg in (("num_inference_steps", num_inference_steps), ("timesteps", timesteps),
                 ("sigmas", sigmas)) if arg is not None]  # fmt: skip
        if not given:
            raise ValueError("Pass one of `num_inference_steps`, `timesteps` or `sigmas` to `set_timesteps`.")
        if len(given) > 1:
            raise ValueError(f"Pass only one of `num_inference_steps`, `timesteps` or `sigmas`, not both {given}.")
        n_train = self.config.num_train_timesteps

        if sigmas is not None:
            sigmas = self._validate_sigmas(sigmas)
            self.num_inference_steps = len(sigmas)
            self.custom_timesteps = True
            self.timesteps = torch.from_numpy(self.sigma_to_t(sigmas)).to(device=device)
            self.sigmas = torch.from_numpy(np.append(sigmas, self.config.sigma_min).astype(np.float32))
            self._step_index = None
            self._begin_index = None
            return
        if timesteps is not None:
            timesteps = self._validate_timesteps(timesteps)
            self.num_inference_steps = len(timesteps)
            self.custom_timesteps = True
        else:
            if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)):
                raise ValueError(f"`num_inference_steps` must be an integer, got {num_inference_steps!r}.")
            if not 1 <= num_inference_steps <= n_train:
                raise ValueError(
                    f"`num_inference_steps` must be between 1 and `num_train_timesteps` ({n_train}), got "
                    f"{num_inference_steps}. Raise the scheduler's `num_train_timesteps` for a finer grid."
                )
            self.num_inference_steps = int(num_inference_steps)
            step_ratio = n_train // self.num_inference_steps
            timesteps = (np.arange(0, self.num_inference_steps) * step_ratio).round()[::-1].astype(np.int64)
            self.custom_timesteps = False

        sigmas = self._karras(timesteps[::-1] / (n_train - 1))
        self.timesteps = torch.from_numpy(self.sigma_to_t(sigmas)).to(device=device)
        # the trailing sigma_min makes the last step return the denoised sample
        self.sigmas = torch.from_numpy(np.append(sigmas, self.config.sigma_min).astype(np.float32))
        self._step_index = None
        self._begin_index = None

    def _validate_sigmas(self, sigmas) -> np.ndarray:
        values = np.asarray(sigmas.cpu() if isinstance(sigmas, torch.Tensor) else sigmas, dtype=np.float64)
        sigma_min, sigma_max = self.config.sigma_min, self.config.sigma_max
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"`sigmas` must be a non-empty 1-D list of finite noise levels, got {sigmas!r}.")
        if np.any(np.diff(values) >= 0):
            raise ValueError(f"`sigmas` must be strictly decreasing, got {values.tolist()}.")
        if values[0] > sigma_max * (1 + 1e-6) or values[-1] < sigma_min * (1 - 1e-6):
            raise ValueError(
                f"`sigmas` must lie in [sigma_min, sigma_max] = [{sigma_min}, {sigma_max}], got {values.tolist()}."
            )
        return values.clip(sigma_min, sigma_max)

    def _validate_timesteps(self, timesteps) -> np.ndarray:
        n_train = self.config.num_train_timesteps
        values = np.asarray(timesteps.cpu() if isinstance(timesteps, torch.Tensor) else timesteps)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"`timesteps` must be a non-empty 1-D list of grid indices, got {timesteps!r}.")
        if not np.issubdtype(values.dtype, np.integer):
            if not np.all(np.mod(values, 1) == 0):
                raise ValueError(
                    f"`timesteps` must be integer indices into the {n_train}-point grid, got {values.tolist()}."
                )
            values = values.astype(np.int64)
        if np.any(np.diff(values) >= 0):
            raise ValueError(f"`timesteps` must be strictly decreasing, e.g. [22, 0]; got {values.tolist()}.")
        if values[0] >= n_train or values[-1] < 0:
            raise ValueError(
                f"`timesteps` must lie in [0, {n_train - 1}] (the scheduler's `num_train_timesteps` is {n_train}); "
                f"got {values.tolist()}."
            )
        return values.astype(np.int64)

    def index_for_timestep(
        self, timestep: float | torch.Tensor, schedule_timesteps: torch.Tensor | None = None
    ) -> int:
        """Position of `timestep` in `schedule_timesteps` (default: `self.timesteps`)."""
        if schedule_timesteps is None:
            schedule_timesteps = self.timesteps
        indices = (schedule_timesteps == torch.as_tensor(timestep).to(schedule_timesteps.device)).nonzero()
        if len(indices) == 0:
            raise ValueError(f"Timestep {timestep} is not one of the scheduler's `timesteps`; call `set_timesteps`.")
        return indices[1 if len(indices) > 1 else 0].item()

    def _init_step_index(self, timestep: float | torch.Tensor) -> None:
        self._step_index = self.index_for_timestep(timestep) if self._begin_index is None else self._begin_index

    def _current_sigma(self, timestep) -> torch.Tensor:
        if self._step_index is None:
            self._init_step_index(timestep)
        return self.sigmas[self._step_index]

    def scale_model_input(self, sample: torch.Tensor, timestep: float | torch.Tensor) -> torch.Tensor:
        """Scales the sample for the UNet by `c_in` of the current step's sigma ([`precondition_inputs`])."""
        return self.precondition_inputs(sample, self._current_sigma(timestep).to(sample.device))

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
    ) -> ConsistencyACTSchedulerOutput | tuple:
        """
        One step of consistency sampling: `x0 = f(sample, sigma)` (clipped if `clip_denoised`), then, unless this
        is the last step, `x0 + s_noise * sqrt(sigma_next^2 - sigma_min^2) * z`.

        Args:
            model_output (`torch.Tensor`):
                The UNet's output for `scale_model_input(sample, timestep)`.
            timestep (`float` or `torch.Tensor`):
                The current entry of `self.timesteps`.
            sample (`torch.Tensor`):
                The current noisy sample.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                Random generator(s) for the fresh noise.
            return_dict (`bool`, defaults to `True`):
                Whether to return a [`ConsistencyACTSchedulerOutput`] or a tuple `(prev_sample,
                pred_original_sample)`.
        """
        if isinstance(timestep, int) or (isinstance(timestep, torch.Tensor) and not torch.is_floating_point(timestep)):
            raise ValueError(
                "`step` takes one of `scheduler.timesteps` as `timestep`, not an integer index such as the loop "
                "counter of `enumerate(timesteps)`."
            )
        sigma = self._current_sigma(timestep)
        sigma_next = self.sigmas[self._step_index + 1]

        denoised = self.precondition_outputs(sample, model_output, sigma.to(sample.device))
        if self.config.clip_denoised:
            denoised = denoised.clamp(-1, 1)

        sigma_min, sigma_max = self.config.sigma_min, self.config.sigma_max
        sigma_hat = sigma_next.clamp(min=sigma_min, max=sigma_max)
        if sigma_hat > sigma_min:
            noise = randn_tensor(denoised.shape, generator=generator, device=denoised.device, dtype=denoised.dtype)
            scale = self.config.s_noise * ((sigma_hat**2 - sigma_min**2) ** 0.5).to(denoised.device)
            prev_sample = denoised + noise * scale
        else:
            # last step: nothing to re-noise (diffusers adds zero-scaled noise here; the result is the same)
            prev_sample = denoised
        self._step_index += 1

        if not return_dict:
            return prev_sample, denoised
        return ConsistencyACTSchedulerOutput(prev_sample=prev_sample, pred_original_sample=denoised)

    def add_noise(
        self,
        original_samples: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor | None = None,
        sigmas: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """
        `original_samples + sigma * noise` for any noise levels, not only grid points.

        Args:
            original_samples (`torch.Tensor`):
                Clean images.
            noise (`torch.Tensor`):
                Standard Gaussian noise of the same shape.
            timesteps (`torch.Tensor`, *optional*):
                UNet time inputs (values like those in `self.timesteps`), one per sample or one for all; converted to
                sigmas with [`t_to_sigma`].
            sigmas (`torch.Tensor` or `float`, *optional*):
                Noise levels, one per sample or one for all. Pass exactly one of `timesteps` and `sigmas`.
        """
        if (timesteps is None) == (sigmas is None):
            raise ValueError("Pass exactly one of `timesteps` (UNet time inputs) or `sigmas` (noise levels).")
        if sigmas is None:
            sigmas = self.t_to_sigma(torch.as_tensor(timesteps))
        sigmas = _broadcast_sigma(torch.as_tensor(sigmas, device=original_samples.device), original_samples)
        return original_samples + noise * sigmas.to(original_samples.dtype)

    def __len__(self) -> int:
        return self.config.num_train_timesteps


def _as_float_tensor(value, device=None) -> torch.Tensor:
    value = torch.as_tensor(value, device=device)
    return value if value.is_floating_point() else value.double()


def _broadcast_sigma(sigma: torch.Tensor | float, sample: torch.Tensor) -> torch.Tensor:
    """Reshapes a scalar or per-sample `sigma` so that it broadcasts against `sample` (batch first)."""
    sigma = _as_float_tensor(sigma, device=sample.device)
    if sigma.ndim == 0:
        return sigma
    if sigma.ndim != 1 or sigma.shape[0] not in (1, sample.shape[0]):
        raise ValueError(
            f"`sigma` must be a scalar or hold one value per sample ({sample.shape[0]}), got shape "
            f"{tuple(sigma.shape)}."
        )
    return sigma.reshape(-1, *([1] * (sample.ndim - 1)))
