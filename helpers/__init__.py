"""Shared helpers for the course notebooks: device and precision, profiles, data, the training loop, plots."""

from .data import (CIFAR10_CLASSES, DataNotFoundError, data_dir, images_to_tensor, load_cifar10, load_imdb,
                   stratified_subset)
from .device import autocast_dtype, environment_report, get_device, seed_everything
from .models import FINETUNED_DIR, HUB_BERT, base_model_choice, resolve_bert
from .plot import confusion_matrix, plot_confusion_matrix, plot_history, show_images
from .profiles import PROFILES, get_profile
from .train import History, evaluate, fit

__all__ = [
    "CIFAR10_CLASSES", "DataNotFoundError", "FINETUNED_DIR", "HUB_BERT", "History", "PROFILES", "autocast_dtype",
    "base_model_choice", "confusion_matrix", "data_dir", "environment_report", "evaluate", "fit", "get_device", "get_profile",
    "images_to_tensor", "load_cifar10", "load_imdb", "plot_confusion_matrix", "plot_history",
    "resolve_bert", "seed_everything", "show_images", "stratified_subset",
]
