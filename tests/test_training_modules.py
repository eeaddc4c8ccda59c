# Copyright 2026 The diffusers-act authors. Licensed under the Apache License, Version 2.0.
"""The reusable pieces of a run in `diffusers_act.training`: the trainer's builder and state, data, checkpoints and
monitoring."""

import copy
import json
import math
import shutil

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from conftest import tiny_unet
from diffusers.training_utils import EMAModel

import diffusers_act.training.checkpoints as checkpoints_module
from diffusers_act import ACTDiscriminator, ACTPipeline
from diffusers_act.presets import auto_unet_config, unet_config
from diffusers_act.training import (
    ACTConfig,
    ACTTrainer,
    CheckpointManager,
    JsonlLog,
    complete_checkpoints,
    consistency_function,
    make_dataloader,
    make_transform,
    resumable_batches,
    sample_grid,
    sample_timestep_indices,
)
from diffusers_act.training.batches import DeviceBatches, decode_dataset, use_data_on_device
from diffusers_act.training.data import image_channels, load_training_dataset

pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def images(batch=4, seed=0):
    return torch.rand(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def small_config(**overrides):
    return ACTConfig(**{"total_steps": 10, "s0": 4, "s1": 8, "gp_interval": 1, **overrides})


def test_build_makes_what_the_config_asks_for():
    torch.manual_seed(0)
    config = small_config(learning_rate=2e-3, adam_beta1=0.5, use_ema=True, ema_decay=0.99, augment=True)
    trainer = ACTTrainer.build(tiny_unet(), config, Accelerator())
    assert isinstance(trainer.discriminator, ACTDiscriminator) and isinstance(trainer.ema, EMAModel)
    assert trainer.ema.decay == 0.99 and trainer.augment is not None
    for optimizer in (trainer.optimizer, trainer.discriminator_optimizer):
        group = optimizer.param_groups[0]
        assert isinstance(optimizer.optimizer, torch.optim.RAdam) and group["betas"] == (0.5, 0.99)
        assert group["lr"] == 2e-3  # D's rate follows G's unless set
    assert trainer.scheduler.config.num_train_timesteps == config.final_num_timesteps == 9
    assert same_weights(trainer.unet, trainer.target_unet)
    assert not any(p.requires_grad for p in trainer.target_unet.parameters())

    ct = ACTTrainer.build(tiny_unet(), small_config(adv_weight=0.0, discr_learning_rate=1.0))
    assert ct.discriminator is None and ct.discriminator_optimizer is None and ct.ema is None
    assert len(ct.lr_schedulers) == 1
    built = ACTTrainer.build(dict(tiny_unet().config), small_config(discr_learning_rate=5e-5))  # from a config
    assert built.discriminator_optimizer.param_groups[0]["lr"] == 5e-5


def test_save_state_and_load_state_round_trip_without_pickles(tmp_path):
    config = small_config(use_ema=True, ema_decay=0.9, augment=True, aug_target=0.0)
    torch.manual_seed(0)
    trainer = ACTTrainer.build(tiny_unet(), config)
    for step in range(2):
        trainer.train_step(images(), step, discriminator_images=images(8, step + 1))
    trainer.save_state(tmp_path / "state")
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        "discriminator.safetensors", "ema.safetensors", "generator.safetensors", "optimizers.pt",
        "target.safetensors", "trainer_state.json",
    ]  # fmt: skip
    torch.load(tmp_path / "state" / "optimizers.pt", weights_only=True)  # no pickled objects in it

    torch.manual_seed(1)  # other initial weights
    other = ACTTrainer.build(tiny_unet(seed=1), config)
    other.load_state(tmp_path / "state")
    for a, b in ((trainer.unet, other.unet), (trainer.target_unet, other.target_unet)):
        assert same_weights(a, b)
    assert same_weights(trainer.discriminator, other.discriminator)
    assert other.state_dict() == trainer.state_dict() and other.augment.p == trainer.augment.p > 0
    assert other.ema.optimization_step == 2
    assert all(torch.equal(a, b) for a, b in zip(trainer.ema.shadow_params, other.ema.shadow_params, strict=True))
    assert other.optimizer.state_dict()["state"].keys() == trainer.optimizer.state_dict()["state"].keys()
    # both continue identically
    logs = []
    for t in (trainer, other):
        torch.manual_seed(5)
        logs.append(t.train_step(images(seed=9), 2, discriminator_images=images(8, 10)))
    assert logs[0] == logs[1] and same_weights(trainer.unet, other.unet)


def test_shipped_unet_is_the_ema_copy_or_the_target():
    torch.manual_seed(0)
    trainer = ACTTrainer.build(tiny_unet(), small_config(adv_weight=0.0))
    assert trainer.shipped_unet() is trainer.target_unet
    trainer = ACTTrainer.build(tiny_unet(), small_config(adv_weight=0.0, use_ema=True, ema_decay=0.5))
    trainer.train_step(images(), 0)
    shipped = trainer.shipped_unet()
    assert shipped is not trainer.unet and not shipped.training
    assert all(torch.equal(a, b) for a, b in zip(shipped.parameters(), trainer.ema.shadow_params, strict=True))


def test_generator_loss_weights_each_term_by_lambda_at_n_plus_1():
    torch.manual_seed(0)
    trainer = ACTTrainer.build(tiny_unet(), small_config(adv_weight=0.6, adv_weight_mid=0.2))
    sigmas = trainer.scheduler.karras_sigmas(8)
    x, indices, noise = images(), torch.tensor([0, 3, 6, 6]), torch.randn(4, 3, 8, 8)
    losses = trainer.generator_loss(x, None, sigmas, 8, indices, noise)
    # lambda_N(m) = w (m / (N - 1))^(log_1/2(w_mid / w)) at m = n + 1 (paper Eq. 10), written out here
    lam = 0.6 * ((indices + 1) / 7.0) ** (math.log(0.2 / 0.6) / math.log(0.5))
    sigma_next, sigma = sigmas[indices + 1], sigmas[indices]
    with torch.no_grad():
        noisy_next, noisy = x + sigma_next.view(-1, 1, 1, 1) * noise, x + sigma.view(-1, 1, 1, 1) * noise
        student = consistency_function(trainer.unet, trainer.scheduler, noisy_next, sigma_next)
        target = consistency_function(trainer.target_unet, trainer.scheduler, noisy, sigma)
        c = 0.00054 * math.sqrt(3 * 8 * 8)
        distance = torch.sqrt((student - target).square().flatten(1).sum(1) + c**2) - c
        logits = trainer.discriminator(student, trainer.scheduler.precondition_noise(sigma_next)).flatten()
    torch.testing.assert_close(losses["consistency"].detach(), ((1 - lam) * distance).mean())
    torch.testing.assert_close(losses["adversarial"].detach(), (lam * F.softplus(-logits)).mean())
    torch.testing.assert_close(losses["adv_weight_mean"], lam.mean().float())
    assert losses["consistency"].requires_grad and losses["adversarial"].requires_grad


def write_folder(root, mode, labels=("a", "b"), count=4, size=(10, 12)):
    rng = np.random.default_rng(0)
    for label in labels or [""]:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (*size, 3) if mode == "RGB" else size
            PIL.Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / label / f"{i}.png")
    return root


def test_image_folders_give_channels_and_labels(tmp_path):
    flat = load_training_dataset(train_data_dir=str(write_folder(tmp_path / "flat", "L", labels=None)))
    assert "label" not in flat.column_names and image_channels(flat, "image") == 1
    classes = load_training_dataset(train_data_dir=str(write_folder(tmp_path / "classes", "RGB")))
    assert "label" in classes.column_names and image_channels(classes, "image") == 3
    batch = classes.with_transform(make_transform("image", 3, 8, label_column="label"))[:2]
    assert batch["pixel_values"][0].shape == (3, 8, 8) and len(batch["labels"]) == 2
    assert all(-1 <= t.min() and t.max() <= 1 for t in batch["pixel_values"])


def test_resumable_batches_continue_where_an_uninterrupted_run_would():
    dataset = load_training_dataset(max_train_samples=40)  # the digits
    dataset = dataset.with_transform(make_transform("image", 1, 8))

    def batches(start, count):
        from accelerate.utils import DataLoaderConfiguration

        accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
        loader = accelerator.prepare(make_dataloader(dataset, 8, seed=3))
        iterator = resumable_batches(loader, accelerator, start)
        return [next(iterator) for _ in range(count)]

    straight = batches(0, 12)  # 5 batches per epoch: crosses two epoch boundaries
    assert [epoch for epoch, _ in straight] == [0] * 5 + [1] * 5 + [2] * 2
    resumed = batches(7, 5)
    for (e1, b1), (e2, b2) in zip(straight[7:], resumed, strict=True):
        assert e1 == e2 and torch.equal(b1["pixel_values"], b2["pixel_values"])
    assert not torch.equal(straight[0][1]["pixel_values"], straight[5][1]["pixel_values"])  # reshuffled


def loader_batches(dataset, batch_size, seed, start, count):
    from accelerate.utils import DataLoaderConfiguration

    accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=seed))
    iterator = resumable_batches(accelerator.prepare(make_dataloader(dataset, batch_size, seed)), accelerator, start)
    return [next(iterator) for _ in range(count)]


def test_device_batches_are_the_data_loaders_batches_decoded_once():
    """`--data_on_device`: the digits decoded once to uint8 give exactly the loader's pixel values, and the device
    batches are the loader's (same order under the script's seedable sampler, across epochs and on resume)."""
    dataset = load_training_dataset(max_train_samples=40).with_transform(
        make_transform("image", 1, 8, True, False, "label")
    )
    decoded = decode_dataset(dataset, batch_size=16)
    assert decoded["pixel_values"].dtype == torch.uint8 and decoded["pixel_values"].shape == (40, 1, 8, 8)
    for i in (0, 17, 39):
        assert torch.equal(decoded["pixel_values"][i].float() / 127.5 - 1, dataset[i]["pixel_values"])
        assert decoded["labels"][i] == dataset[i]["labels"]
    batches = DeviceBatches(decoded, 8, seed=3, device=torch.device("cpu"))
    assert len(batches) == 5
    stream = batches.resumable(0)
    straight = [next(stream) for _ in range(12)]  # crosses two epoch boundaries
    reference = loader_batches(dataset, 8, 3, 0, 12)
    for (e1, b1), (e2, b2) in zip(straight, reference, strict=True):
        assert e1 == e2 and torch.equal(b1["pixel_values"], b2["pixel_values"])
        assert torch.equal(b1["labels"], b2["labels"])
    stream = batches.resumable(7)
    for (e1, b1), (e2, b2) in zip(straight[7:], [next(stream) for _ in range(5)], strict=True):
        assert e1 == e2 and torch.equal(b1["pixel_values"], b2["pixel_values"])


def test_device_batches_flip_on_the_device_and_shard_between_processes():
    dataset = load_training_dataset(max_train_samples=48).with_transform(make_transform("image", 1, 8, True, False))
    decoded = decode_dataset(dataset)
    plain = [b["pixel_values"] for b in DeviceBatches(decoded, 8, 1, torch.device("cpu")).epoch(0)]
    flipping = DeviceBatches(decoded, 8, 1, torch.device("cpu"), random_flip=True)
    flipped = [b["pixel_values"] for b in flipping.epoch(0)]
    is_flipped = []
    for a, b in zip(plain, flipped, strict=True):  # each image as it is, or mirrored
        same, mirrored = (a == b).flatten(1).all(1), (a.flip(-1) == b).flatten(1).all(1)
        assert bool((same | mirrored).all())
        is_flipped += (mirrored & ~same).tolist()
    assert 12 <= sum(is_flipped) <= 36  # 48 fair coins (symmetric images count as unflipped)
    again = [b["pixel_values"] for b in flipping.epoch(0, skip=2)]  # a resumed run draws the same flips
    assert all(torch.equal(a, b) for a, b in zip(flipped[2:], again, strict=True))
    shards = [DeviceBatches(decoded, 8, 1, torch.device("cpu"), process_index=r, num_processes=2) for r in (0, 1)]
    assert [len(s) for s in shards] == [3, 3]
    parts = [[b["pixel_values"] for b in s.epoch(0)] for s in shards]
    assert all(torch.equal(plain[2 * i + r], parts[r][i]) for r in (0, 1) for i in range(3))  # batches r, r + 2, ...
    with pytest.raises(ValueError, match="fewer than one batch of 32 for each of 2 process"):
        DeviceBatches(decoded, 32, 1, torch.device("cpu"), num_processes=2)


def test_data_on_device_is_chosen_by_size_and_crop():
    from types import SimpleNamespace

    def run(mode, center_crop=True, resolution=32):
        return SimpleNamespace(data_on_device=mode, center_crop=center_crop, resolution=resolution)

    assert use_data_on_device(run("auto"), 50_000, 3)  # CIFAR-10: 150 MB
    assert not use_data_on_device(run("auto", resolution=64), 1_281_167, 3)  # ImageNet 64: 15.7 GB
    assert use_data_on_device(run("yes", resolution=64), 1_281_167, 3)
    assert not use_data_on_device(run("no"), 10, 3)
    assert not use_data_on_device(run("auto", center_crop=False), 10, 3)
    from diffusers_act.training.config import RunConfig

    with pytest.raises(ValueError, match="random crops .* need the data loader: pass --data_on_device no"):
        RunConfig(data_on_device="yes", center_crop=False)  # refused before any data is read


def test_unet_config_for_a_run():
    assert unet_config(None, 16, 1, 10)["block_out_channels"] == (32, 64, 64)
    config = unet_config(None, 32, 3, None)
    assert (config["in_channels"], config["out_channels"], config["num_class_embeds"]) == (3, 3, None)
    assert len(auto_unet_config(64)["block_out_channels"]) == 5 and auto_unet_config(8)["sample_size"] == 8
    assert unet_config("cifar10", 32, 3, None)["block_out_channels"] == (128, 128, 256, 256)
    with pytest.raises(ValueError, match=r"multiple of 8 \(e.g. 40 or 48\)"):
        unet_config("cifar10", 44, 3, None)


def make_run(tmp_path, steps=(2, 4, 6), limit=None):
    torch.manual_seed(0)
    accelerator = Accelerator()
    trainer = ACTTrainer.build(tiny_unet(), small_config(adv_weight=0.0), accelerator)
    manager = CheckpointManager(tmp_path, accelerator, total_limit=limit)
    for step in steps:
        trainer.train_step(images(seed=step), step)
        manager.save(step, trainer, epoch=0)
    return manager, trainer


def test_checkpoints_are_pipelines_and_pruned_to_the_limit(tmp_path):
    manager, trainer = make_run(tmp_path, limit=2)
    assert [c.name for c in manager.complete()] == ["checkpoint-4", "checkpoint-6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6"]  # nothing left behind
    pipe = ACTPipeline.from_pretrained(tmp_path / "checkpoint-6")
    assert same_weights(pipe.unet, trainer.target_unet)
    manifest = json.loads((tmp_path / "checkpoint-6" / "checkpoint.json").read_text())
    assert (
        manifest["step"] == 6
        and manifest["epoch"] == 0
        and "unet/diffusion_pytorch_model.safetensors" in (manifest["files"])
    )


def test_a_checkpoint_whose_files_do_not_match_its_manifest_is_not_complete(tmp_path):
    manager, _ = make_run(tmp_path, steps=(2, 4))
    with open(tmp_path / "checkpoint-4" / "training" / "target.safetensors", "ab") as f:
        f.write(b"\0")  # a file of another size
    assert manager.latest().name == "checkpoint-2"
    (tmp_path / "checkpoint-2" / "training" / "optimizers.pt").unlink()  # a missing file
    assert manager.latest() is None
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        manager.resolve(str(tmp_path / "checkpoint-4"))


def test_a_killed_prune_leaves_no_checkpoint_that_counts(tmp_path, monkeypatch):
    make_run(tmp_path, steps=(2, 4))
    real_rmtree = shutil.rmtree

    def killed(path, *args, **kwargs):
        if str(path).endswith(".deleting"):
            raise KeyboardInterrupt("killed while deleting")
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints_module.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        make_run(tmp_path, steps=(6,), limit=2)
    assert [c.name for c in complete_checkpoints(tmp_path)] == ["checkpoint-4", "checkpoint-6"]
    assert (tmp_path / ".checkpoint-2.deleting").is_dir()
    monkeypatch.setattr(checkpoints_module.shutil, "rmtree", real_rmtree)
    CheckpointManager(tmp_path, Accelerator())  # a new run removes what the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6"]


def test_jsonl_log_drops_redone_steps_on_resume(tmp_path):
    log = JsonlLog(tmp_path / "logs.jsonl")
    for step in (1, 2, 3, 4):
        log.write(step, {"loss": float(step)})
    resumed = JsonlLog(tmp_path / "logs.jsonl", resume_step=2)
    resumed.write(3, {"loss": 30.0})
    assert [(e["step"], e["loss"]) for e in resumed.read()] == [(1, 1.0), (2, 2.0), (3, 30.0)]
    JsonlLog(tmp_path / "other.jsonl", enabled=False).write(1, {"loss": 1.0})  # not the main process
    assert not (tmp_path / "other.jsonl").exists()


def test_sample_grid_blocks_per_number_of_steps():
    unet = tiny_unet(in_channels=1, out_channels=1, num_class_embeds=3)
    from diffusers_act import ConsistencyACTScheduler

    kwargs = {"num_images": 5, "seed": 0, "num_classes": 3, "steps": (1, 2)}
    grid = sample_grid(unet, ConsistencyACTScheduler(), display_size=8, **kwargs)
    assert grid.size == (3 * 8, 2 * 2 * 8) and grid.mode == "L"  # 3 columns, 2 rows per block, 2 blocks
    again = sample_grid(unet, ConsistencyACTScheduler(), display_size=8, **kwargs)
    assert np.array_equal(np.asarray(grid), np.asarray(again))
    assert (np.asarray(grid)[8:16, 16:24] == 255).all()  # the unused 6th cell of the first block is white
    # by default 8x8 samples are shown 4x larger, each pixel a 4x4 block (nearest-neighbour), in a 2-pixel grey frame
    shown = np.asarray(sample_grid(unet, ConsistencyACTScheduler(), **kwargs))
    assert shown.shape == (2 * 2 * 36, 3 * 36)
    cells = shown.reshape(4, 36, 3, 36).transpose(0, 2, 1, 3)
    assert (cells[:, :, :2] == 128).all() and (cells[:, :, :, -2:] == 128).all()
    enlarged = np.asarray(grid).repeat(4, axis=0).repeat(4, axis=1).reshape(4, 32, 3, 32).transpose(0, 2, 1, 3)
    assert np.array_equal(cells[:, :, 2:-2, 2:-2], enlarged)


def test_act_aug_reads_the_penalty_without_lambda():
    """Paper Algorithm 2 lines 14-16: the controller reads L_gp = w_gp mean ||grad D||^2, not lambda-weighted."""
    torch.manual_seed(0)
    config = small_config(adv_weight=0.3, gp_weight=5.0, augment=True, aug_p=0.0, aug_target=100.0)
    trainer = ACTTrainer.build(tiny_unet(), config)
    fed = []
    original = trainer.augment_controller.update
    trainer.augment_controller.update = lambda value: fed.append(float(value)) or original(value)
    batch = images(8, seed=3)
    discriminator = copy.deepcopy(trainer.discriminator)  # as it was before the step updates it
    state = torch.random.get_rng_state()
    logs = trainer.discriminator_step(batch, None, trainer.scheduler.karras_sigmas(8), 8, step=0)
    # the same reals and draws, the penalty written out here (aug_p = 0: A is the identity)
    torch.random.set_rng_state(state)
    sigmas = trainer.scheduler.karras_sigmas(8)
    indices = sample_timestep_indices(sigmas, 4)
    reals = batch[4:].clone().requires_grad_(True)
    time_input = trainer.scheduler.precondition_noise(sigmas[indices + 1])
    grad = torch.autograd.grad(discriminator(reals, time_input).sum(), reals)[0]
    expected = 5.0 * grad.square().flatten(1).sum(1).mean().item()
    assert fed == [pytest.approx(expected, rel=1e-4)] and logs["loss_gp"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("order", ["official", "paper"])
def test_augmentation_probability_follows_the_controller_rule(order):
    from diffusers_act.training import AugmentController

    controller = AugmentController(target=0.5, rate=0.1, ema=0.5, p=0.0, r1_ema=0.0, order=order)
    ps, emas = [], []
    for value in (2.0, 2.0, 0.0, 0.0, 0.0):
        ps.append(round(float(controller.update(value)), 6))
        emas.append(float(controller.r1_ema))
    assert emas == [1.0, 1.5, 0.75, 0.375, 0.1875]
    if order == "official":  # the EMA first, then p from it: up, up, up, down, down
        assert ps == [0.1, 0.2, 0.3, 0.2, 0.1]
    else:  # p from the EMA so far (0 < 0.5: down, clipped at 0), then the EMA
        assert ps == [0.0, 0.1, 0.2, 0.3, 0.2]


def test_discriminator_optimizer_betas_widths_head_and_ema_decay_come_from_the_config():
    torch.manual_seed(0)
    config = small_config(
        discr_adam_beta2=0.99 * 16 / 17, discriminator_block_out_channels=(16, 16), discriminator_head="pool2x2",
        use_ema=True, ema_decay=0.9, ema_warmup="constant",
    )  # fmt: skip
    trainer = ACTTrainer.build(tiny_unet(), config)
    assert trainer.discriminator_optimizer.param_groups[0]["betas"] == (0.0, 0.99 * 16 / 17)
    assert trainer.optimizer.param_groups[0]["betas"] == (0.0, 0.99)
    d = trainer.accelerator.unwrap_model(trainer.discriminator)
    assert tuple(d.config.block_out_channels) == (16, 16) and d.config.head_type == "pool2x2"
    assert d.to_logit.in_features == 4 * 16
    ramp = ACTTrainer.build(tiny_unet(), small_config(use_ema=True, ema_decay=0.9))
    for step in range(2):  # the first EMA update copies the weights; the second averages
        for t in (trainer, ramp):
            t.train_step(images(), step, discriminator_images=images(8, 1))
    assert trainer.ema.cur_decay_value == 0.9  # constant: no ramp
    assert ramp.ema.cur_decay_value == pytest.approx(2 / 11)  # diffusers' ramp (1 + k) / (10 + k) at k = 1


class LinearMeanDiscriminator(torch.nn.Module):
    """logit = a * mean(x) + offset: ||dlogit/dx||^2 = a^2 / (C H W) for every image, so R1's share is exact."""

    def __init__(self):
        super().__init__()
        self.a, self.offset = torch.nn.Parameter(torch.tensor(2.0)), torch.nn.Parameter(torch.tensor(0.1))

    def forward(self, sample, timestep, class_labels=None):
        return self.a * sample.mean(dim=(1, 2, 3)) + self.offset


@pytest.mark.parametrize("lazy", [False, True])
def test_discriminator_loss_weights_l_d_and_r1_by_lambda_and_r1_runs_every_interval(lazy):
    """Algorithm 1 lines 13-15: L_d = lambda L_D + lambda w_gp ||grad||^2 every I_gp iterations (times I_gp when lazy),
    read off the discriminator's gradient with a discriminator whose R1 is known exactly."""
    config = small_config(adv_weight=0.6, adv_weight_mid=0.2, gp_weight=5.0, gp_interval=3, gp_lazy=lazy)
    torch.manual_seed(0)
    trainer = ACTTrainer.build(tiny_unet(), config)
    trainer.discriminator = LinearMeanDiscriminator()
    grads = {}
    for step in (3, 4):  # an R1 iteration and an ordinary one
        trainer.discriminator_optimizer = torch.optim.SGD(trainer.discriminator.parameters(), lr=0.0)
        trainer.discriminator.a.grad = None
        original = trainer.discriminator_optimizer.zero_grad
        trainer.discriminator_optimizer.zero_grad = lambda set_to_none=True: None  # keep the gradient to read it
        torch.manual_seed(1)
        sigmas = trainer.scheduler.karras_sigmas(8)
        logs = trainer.discriminator_step(images(8, seed=5), None, sigmas, 8, step=step)
        grads[step] = trainer.discriminator.a.grad.clone()
        trainer.discriminator_optimizer.zero_grad = original
        # the draws the step made, redone: n for lambda at n + 1
        torch.manual_seed(1)
        indices = sample_timestep_indices(sigmas, 4)
        lam = 0.6 * ((indices + 1) / 7.0) ** (math.log(0.2 / 0.6) / math.log(0.5))
        if step == 3:
            r1 = 2.0**2 / (3 * 8 * 8)
            assert logs["r1"] == pytest.approx(r1) and logs["loss_gp"] == pytest.approx(5.0 * r1)  # no lambda
            expected_extra = 5.0 * lam.mean().item() * 2 * 2.0 / (3 * 8 * 8) * (3 if lazy else 1)  # d/da
        else:
            assert "r1" not in logs
    assert (grads[3] - grads[4]).item() == pytest.approx(expected_extra, rel=1e-4)
    # L_D = mean(lambda [softplus(l_fake) + softplus(-l_real)]), the fakes made from the first half (step 4's draws)
    torch.manual_seed(1)
    indices, batch = sample_timestep_indices(sigmas, 4), images(8, seed=5)
    noise, sigma_next = torch.randn(4, 3, 8, 8), sigmas[indices + 1]
    with torch.no_grad():
        fakes = consistency_function(trainer.unet, trainer.scheduler, batch[:4] + sigma_next.view(-1, 1, 1, 1) * noise,
                                     sigma_next)  # fmt: skip
        d = trainer.discriminator
        expected = (lam * (F.softplus(d(fakes, None)) + F.softplus(-d(batch[4:], None)))).mean().item()
    assert logs["loss_d"] == pytest.approx(expected, rel=1e-5)


def test_a_checkpoint_removed_while_it_is_read_does_not_count_and_does_not_crash(tmp_path, monkeypatch):
    """Another process prunes checkpoint-2 while this one lists its files (seen in CI as a FileNotFoundError)."""
    make_run(tmp_path, steps=(2, 4))
    real_stat, calls = type(tmp_path).stat, []

    def vanishing(path, *args, **kwargs):  # is_file() still sees model_index.json, the size read does not
        if path.parent.name == "checkpoint-2" and path.name == "model_index.json":
            calls.append(path)
            if len(calls) % 2 == 0:
                raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "stat", vanishing)
    assert checkpoints_module.checkpoint_problems(tmp_path / "checkpoint-2") == [
        "files disappeared while it was read (being removed?)"
    ]
    assert [c.name for c in complete_checkpoints(tmp_path)] == ["checkpoint-4"]


def test_fine_tuning_matches_the_data_classes_onto_the_model_classes_by_name():
    from diffusers_act.training.pretrained import match_classes

    digits = {i: str(i) for i in range(10)}
    # a subset in any order trains the model's classes of those names; the model keeps its names
    assert match_classes(digits, {0: "3", 1: "7"}) == ({0: 3, 1: 7}, digits)
    assert match_classes(digits, {0: "0", 1: "1"}) == (None, digits)  # the same ids: nothing to map
    assert match_classes(None, {0: "cat"}) == (None, {0: "cat"})
    assert match_classes(digits, None) == (None, digits)
    with pytest.raises(ValueError, match=r"The data's classes 'cat' are not classes of the pretrained model"):
        match_classes(digits, {0: "3", 1: "cat"})
    # told to: class id by class id under the data's names, and no name listed twice
    mapping, names = match_classes(digits, {0: "cat", 1: "3"}, allow_other_classes=True)
    assert mapping is None and names[0] == "cat" and names[1] == "3" and 3 not in names and names[2] == "2"
    assert len(set(names.values())) == len(names)


def test_training_data_relabels_and_resumes_its_batches(tmp_path):
    from accelerate import Accelerator

    from diffusers_act.training.config import parse_args
    from diffusers_act.training.data import TrainingData

    run, _ = parse_args(["--output_dir", str(tmp_path), "--max_train_samples", "40"])
    data = TrainingData(run, Accelerator(cpu=True))
    assert (data.conditional, data.num_classes, data.id2label[3]) == (True, 10, "3")
    before = data.dataset["label"]
    data.relabel({i: 9 - i for i in range(10)}, 10)  # e.g. the data's names in reverse order of the model's
    assert data.dataset["label"] == [9 - label for label in before]
    data.prepare({"in_channels": 1, "block_out_channels": (32, 64), "sample_size": 8}, batch_size=8)
    assert data.on_device and data.batches_per_epoch == 5
    first = [batch for _, batch in zip(range(7), data.batches(0), strict=False)]
    resumed = next(data.batches(6))[1]
    assert torch.equal(resumed["pixel_values"], first[6][1]["pixel_values"])
    assert torch.equal(resumed["labels"], first[6][1]["labels"])
    assert set(first[0][1]["labels"].tolist()) <= {9 - label for label in before}
    assert data.reference_images().shape == (40, 1, run.resolution, run.resolution)
