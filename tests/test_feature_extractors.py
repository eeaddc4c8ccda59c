# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The transformers feature extractors (FD_DINOv2, CLIP features), offline: tiny randomly initialised models saved to
folders stand in for the Hub models, and the preprocessing is checked against `transformers`' own image processors
built from stored copies of the published processor configs (tests/data: `preprocessor_config.json` of
facebook/dinov2-large, and of the openai/clip-vit models, whose values are the same for base and large)."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_unet

from diffusers_act import ConsistencyACTScheduler
from diffusers_act.evaluation import (
    TRANSFORMERS_FEATURE_EXTRACTORS,
    CLIPFeatures,
    DINOv2Features,
    FeatureStatistics,
    compute_metrics,
    extract_features,
)
from diffusers_act.training import SampleEvaluator
from diffusers_act.training.config import build_parser

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
PROCESSOR_CONFIGS = {
    "dinov2": ("dinov2_large_preprocessor_config.json", "BitImageProcessor"),
    "clip": ("clip_vit_preprocessor_config.json", "CLIPImageProcessor"),
}
PIL_RESAMPLE = {3: "bicubic"}  # PILImageResampling.BICUBIC, the "resample" of both configs


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Folders of tiny random DINOv2 and CLIP vision models, saved as the Hub ones are (`save_pretrained`)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("feature_models")
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    # DINOv2's position embeddings are for 518 px and interpolated to 224; the tiny one's (28 px) are too
    Dinov2Model(Dinov2Config(**common, image_size=28, patch_size=14)).save_pretrained(folder / "dinov2")
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(**common, image_size=224, patch_size=32, projection_dim=16)
    ).save_pretrained(folder / "clip")
    return {"dinov2": str(folder / "dinov2"), "clip": str(folder / "clip")}


@pytest.fixture(scope="module")
def extractors(tiny_models):
    return {name: cls(tiny_models[name]) for name, cls in TRANSFORMERS_FEATURE_EXTRACTORS.items()}


def processor(name: str, **overrides):
    """transformers' image processor from the stored published config (its PIL variant where transformers has one,
    so that no torchvision is needed)."""
    import transformers

    file, class_name = PROCESSOR_CONFIGS[name]
    cls = getattr(transformers, f"{class_name}Pil", None) or getattr(transformers, class_name)
    return cls.from_dict(json.loads((DATA / file).read_text()), **overrides)


def processed(name: str, images: torch.Tensor, **overrides) -> torch.Tensor:
    """`pixel_values` of transformers' processor for images in [0, 1] (given to it as uint8 HWC arrays)."""
    arrays = (images * 255).round().byte().permute(0, 2, 3, 1).numpy()
    out = processor(name, **overrides)(list(arrays), return_tensors="np")["pixel_values"]
    return torch.from_numpy(np.asarray(out))


def smooth_images(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random images without detail finer than a few pixels (so that resampling does not overshoot [0, 1])."""
    coarse = torch.rand(n, 3, 5, 7, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)


@pytest.mark.parametrize("name", ["dinov2", "clip"])
def test_conventions_match_the_published_processor_configs_except_the_crop(name):
    config = json.loads((DATA / PROCESSOR_CONFIGS[name][0]).read_text())
    cls = TRANSFORMERS_FEATURE_EXTRACTORS[name]
    assert list(cls.image_mean) == config["image_mean"] and list(cls.image_std) == config["image_std"]
    assert cls.resample == PIL_RESAMPLE[config["resample"]] and cls.image_size == config["crop_size"]["height"] == 224
    assert config["rescale_factor"] == pytest.approx(1 / 255)
    assert config["do_center_crop"]  # the processors crop; FD_DINOv2 (EDM2) resizes the whole image instead
    assert cls.default_model == {"dinov2": "facebook/dinov2-large", "clip": "openai/clip-vit-large-patch14"}[name]
    assert cls.metric_name == {"dinov2": "fd_dinov2", "clip": "fd_clip"}[name]


@pytest.mark.parametrize("name", ["dinov2", "clip"])
def test_preprocessing_is_the_processors_without_the_crop(name, extractors):
    extractor = extractors[name]
    no_crop = dict(do_center_crop=False, size={"height": 224, "width": 224})  # the processor, told not to crop
    # at 224x224 nothing is resized: rescaling (1/255) and normalisation agree to float precision
    square = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    ours = extractor.preprocess(square)
    assert ours.shape == (2, 3, 224, 224) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, processed(name, square, **no_crop), rtol=0, atol=1e-5)

    # a non-square image is resized as a whole to 224x224 (bicubic, antialiased), as the processor does when asked
    # not to crop; its PIL resize rounds to 8 bits in between, hence a tolerance of about one 8-bit level
    # (rounding alone gives a mean error of 1/4 level)
    wide = smooth_images(2, 40, 60)
    ours = extractor.preprocess(wide)
    whole = processed(name, wide, **no_crop)
    level = 1 / 255 / min(extractor.image_std)
    assert (ours - whole).abs().max() < 1.5 * level and (ours - whole).abs().mean() < 0.4 * level
    # the published processor (shortest edge to 256 or 224, then a centre crop) sees something else
    default = processed(name, wide)
    assert default.shape == ours.shape and (ours - default).abs().mean() > 20 * (ours - whole).abs().mean()

    # grey images are repeated to 3 channels; values are rounded to 8 bits (as saved samples are)
    grey = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(extractor.preprocess(grey), extractor.preprocess(grey.repeat(1, 3, 1, 1)))
    assert torch.equal(extractor.preprocess(grey), extractor.preprocess((grey * 255).round() / 255))
    with pytest.raises(ValueError, match="1 or 3"):
        extractor.preprocess(torch.rand(2, 4, 16, 16))


def test_features_are_the_models_class_token_and_image_embedding(tiny_models, extractors):
    from transformers import CLIPVisionModelWithProjection, Dinov2Model

    images = torch.rand(5, 3, 20, 12, generator=torch.Generator().manual_seed(3))
    dinov2, clip = extractors["dinov2"], extractors["clip"]
    features = extract_features(dinov2, images, batch_size=2)  # in batches, on the model's device
    assert features.dtype == torch.float64 and features.shape == (5, dinov2.num_features) == (5, 32)
    with torch.no_grad():
        model = Dinov2Model.from_pretrained(tiny_models["dinov2"]).eval()
        output = model(pixel_values=dinov2.preprocess(images))
    # the class token after the final layer norm: pooler_output is last_hidden_state[:, 0]
    torch.testing.assert_close(features, output.last_hidden_state[:, 0].double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(extract_features(dinov2, images, batch_size=5), features, rtol=1e-5, atol=1e-6)

    features = extract_features(clip, images, batch_size=3)
    assert features.dtype == torch.float64 and features.shape == (5, clip.num_features) == (5, 16)
    with torch.no_grad():
        model = CLIPVisionModelWithProjection.from_pretrained(tiny_models["clip"]).eval()
        pooled = model.vision_model(pixel_values=clip.preprocess(images)).pooler_output
        expected = model.visual_projection(pooled)  # the projected image embedding, not L2-normalised
    torch.testing.assert_close(features, expected.double(), rtol=1e-5, atol=1e-6)


def test_a_model_that_cannot_be_loaded_names_the_repo_and_the_fix():
    # the tests run with HF_HUB_OFFLINE=1 (conftest): a model that is not cached cannot be downloaded
    with pytest.raises(
        OSError,
        match=r"'no-such-user/no-such-dinov2' .*`hf download no-such-user/no-such-dinov2`.*--feature_extractor_model",
    ):
        DINOv2Features("no-such-user/no-such-dinov2")
    with pytest.raises(OSError, match="for the clip feature extractor"):
        CLIPFeatures("no-such-user/no-such-clip")


def test_compute_metrics_reports_the_distance_under_its_name(extractors):
    real, fake = smooth_images(12, 16, 16, seed=4), smooth_images(12, 16, 16, seed=5)
    same = compute_metrics(real, real, extractors["dinov2"])
    assert set(same) == {"fd_dinov2", "precision", "recall"}  # no class probabilities: no Inception Score
    assert same["fd_dinov2"] == pytest.approx(0.0, abs=1e-8)
    other = compute_metrics(fake, real, extractors["clip"])
    assert set(other) == {"fd_clip", "precision", "recall"} and other["fd_clip"] > 0


def write_pngs(folder: Path, images: torch.Tensor) -> str:
    folder.mkdir()
    for i, image in enumerate((images * 255).round().byte().permute(0, 2, 3, 1).numpy()):
        PIL.Image.fromarray(image).save(folder / f"{i:03d}.png")
    return str(folder)


def load_evaluate_script():
    spec = importlib.util.spec_from_file_location("evaluate_script_features", ROOT / "scripts" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_script_reports_fd_dinov2_and_fd_clip(tmp_path, tiny_models, extractors):
    evaluate = load_evaluate_script()
    samples = write_pngs(tmp_path / "samples", smooth_images(8, 16, 16, seed=6))
    reference = write_pngs(tmp_path / "reference", smooth_images(8, 16, 16, seed=7))
    common = ["--samples", samples, "--batch_size", "4", "--output", str(tmp_path / "m.json")]
    result = evaluate.main([
        *common, "--reference", reference, "--feature_extractor", "dinov2",
        "--feature_extractor_model", tiny_models["dinov2"], "--save_reference_stats", str(tmp_path / "ref.npz"),
    ])  # fmt: skip
    assert json.loads((tmp_path / "m.json").read_text()) == result
    assert result["feature_extractor"] == "dinov2" and result["feature_extractor_model"] == tiny_models["dinov2"]
    assert "fid" not in result and math.isfinite(result["fd_dinov2"]) and result["fd_dinov2"] > 0
    assert {"precision", "recall"} <= set(result)
    # the same number as the library's, and from the saved reference statistics (32-d: the tiny model's)
    direct = compute_metrics(evaluate.load_images(samples), evaluate.load_images(reference), extractors["dinov2"])
    assert result["fd_dinov2"] == pytest.approx(direct["fd_dinov2"], rel=1e-9)
    assert FeatureStatistics.load(tmp_path / "ref.npz").mu.shape == (32,)
    from_stats = evaluate.main([
        *common, "--reference", str(tmp_path / "ref.npz"), "--feature_extractor", "dinov2",
        "--feature_extractor_model", tiny_models["dinov2"],
    ])  # fmt: skip
    assert from_stats["fd_dinov2"] == pytest.approx(result["fd_dinov2"], rel=1e-9)
    # statistics of other features, or a model flag for an extractor without one, are errors before any work
    with pytest.raises(ValueError, match="32-d features, but --feature_extractor clip makes 16-d"):
        evaluate.main([*common, "--reference", str(tmp_path / "ref.npz"), "--feature_extractor", "clip",
                       "--feature_extractor_model", tiny_models["clip"]])  # fmt: skip
    with pytest.raises(ValueError, match="--feature_extractor_model is for --feature_extractor dinov2 or clip"):
        evaluate.main([*common, "--reference", reference, "--feature_extractor_model", tiny_models["clip"]])

    clip = evaluate.main([
        *common, "--reference", reference, "--feature_extractor", "clip", "--feature_extractor_model",
        tiny_models["clip"],
    ])  # fmt: skip
    assert "fid" not in clip and "fd_dinov2" not in clip and math.isfinite(clip["fd_clip"])


def test_sample_evaluator_during_training(tiny_models):
    reference = smooth_images(12, 8, 8, seed=8)
    evaluator = SampleEvaluator(
        reference, "dinov2", num_samples=8, resolution=8, feature_extractor_model=tiny_models["dinov2"]
    )
    metrics = evaluator(tiny_unet(), ConsistencyACTScheduler())
    assert set(metrics) == {"fd_dinov2", "precision", "recall"} and metrics["fd_dinov2"] > 0
    assert evaluator(tiny_unet(), ConsistencyACTScheduler()) == metrics  # fixed seed: the same samples
    # the training flag takes the new names
    for name in ("dinov2", "clip"):
        assert build_parser().parse_args(["--fid_feature_extractor", name]).fid_feature_extractor == name
