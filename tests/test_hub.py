# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The model card a run writes (diffusers' `load_or_create_model_card` / `populate_model_card`)."""

import re

import pytest
from conftest import tiny_unet
from huggingface_hub import ModelCard

from diffusers_act import ACTPipeline, ConsistencyACTScheduler
from diffusers_act.training.hub import CARD_END, CARD_START, write_model_card

FIELDS = dict(
    dataset="ylecun/mnist",
    dataset_id="ylecun/mnist",
    recipe="the digits preset",
    model="Model: a tiny UNet",
    shipped="the target network",
    class_conditional=True,
    resolution=16,
    num_params=1_234_567,
    iterations=10,
    final_num_timesteps=20,
    precision="fp32",
    flags={"max_train_steps": 10},
    repo_id="someone/act-digits",
)


def words(text: str) -> str:
    """`text` with every run of whitespace (Markdown's line wrapping) as one space."""
    return " ".join(text.split())


def test_new_card_metadata_links_the_dataset_and_tags_the_conditioning(tmp_path):
    card = ModelCard.load(write_model_card(tmp_path, **FIELDS))
    assert card.data.library_name == "diffusers" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "unconditional-image-generation"
    assert card.data.datasets == ["ylecun/mnist"]
    assert {"diffusers-act", "consistency-model", "class-conditional-image-generation"} <= set(card.data.tags)
    assert "unconditional-image-generation" not in card.data.tags
    assert "[ylecun/mnist](https://huggingface.co/datasets/ylecun/mnist)" in card.text
    # both documented ways to load it
    assert 'DiffusionPipeline.from_pretrained("someone/act-digits")' in card.text
    assert 'custom_pipeline="pipeline_act", trust_remote_code=True' in card.text
    unconditional = ModelCard.load(write_model_card(tmp_path / "u", **{**FIELDS, "class_conditional": False}))
    assert "unconditional-image-generation" in unconditional.data.tags
    assert "class-conditional-image-generation" not in unconditional.data.tags


def test_an_existing_card_is_updated_not_overwritten(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nlicense: mit\ntags:\n- mine\ndatasets:\n- someone/extra\n---\n\n# My model\n\nMy notes.\n"
    )
    write_model_card(tmp_path, **FIELDS)
    write_model_card(tmp_path, **{**FIELDS, "iterations": 30})  # a second run replaces only its own part
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.license == "mit" and card.data.datasets == ["someone/extra", "ylecun/mnist"]
    assert card.data.tags[0] == "mine" and len(card.data.tags) == len(set(card.data.tags))
    assert card.text.startswith("\n# My model\n\nMy notes.\n")
    assert card.text.count(CARD_START) == card.text.count(CARD_END) == 1
    assert "30 iterations" in words(card.text) and "10 iterations" not in words(card.text)


def test_evaluated_runs_carry_a_model_index_and_fine_tuned_ones_their_base_model(tmp_path):
    metrics = {"fid": 25.39, "precision": 0.53, "recall": 0.87}
    card = ModelCard.load(write_model_card(tmp_path, **FIELDS, metrics=metrics, base_model="someone/act-base"))
    assert card.data.base_model == "someone/act-base"
    results = {r.metric_type: r for r in card.data.eval_results}
    assert {k: r.metric_value for k, r in results.items()} == metrics
    assert {(r.task_type, r.dataset_type, r.dataset_name) for r in results.values()} == {
        ("unconditional-image-generation", "ylecun/mnist", "ylecun/mnist")
    }
    assert "model-index:" in (tmp_path / "README.md").read_text()
    plain = ModelCard.load(write_model_card(tmp_path / "p", **FIELDS))  # not evaluated, not fine-tuned
    assert plain.data.eval_results is None and plain.data.base_model is None
    assert "model-index" not in (tmp_path / "p" / "README.md").read_text()


def test_the_card_names_no_package_index_or_repository_that_does_not_exist(tmp_path):
    text = ModelCard.load(write_model_card(tmp_path, **FIELDS)).text
    assert "pip install diffusers-act" not in text and "github.com" not in text
    assert "pip install -e ." in text  # what the README says: from a clone (or a wheel built there)


OTHER_RUN = dict(
    FIELDS, resolution=32, num_params=27_483_011, iterations=300_000, final_num_timesteps=150, precision="bf16",
    class_conditional=False, metrics={"fid": 6.0123, "precision": 0.6789}, metrics_note="Measured at the end.",
)  # fmt: skip


@pytest.mark.parametrize("fields", [FIELDS, OTHER_RUN], ids=["digits-like", "cifar10-like"])
def test_the_card_holds_the_numbers_of_its_run(tmp_path, fields):
    text = words(ModelCard.load(write_model_card(tmp_path, **fields)).text)
    resolution = fields["resolution"]
    assert f"{fields['num_params'] / 1e6:.1f}M parameters" in text
    assert f"{resolution}x{resolution}" in text and f"{fields['iterations']} iterations" in text
    assert f"N = {fields['final_num_timesteps']}" in text and f"precision: {fields['precision']}" in text
    for name, value in (fields.get("metrics") or {}).items():
        assert f"{name}: {value:.4g}" in text, name
    if not fields.get("metrics"):
        assert "Not measured" in text


def test_the_flags_are_listed_as_they_are_typed(tmp_path):
    flags = {"use_ema": True, "class_conditional": False, "discriminator_block_out_channels": (8, 16), "seed": 3}
    text = ModelCard.load(write_model_card(tmp_path, **{**FIELDS, "flags": flags})).text
    listed = re.findall(r"^- `(--[^`]*)`$", text, flags=re.M)
    assert sorted(listed) == sorted(
        ["--use_ema", "--no-class_conditional", "--discriminator_block_out_channels 8 16", "--seed 3"]
    )


@pytest.mark.parametrize("num_classes", [None, 1, 3])
def test_the_cards_snippet_samples_a_model_of_any_class_count(tmp_path, num_classes):
    model = tmp_path / "model"
    unet = tiny_unet(in_channels=1, out_channels=1, num_class_embeds=num_classes)
    ACTPipeline(unet=unet, scheduler=ConsistencyACTScheduler()).save_pretrained(model)
    fields = {**FIELDS, "class_conditional": num_classes is not None, "repo_id": str(model)}
    snippet = re.findall(r"```py\n(.*?)```", ModelCard.load(write_model_card(model, **fields)).text, flags=re.S)[0]
    namespace = {}
    exec(snippet, namespace)
    assert len(namespace["images"]) == 1 and namespace["images"][0].size == (8, 8)
