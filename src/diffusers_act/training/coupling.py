# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""How a batch of images meets its noise: the grid indices n and the noise z drawn for it
([`draw_indices_and_noise`]), and the minibatch optimal-transport pairing of noise with data ([`ot_pair_noise`],
`--ot_pairing`)."""

import torch
from scipy.optimize import linear_sum_assignment

from .curricula import sample_timestep_indices


def draw_indices_and_noise(
    sigmas: torch.Tensor,
    images: torch.Tensor,
    config,
    probabilities: torch.Tensor | None = None,
    pair: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Draws, with torch's global generators on the images' device and in this order, the grid indices n (one per image,
    by `config.index_distribution`; `probabilities`: the grid's cached log-normal ones) and the noise z; with
    `pair`, z is then permuted by [`ot_pair_noise`] (which draws nothing).
    """
    indices = sample_timestep_indices(
        sigmas, images.shape[0], config.index_distribution, config.p_mean, config.p_std, probabilities=probabilities
    )
    noise = torch.randn_like(images)
    return indices, ot_pair_noise(images, noise) if pair else noise


def ot_pair_noise(images: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """
    Minibatch optimal-transport coupling (Tong et al. 2023, arXiv 2302.00482; Pooladian et al. 2023, arXiv
    2304.14772), as iLCT uses it: `noise` permuted so that image j gets the noise z_pi(j) of the permutation pi that
    minimises sum_j ||x_j - z_pi(j)||^2, found exactly by `scipy.optimize.linear_sum_assignment`. The images (and
    their labels) keep their order. The squared distances are computed on the images' device (float32) and read back
    to the host for scipy: one host-device synchronisation per call.
    """
    x, z = images.detach().flatten(1).float(), noise.detach().flatten(1).float()
    cost = x.square().sum(dim=1, keepdim=True) + z.square().sum(dim=1) - 2 * x @ z.T  # cost[j, i] = ||x_j - z_i||^2
    _, columns = linear_sum_assignment(cost.cpu().double().numpy())
    return noise[torch.as_tensor(columns, device=noise.device)]
