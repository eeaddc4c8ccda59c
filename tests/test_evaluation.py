# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import importlib.util

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_unet
from torch import nn

from diffusers_act import ACTPipeline, ConsistencyACTScheduler
from diffusers_act.evaluation import (
    DIGITS_TRAIN_SIZE,
    FeatureStatistics,
    InceptionV3Features,
    compute_metrics,
    digits_tensors,
    extract_features,
    frechet_distance,
    generate_samples,
    inception_score,
    load_images,
    precision_recall,
    train_digits_classifier,
)


class PatchFeatures(nn.Module):
    """A small fixed feature extractor: 4x4 average pooling and a seeded random projection to 16 features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(3 * 4 * 4, 16)
        self.num_features = 16

    def forward(self, images):
        return torch.tanh(self.proj(nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)))

    def class_probabilities(self, images):
        return self(images)[:, :5].softmax(dim=1)


def image_set(n=400, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 8, 8, generator=g) * 0.5 + 0.25 + shift).clamp(0, 1)


def test_frechet_distance_hand_values():
    a = FeatureStatistics(mu=np.array([0.0]), sigma=np.array([[1.0]]))
    b = FeatureStatistics(mu=np.array([1.0]), sigma=np.array([[4.0]]))
    assert frechet_distance(a, b) == pytest.approx(2.0)  # 1^2 + 1 + 4 - 2 sqrt(4)
    var_a, var_b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 0.5])
    c = FeatureStatistics(np.zeros(3), np.diag(var_a))
    d = FeatureStatistics(np.full(3, 0.5), np.diag(var_b))
    expected = 3 * 0.25 + np.square(np.sqrt(var_a) - np.sqrt(var_b)).sum()
    assert frechet_distance(c, d) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="Feature sizes differ"):
        frechet_distance(a, c)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    extractor = PatchFeatures()
    images = image_set()
    same = compute_metrics(images, images, extractor)
    assert same["fid"] == pytest.approx(0.0, abs=1e-8)
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    small = compute_metrics(image_set(shift=0.05, seed=1), images, extractor)["fid"]
    large = compute_metrics(image_set(shift=0.2, seed=1), images, extractor)["fid"]
    resampled = compute_metrics(image_set(seed=1), images, extractor)["fid"]
    assert resampled < small < large


def test_reference_statistics_give_the_same_fid_as_images(tmp_path):
    extractor = PatchFeatures()
    fake, real = image_set(shift=0.1, seed=3), image_set()
    from_images = compute_metrics(fake, real, extractor)
    stats = FeatureStatistics.from_features(extract_features(extractor, real, batch_size=64))
    stats.save(tmp_path / "ref.npz")
    from_stats = compute_metrics(fake, FeatureStatistics.load(tmp_path / "ref.npz"), extractor)
    assert from_stats["fid"] == pytest.approx(from_images["fid"], rel=1e-9)
    assert "precision" not in from_stats  # needs reference images
    np.savez(tmp_path / "bad.npz", mean=stats.mu)
    with pytest.raises(ValueError, match="'mu' and 'sigma'"):
        FeatureStatistics.load(tmp_path / "bad.npz")


def test_inception_score_extremes():
    one_hot = torch.eye(10).repeat(50, 1)
    assert inception_score(one_hot, splits=5)[0] == pytest.approx(10.0, rel=1e-6)
    constant = torch.full((500, 10), 0.1)
    assert inception_score(constant, splits=5)[0] == pytest.approx(1.0)
    assert "inception_score" in compute_metrics(image_set(), image_set(seed=2), PatchFeatures())


def test_precision_and_recall():
    g = torch.Generator().manual_seed(0)
    real = torch.cat([torch.randn(200, 2, generator=g) * 0.1 + c for c in (-5.0, 5.0)])
    only_one_mode = torch.randn(200, 2, generator=g) * 0.1 - 5.0
    precision, recall = precision_recall(real, only_one_mode)
    assert precision > 0.95 and 0.4 < recall < 0.6  # realistic, but half the modes missing
    far_away = torch.randn(200, 2, generator=g) * 0.1 + 50
    assert precision_recall(real, far_away) == (0.0, 0.0)


def test_load_images_from_folder_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrays = rng.integers(0, 256, (3, 6, 5, 3), dtype=np.uint8)
    (tmp_path / "imgs").mkdir()
    for i, a in enumerate(arrays):
        PIL.Image.fromarray(a).save(tmp_path / "imgs" / f"{i}.png")
    np.savez(tmp_path / "batch.npz", arr_0=arrays)
    for source in (tmp_path / "imgs", tmp_path / "batch.npz"):
        images = load_images(source)
        assert images.shape == (3, 3, 6, 5)
        np.testing.assert_array_equal((images * 255).round().byte().permute(0, 2, 3, 1).numpy(), arrays)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        load_images(tmp_path / "empty")
    with pytest.raises(ValueError, match="'arr_0'"):
        np.savez(tmp_path / "stats.npz", mu=np.zeros(2))
        load_images(tmp_path / "stats.npz")


def test_generate_samples_with_balanced_labels():
    pipe = ACTPipeline(unet=tiny_unet(num_class_embeds=3), scheduler=ConsistencyACTScheduler())
    images, labels = generate_samples(pipe, 7, batch_size=4, progress=False)
    assert images.shape == (7, 3, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    again, _ = generate_samples(pipe, 7, batch_size=4, progress=False)
    assert torch.equal(images, again)


def test_digits_split_and_classifier():
    train_x, train_y = digits_tensors(16, "train")
    test_x, _ = digits_tensors(16, "test")
    assert train_x.shape == (DIGITS_TRAIN_SIZE, 1, 16, 16) and test_x.shape == (450, 1, 16, 16)
    assert 0 <= train_x.min() and train_x.max() <= 1 and set(train_y.tolist()) == set(range(10))
    state = torch.random.get_rng_state()
    model, accuracy = train_digits_classifier(epochs=10)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is untouched
    assert accuracy > 0.8
    again, _ = train_digits_classifier(epochs=10)
    assert again is model  # cached in memory
    assert extract_features(model, test_x[:5]).shape == (5, 64)


def test_digits_classifier_disk_cache_returns_the_trained_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSERS_ACT_CACHE", str(tmp_path))
    trained, accuracy = train_digits_classifier.__wrapped__(epochs=3, seed=7)  # trains and writes the cache
    assert [p.name for p in tmp_path.iterdir()] == ["digits_classifier_v1_r16_s7_e3_b64.safetensors"]
    loaded, loaded_accuracy = train_digits_classifier.__wrapped__(epochs=3, seed=7)  # reads it
    fresh, _ = train_digits_classifier.__wrapped__(epochs=3, seed=7, cache=False)  # trains again, no cache
    for other in (loaded, fresh):
        assert all(torch.equal(value, other.state_dict()[key]) for key, value in trained.state_dict().items())
    assert loaded_accuracy == accuracy


@pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is not None, reason="torch-fidelity is installed")
def test_inception_without_the_extra_says_how_to_install_it():
    with pytest.raises(ImportError, match=r"pip install -e '\.\[metrics\]'. in a clone of diffusers-act"):
        InceptionV3Features()
