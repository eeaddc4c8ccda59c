# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
import importlib.util
import math

import numpy as np
import pytest
import torch
from torch import nn

from diffusers_act.training import (
    L2Distance,
    PseudoHuberDistance,
    default_huber_c,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    make_distance,
    r1_penalty,
)


def test_pseudo_huber_against_direct_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3, 8, 8)), rng.normal(size=(4, 3, 8, 8))
    c = 0.00054 * math.sqrt(3 * 8 * 8)
    assert default_huber_c((3, 8, 8)) == pytest.approx(c)
    expected = [math.sqrt(((a[i] - b[i]) ** 2).sum() + c * c) - c for i in range(4)]
    got = PseudoHuberDistance()(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        PseudoHuberDistance(c=0.5)(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
        [math.sqrt(((a[i] - b[i]) ** 2).sum() + 0.25) - 0.5 for i in range(4)],
        rtol=1e-12,
    )
    # ~ L2 norm far from 0, ~ squared norm / 2c close to 0
    tiny = torch.full((1, 3, 8, 8), 1e-6, dtype=torch.float64)
    assert PseudoHuberDistance()(tiny, torch.zeros_like(tiny)).item() == pytest.approx(192e-12 / (2 * c), rel=1e-6)


def test_l2_distance_is_per_sample_mean_square():
    a, b = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    torch.testing.assert_close(L2Distance()(a, b), ((a - b) ** 2).mean(dim=(1, 2, 3)))
    assert isinstance(make_distance("l2"), L2Distance)
    with pytest.raises(ValueError, match="Unknown `loss_type`"):
        make_distance("l1")


@pytest.mark.skipif(importlib.util.find_spec("lpips") is not None, reason="lpips is installed")
def test_lpips_without_the_extra_says_how_to_install_it():
    with pytest.raises(ImportError, match=r"pip install -e '\.\[lpips\]'. in a clone of diffusers-act"):
        make_distance("lpips")


def test_gan_losses_match_log_sigmoid_forms():
    logits = torch.tensor([-3.0, -0.5, 0.0, 2.0], dtype=torch.float64)
    d = torch.sigmoid(logits)
    torch.testing.assert_close(generator_adversarial_loss(logits), -torch.log(d))
    torch.testing.assert_close(generator_adversarial_loss(logits, "saturating"), torch.log(1 - d))
    fake, real = logits, logits.flip(0)
    torch.testing.assert_close(
        discriminator_adversarial_loss(fake, real),
        -torch.log(1 - torch.sigmoid(fake)) - torch.log(torch.sigmoid(real)),
    )
    with pytest.raises(ValueError, match="Unknown GAN loss"):
        generator_adversarial_loss(logits, "hinge")


class LinearD(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(shape, dtype=torch.float64))

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1) + 0.7


def test_r1_equals_the_analytic_gradient_norm():
    d = LinearD((3, 4, 4))
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    r1 = r1_penalty(d(x), x)
    torch.testing.assert_close(r1, torch.full((5,), d.weight.square().sum().item(), dtype=torch.float64))
    # differentiable w.r.t. D's parameters: d/dw ||w||^2 = 2w per sample
    r1.sum().backward()
    torch.testing.assert_close(d.weight.grad, 10 * d.weight.detach())

    # quadratic D(x) = sum x^2: grad = 2x, R1 = 4 ||x||^2
    y = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(r1_penalty(y.square().flatten(1).sum(1), y), 4 * y.detach().square().flatten(1).sum(1))


def test_lpips_preprocessing_with_a_stand_in_network():
    from diffusers_act.training import LPIPSDistance

    seen = []

    class StandIn(torch.nn.Module):
        def forward(self, a, b):
            seen.append((a, b))
            return (a - b).square().mean(dim=(1, 2, 3), keepdim=True)

    distance = LPIPSDistance(network=StandIn())
    a = torch.rand(2, 1, 16, 16) * 2 - 1
    b = torch.rand(2, 1, 16, 16) * 4 - 2  # a target outside [-1, 1]
    out = distance(a, b)
    x, y = seen[0]
    assert x.shape == y.shape == (2, 3, 224, 224)  # grey to 3 channels, resized to 224
    # the target is clipped first (bilinear weights may round a clipped value by an ulp)
    assert torch.equal(x[:, 0], x[:, 2]) and y.min() >= -1 - 1e-6 and y.max() <= 1 + 1e-6
    resize = lambda t: torch.nn.functional.interpolate(t, size=(224, 224), mode="bilinear", align_corners=False)  # noqa: E731
    torch.testing.assert_close(y[:, :1], resize(b.clamp(-1, 1)))
    torch.testing.assert_close(x[:, :1], resize(a))
    assert out.shape == (2,) and torch.equal(out, (x - y).square().mean(dim=(1, 2, 3)))


class FakeLPIPSPackage:
    """Stands in for the `lpips` package (not installed by the test extra: it pulls torchvision): its `LPIPS` keeps
    LPIPS's VGG16 layout (`net.sliceK` holding torchvision's `features` layers under their own numbers), with tiny
    widths, and downloads nothing; without `pnet_rand` it fails as an offline download does."""

    LAYOUT = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
    CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)

    class LPIPS(torch.nn.Module):
        def __init__(self, net="vgg", pnet_rand=False, verbose=True):
            super().__init__()
            if not pnet_rand:
                from urllib.error import URLError

                raise URLError("[Errno -3] Temporary failure in name resolution")
            self.net = torch.nn.Module()
            for k, (start, stop) in enumerate(FakeLPIPSPackage.LAYOUT, 1):
                part = torch.nn.Sequential()
                for x in range(start, stop):
                    layer = torch.nn.Conv2d(2, 2, 3) if x in FakeLPIPSPackage.CONVS else torch.nn.ReLU()
                    part.add_module(str(x), layer)
                setattr(self.net, f"slice{k}", part)

        def forward(self, a, b):
            return (a - b).square().mean(dim=(1, 2, 3), keepdim=True)


def test_lpips_weights_load_a_local_vgg16_and_offline_without_them_says_how(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lpips", FakeLPIPSPackage)
    torch.manual_seed(0)
    vgg = {f"features.{x}.{p}": torch.randn(2, 2, 3, 3) if p == "weight" else torch.randn(2)
           for x in FakeLPIPSPackage.CONVS for p in ("weight", "bias")}  # fmt: skip
    vgg["classifier.0.weight"] = torch.randn(3, 3)  # torchvision's file also holds the classifier: ignored
    torch.save(vgg, tmp_path / "vgg16.pth")
    distance = make_distance("lpips", lpips_weights=str(tmp_path / "vgg16.pth"))
    net = distance.lpips.net
    assert torch.equal(getattr(net.slice2, "5").weight, vgg["features.5.weight"])
    assert torch.equal(getattr(net.slice5, "28").bias, vgg["features.28.bias"])
    with pytest.raises(OSError, match=r"LPIPS needs torchvision's ImageNet VGG16 weights \(vgg16-397923af.pth, 528 "
                                      r"MB\), which could not be downloaded .*pass --lpips_weights PATH"):  # fmt: skip
        make_distance("lpips")
    del vgg["features.28.bias"]
    torch.save(vgg, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"is not torchvision's VGG16 .*\['features.28.bias'\] are missing"):
        make_distance("lpips", lpips_weights=str(tmp_path / "partial.pth"))
