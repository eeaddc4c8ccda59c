"""The paper's models and training settings (ACT_SPEC section 9, paper Tables 5 and 6), plus a small CPU preset."""

from copy import deepcopy

from diffusers import UNet2DModel

UNET_PRESETS: dict[str, dict] = {
    # CIFAR-10 32x32, unconditional: 4 levels, attention at 16x16 (27.5M parameters).
    "cifar10": {
        "sample_size": 32,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 2,
        "block_out_channels": (128, 128, 256, 256),
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": 8,
    },
    # ImageNet 64x64, class-conditional: 5 levels, attention at 16x16 (107.6M parameters).
    "imagenet64": {
        "sample_size": 64,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 2,
        "block_out_channels": (128, 256, 256, 512, 512),
        "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "attention_head_dim": 16,
        "num_class_embeds": 1000,
    },
    # scikit-learn's 8x8 handwritten digits resized to 16x16, class-conditional: a CPU-sized model (~1M parameters).
    "digits": {
        "sample_size": 16,
        "in_channels": 1,
        "out_channels": 1,
        "layers_per_block": 1,
        "block_out_channels": (32, 64, 64),
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": 8,
        "norm_num_groups": 8,
        "num_class_embeds": 10,
    },
}

# Training settings of `examples/train_act/train_act.py` for each preset; any explicit flag overrides them.
TRAINING_PRESETS: dict[str, dict] = {
    # Paper Tables 5/6 and the authors' code: FID 6.0 (ACT-Aug) after 300k iterations at batch 80 on one GPU.
    "cifar10": {
        "dataset_name": "cifar10",
        "image_column": "img",
        "resolution": 32,
        "random_flip": True,
        "class_conditional": False,
        "train_batch_size": 80,
        "max_train_steps": 300_000,
        "learning_rate": 1e-4,
        "discr_learning_rate": 1e-4,
        "mixed_precision": "no",
        "loss_type": "lpips",
        "s0": 2,
        "s1": 150,
        "mu0": 0.9,
        "adv_weight": 0.3,
        "adv_weight_mid": 0.3,
        "gp_weight": 5.0,
        "gp_interval": 16,
        "use_augment": True,
        "aug_target": 0.55,
        "aug_rate": 0.05,
        "aug_ema": 0.93,
        "noise_conditioning": "sigma",
    },
    # Paper: FID 10.6 after 400k iterations at batch 320 on 4 A100s in fp16; class-conditional, no augmentation.
    # ImageNet is gated on the Hub: pass --dataset_name with a 64x64 copy you can access, or --train_data_dir.
    "imagenet64": {
        "resolution": 64,
        "random_flip": True,
        "class_conditional": True,
        "train_batch_size": 320,
        "max_train_steps": 400_000,
        "learning_rate": 5e-5,
        "discr_learning_rate": 5e-5,
        "mixed_precision": "fp16",
        "loss_type": "lpips",
        "s0": 2,
        "s1": 200,
        "mu0": 0.95,
        "adv_weight": 0.6,
        "adv_weight_mid": 0.2,
        "gp_weight": 5.0,
        "gp_interval": 16,
        "use_augment": False,
        "noise_conditioning": "sigma",
    },
    # A laptop CPU: the improved-CT options (ACT_SPEC section 2), which make short runs work.
    "digits": {
        "resolution": 16,
        "random_flip": False,
        "class_conditional": True,
        "train_batch_size": 32,
        "max_train_steps": 2000,
        "learning_rate": 5e-4,
        "discr_learning_rate": 5e-4,
        "mixed_precision": "no",
        "loss_type": "pseudo_huber",
        "num_timesteps_schedule": "doubling",
        "s0": 10,
        "s1": 160,
        "mu0": 0.0,
        "index_distribution": "lognormal",
        "loss_weighting": "inverse_delta",
        "adv_weight": 0.3,
        "adv_weight_mid": 0.3,
        "gp_weight": 5.0,
        "gp_interval": 16,
        "use_augment": False,
        "use_ema": True,
        "ema_decay": 0.999,
        "checkpointing_steps": 500,
        "validation_steps": 500,
        "fid_feature_extractor": "digits",
    },
}


def unet_from_preset(name: str, **overrides) -> UNet2DModel:
    """Builds a randomly initialised `UNet2DModel` from a preset of `UNET_PRESETS`, with config overrides."""
    if name not in UNET_PRESETS:
        raise ValueError(f"Unknown UNet preset {name!r}; choose one of {sorted(UNET_PRESETS)}.")
    return UNet2DModel(**{**deepcopy(UNET_PRESETS[name]), **overrides})
