"""CIFAR-10 in seconds (notebook 02): the ideas of Keller Jordan's airbench94, our code, each trick a Recipe switch.

loader: the data on the device, augmented in batches; net: the CifarNet and its initialisations; tricks: schedules,
lookahead and test-time augmentation; recipe: one training run and the table of tricks.
"""

from .images import CIFAR10_CLASSES, IMAGE_SHAPE, decode_images
from .loader import GpuLoader, augment, channel_stats, denormalize, epoch_seed, load_cifar10_tensors, normalize, subset
from .net import (
    NUM_CLASSES,
    BatchNorm,
    CifarNet,
    ConvGroup,
    identity_init_,
    image_patches,
    init_whitening_,
    whitening_filters,
)
from .recipe import Recipe, Run, ablation_recipes, baseline_recipe, make_model, make_optimizer, train, tricks_table
from .tricks import (
    LOOKAHEAD_DECAY,
    LOOKAHEAD_EVERY,
    LOOKAHEAD_POWER,
    Lookahead,
    constant_schedule,
    lookahead_rho,
    triangular_schedule,
    tta_forward,
    tta_logits,
    tta_views,
)

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGE_SHAPE",
    "LOOKAHEAD_DECAY",
    "LOOKAHEAD_EVERY",
    "LOOKAHEAD_POWER",
    "NUM_CLASSES",
    "BatchNorm",
    "CifarNet",
    "ConvGroup",
    "GpuLoader",
    "Lookahead",
    "Recipe",
    "Run",
    "ablation_recipes",
    "augment",
    "baseline_recipe",
    "channel_stats",
    "constant_schedule",
    "decode_images",
    "denormalize",
    "identity_init_",
    "image_patches",
    "init_whitening_",
    "load_cifar10_tensors",
    "lookahead_rho",
    "make_model",
    "make_optimizer",
    "normalize",
    "subset",
    "epoch_seed",
    "train",
    "tricks_table",
    "triangular_schedule",
    "tta_forward",
    "tta_logits",
    "tta_views",
    "whitening_filters",
]
