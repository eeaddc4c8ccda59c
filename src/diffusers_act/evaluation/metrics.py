# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""Sample-quality metrics on features: FID, Inception Score, improved precision and recall.

The metrics work on features from any extractor (Inception through the `metrics` extra, or a plugged-in module),
and FID also on precomputed statistics (`mu`, `sigma`), e.g. a reference batch of the guided-diffusion
repository. The formulas on features are written here (each a few lines, checked against hand values in the tests)
rather than taken from torchmetrics (which accepts a custom feature extractor too) because its image metrics
install torch-fidelity and so torchvision, a multi-GB CUDA build on CPU machines, which the core and the tests avoid.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class FeatureStatistics:
    """Mean and covariance of features (float64), as stored in `.npz` reference files (`mu`, `sigma`)."""

    mu: np.ndarray
    sigma: np.ndarray

    @classmethod
    def from_features(cls, features: torch.Tensor | np.ndarray) -> "FeatureStatistics":
        x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"Need a (num_samples >= 2, num_features) array of features, got shape {x.shape}.")
        return cls(mu=x.mean(axis=0), sigma=np.cov(x, rowvar=False))

    @classmethod
    def load(cls, path: str | Path) -> "FeatureStatistics":
        """Reads `mu` and `sigma` from an `.npz` (ours, pytorch-fid's and guided-diffusion's reference batches)."""
        with np.load(path) as data:
            if "mu" not in data or "sigma" not in data:
                raise ValueError(f"{path} holds {sorted(data.files)}; reference statistics need 'mu' and 'sigma'.")
            return cls(mu=data["mu"].astype(np.float64), sigma=data["sigma"].astype(np.float64))

    def save(self, path: str | Path) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma)


def frechet_distance(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """
    `||mu_a - mu_b||^2 + tr(sigma_a + sigma_b - 2 (sigma_a sigma_b)^(1/2))` (Heusel et al. 2017). The trace of the
    matrix square root is the sum of the square roots of the eigenvalues of `sigma_a sigma_b` (real and >= 0 up to
    rounding for covariance matrices), which avoids an explicit `sqrtm`.
    """
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"Feature sizes differ: {a.mu.shape[0]} vs {b.mu.shape[0]}; use the same extractor.")
    eigenvalues = np.linalg.eigvals(a.sigma @ b.sigma)
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0, None)).sum()
    fid = np.square(a.mu - b.mu).sum() + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_sqrt
    return float(max(fid, 0.0))


def inception_score(probs: torch.Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """
    `exp(E_x KL(p(y|x) || p(y)))` over `splits` chunks (Salimans et al. 2016): mean and standard deviation.

    Args:
        probs: Class probabilities of the samples, shape `(num_samples, num_classes)`.
    """
    p = np.asarray(probs.detach().cpu() if isinstance(probs, torch.Tensor) else probs, np.float64)
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        kl = (chunk * (np.log(chunk + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk_size: int = 1024
) -> tuple[float, float]:
    """
    Improved precision and recall (Kynkaanniemi et al. 2019): precision is the fraction of generated samples inside
    the real manifold (the union of balls around each real feature reaching its k-th nearest real neighbour);
    recall is the fraction of real samples inside the generated manifold.
    """
    real, fake = real.double(), fake.double()
    return _coverage(real, fake, k, chunk_size), _coverage(fake, real, k, chunk_size)


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    radii = []
    for chunk in x.split(chunk_size):
        # the nearest point of a sample is itself (distance 0), so the k-th neighbour is the (k+1)-th smallest
        radii.append(torch.cdist(chunk, x).kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(manifold: torch.Tensor, queries: torch.Tensor, k: int, chunk_size: int) -> float:
    if manifold.shape[0] <= k:
        raise ValueError(f"Need more than k={k} samples per set, got {manifold.shape[0]}.")
    radii = _kth_neighbour_radii(manifold, k, chunk_size)
    inside = [(torch.cdist(chunk, manifold) <= radii).any(dim=1) for chunk in queries.split(chunk_size)]
    return torch.cat(inside).double().mean().item()
