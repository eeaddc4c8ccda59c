# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The Hub side of a run: the model card written beside a saved pipeline, and the upload (shared by the training
script and the checkpoint converter). Tokens are passed through, never written."""

import re
from pathlib import Path

import jinja2
from diffusers.utils.hub_utils import load_or_create_model_card, populate_model_card
from huggingface_hub import EvalResult, ModelCard, ModelCardData, create_repo, get_token, upload_folder

from .config import TrainingError

# the part of the card a run writes; on an existing card only this part is replaced, the rest is kept
CARD_START, CARD_END = "<!-- diffusers-act: start -->", "<!-- diffusers-act: end -->"

# Jinja templates, the card rendered by huggingface_hub's `ModelCard.from_template`
MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ section }}
"""

MODEL_CARD_SECTION = """<!-- diffusers-act: start -->
{{ conditioning }} one-step image generator ({{ num_params }}M parameters, {{ resolution }}x{{ resolution }}) trained
with Adversarial Consistency Training (ACT, Kong et al., arXiv 2311.14097) by
diffusers-act on {{ dataset }}, {{ recipe }}, {{ iterations }}
iterations (final grid N = {{ final_num_timesteps }}), precision: {{ precision }}.
{% if classes %}
Classes (`class_labels` takes the ids or the names): {{ classes }}.
{% endif %}
## Use

With diffusers-act installed (it is not on PyPI yet: `pip install -e .` in a clone of its repository, or
`pip install` of a wheel built there with `pip wheel --no-deps .`), the pipeline loads with diffusers' own loader:

```py
import diffusers_act  # lets DiffusionPipeline load ACT pipelines with this package's classes
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("{{ repo_id }}")  # an ACTPipeline
images = {{ call }}.images        # one step
images = pipe(num_inference_steps=2).images     # two steps
```

Without it, diffusers runs the pipeline and scheduler code saved in this repo (`pipeline_act.py`, `editing.py`,
`scheduler/scheduling_consistency_act.py`; read them first):

```py
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("{{ repo_id }}", custom_pipeline="pipeline_act", trust_remote_code=True)
```

Weights are safetensors only.

## Samples

![samples](samples.png)

Fixed seed; top: 1 step, bottom: 2 steps.

## Training

{{ model }}. The network shipped is {{ shipped }}.

Flags given on the command line:

{{ flags }}

The discriminator is in `discriminator/` (for fine-tuning); sampling does not need it.

## Evaluation

{{ evaluation }}
<!-- diffusers-act: end -->"""


def write_model_card(
    folder: str | Path,
    *,
    dataset: str,
    dataset_id: str | None,
    recipe: str,
    model: str,
    shipped: str,
    class_conditional: bool,
    resolution: int,
    num_params: int,
    iterations: int,
    final_num_timesteps: int,
    precision: str,
    flags: dict,
    metrics: dict | None = None,
    metrics_note: str = "",
    repo_id: str | None = None,
    title: str | None = None,
    base_model: str | None = None,
    class_names: dict[int, str] | None = None,
) -> Path:
    """
    Writes `README.md` with Hub metadata (`library_name: diffusers`, `pipeline_tag`, tags, the dataset) into a saved
    pipeline folder. An existing card is updated, not overwritten (diffusers' `load_or_create_model_card`): its text
    outside the part a run writes is kept, and its tags and datasets are extended. `title` (default: the folder's
    name) heads a new card; `repo_id` (a Hub id or a local folder) is what its usage snippets load. With `metrics`
    the card carries a `model-index` (the Hub's evaluation results), with `base_model` (a Hub id) the model it was
    fine-tuned from.
    """
    folder = Path(folder)
    readme = folder / "README.md"
    def flag(name: str, value: object) -> str:  # as it is typed: booleans as --name / --no-name
        if isinstance(value, bool):
            return f"--{name}" if value else f"--no-{name}"
        return f"--{name} " + (" ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))

    listed = "\n".join(f"- `{flag(k, v)}`" for k, v in sorted(flags.items())) or "- (none)"
    if metrics:
        evaluation = metrics_note + "\n\n" + "\n".join(f"- {name}: {value:.4g}" for name, value in metrics.items())
    else:
        evaluation = "Not measured (train with `--fid_steps`, or run `scripts/evaluate.py`)."
    fields = dict(
        conditioning="A class-conditional" if class_conditional else "An unconditional",
        num_params=f"{num_params / 1e6:.1f}",
        resolution=resolution,
        dataset=f"[{dataset}](https://huggingface.co/datasets/{dataset_id})" if dataset_id else f"**{dataset}**",
        recipe=recipe,
        iterations=iterations,
        final_num_timesteps=final_num_timesteps,
        precision=precision,
        repo_id=repo_id or "path/to/this/folder",
        call="pipe(batch_size=4, class_labels=0)" if class_conditional else "pipe(batch_size=4)",  # any class count
        model=model,
        shipped=shipped,
        flags=listed,
        evaluation=evaluation,
        classes=", ".join(f"{i} `{name}`" for i, name in sorted((class_names or {}).items())),
    )
    section = jinja2.Template(MODEL_CARD_SECTION).render(**fields)
    if readme.is_file():
        card = load_or_create_model_card(str(readme))  # a path to a file: read, never fetched
        pattern = re.compile(re.escape(CARD_START) + ".*?" + re.escape(CARD_END), flags=re.S)
        text = pattern.sub(lambda _: section, card.text) if pattern.search(card.text) else f"{card.text}\n{section}\n"
        card = ModelCard(f"---\n{card.data.to_yaml()}\n---\n{text}")
    else:
        card = ModelCard.from_template(
            ModelCardData(license="apache-2.0"),
            template_str=MODEL_CARD_TEMPLATE,
            title=title or folder.resolve().name,
            section=section,
        )
    # the Hub has no class-conditional task; class-conditional generators (DiT, MAR) are listed under this one
    card.data.pipeline_tag = card.data.pipeline_tag or "unconditional-image-generation"
    if dataset_id and dataset_id not in (card.data.datasets or []):
        card.data.datasets = [*(card.data.datasets or []), dataset_id]
    kind = "class-conditional-image-generation" if class_conditional else "unconditional-image-generation"
    tags = ["diffusers", "diffusers-act", "act", "consistency-model", "one-step", "image-generation", kind]
    card = populate_model_card(card, tags=[tag for tag in tags if tag not in (card.data.tags or [])])
    if base_model:
        card.data.base_model = base_model
    if metrics:  # the Hub shows these as the model's evaluation results
        card.data.model_name = card.data.model_name or title or folder.resolve().name
        card.data.eval_results = [
            EvalResult(
                task_type="unconditional-image-generation", dataset_type=dataset_id or "imagefolder",
                dataset_name=dataset, metric_type=name, metric_name=name.replace("_", " "), metric_value=float(value),
            )  # fmt: skip
            for name, value in metrics.items()
        ]
    card.save(readme)
    return readme


def describe_run(run, config, global_batch: int, fine_tuned_discriminator: bool | None = None) -> tuple[str, str]:
    """The recipe and the model of a run in words, for the log and the model card. `fine_tuned_discriminator` is
    None for a run that starts from random weights, else whether the pretrained discriminator was loaded too."""
    recipe = (f"preset `{run.preset}`" if run.preset else "no preset: the improved recipe for your own data") + (
        f", global batch {global_batch}, curricula N(k) `{config.num_timesteps_schedule}` and mu(k) "
        f"`{config.target_ema_schedule}`"
    )
    if fine_tuned_discriminator is not None:
        parts = "generator and discriminator" if fine_tuned_discriminator else "generator"
        model = f"fine-tuned from {run.pretrained_model_name_or_path} ({parts})"
    elif run.model_config_name_or_path:
        model = f"UNet config from {run.model_config_name_or_path}"
    else:
        model = f"the `{run.preset}` preset's UNet" if run.preset else (
            f"a UNet sized for {'the latents of ' * bool(run.vae_name_or_path)}{run.resolution}x{run.resolution} "
            "images (`auto_unet_config`)"
        )  # fmt: skip
    if run.vae_name_or_path:
        subfolder = f" ({run.vae_subfolder})" if run.vae_subfolder else ""
        model += f", in the latent space of the VAE {run.vae_name_or_path}{subfolder}"
    return recipe, model


def run_card_fields(run, config, trainer, data, description: tuple[str, str], **fields) -> dict:
    """The [`write_model_card`] arguments of a finished run (`fields` adds or replaces some: iterations, metrics,
    precision, repo_id, title)."""
    source, name = run.pretrained_model_name_or_path, run.dataset_name
    hub_dataset = name if name and not Path(name).exists() else None  # the card links Hub ids only
    local = f"a local {'dataset' if name else 'image'} folder" if name or run.train_data_dir else "scikit-learn digits"
    shipped = "the target network"
    if config.use_ema:
        decay = trainer.ema.get_decay(trainer.ema.optimization_step)
        shipped = f"the evaluation EMA (decay {config.ema_decay}, {config.ema_warmup}; {decay:.5g} at its last update)"
    return dict(
        dataset=hub_dataset or local,
        dataset_id=hub_dataset,
        recipe=description[0],
        model=f"Model: {description[1]}",
        shipped=shipped,
        class_conditional=data.conditional,
        resolution=run.resolution,
        num_params=sum(p.numel() for p in trainer.target_unet.parameters()),  # the shipped network's shape
        final_num_timesteps=config.final_num_timesteps,
        flags=run.explicit,
        metrics_note=f"Measured at the end of training on {run.fid_num_samples} one-step samples against the "
        f"training images, with {run.fid_feature_extractor} features:",
        base_model=source if source and not Path(source).exists() else None,
        class_names=data.id2label,
    ) | fields


def prepare_hub_repo(repo_id: str, token: str | None = None, private: bool = False) -> str:
    """
    Checks, before any training, that a run can upload at its end: a token is at hand (`token`, or the one `hf auth
    login` saved) and the repo exists or can be created. Returns the full repo id.
    """
    if (token or get_token()) is None:
        raise ValueError("--push_to_hub needs a Hub token: run 'hf auth login', or pass --hub_token.")
    try:
        return create_repo(repo_id, exist_ok=True, private=private, token=token).repo_id
    except Exception as error:
        raise ValueError(
            f"--push_to_hub: cannot create or reach the Hub repo {repo_id!r} ({type(error).__name__}: {error}). "
            "Check --hub_model_id, the token's write access and the network, or train without --push_to_hub."
        ) from error


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    ignore_patterns: list[str] | None = None,
    commit_message: str = "Upload ACT model trained with diffusers-act",
) -> str:
    """
    Creates (or reuses) the Hub repo and uploads `folder` to it; returns the repo id. On failure the error says that
    the local folder is intact and how to retry.
    """
    try:
        repo_id = create_repo(repo_id, exist_ok=True, private=private, token=token).repo_id
        upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            ignore_patterns=ignore_patterns,
            token=token,
            commit_message=commit_message,
        )
    except Exception as error:
        raise TrainingError(
            f"Uploading {folder} to the Hub repo {repo_id!r} failed: {type(error).__name__}: {error}. The model is "
            f"saved and intact in {folder}. To retry: huggingface_hub.upload_folder(repo_id={repo_id!r}, "
            f"folder_path={str(folder)!r}, ignore_patterns={ignore_patterns!r})"
        ) from error
    return repo_id
