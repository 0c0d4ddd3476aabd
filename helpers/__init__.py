"""Shared helpers of the course notebooks; at import only torch and numpy, so a bare GPU machine can import them."""

from .bert import HUB_BERT, base_model_choice, find_finetuned, finetuned_dir, resolve_bert
from .cifar.images import CIFAR10_CLASSES, images_to_tensor
from .data import load_cifar10, load_imdb, stratified_subset
from .device import autocast_dtype, environment_report, get_device, model_device, precision_reason, seed_everything
from .errors import CourseError, DataNotFoundError
from .evaluation import confusion_matrix, evaluate, predict, predict_proba
from .measure import count_parameters
from .paths import data_dir, runs_dir
from .plot import plot_confusion_matrix, plot_history, show_images
from .profiles import PROFILES, get_profile
from .train import History, fit

__all__ = [
    "CIFAR10_CLASSES",
    "CourseError",
    "DataNotFoundError",
    "HUB_BERT",
    "History",
    "PROFILES",
    "autocast_dtype",
    "base_model_choice",
    "confusion_matrix",
    "count_parameters",
    "data_dir",
    "environment_report",
    "evaluate",
    "find_finetuned",
    "finetuned_dir",
    "fit",
    "get_device",
    "get_profile",
    "images_to_tensor",
    "load_cifar10",
    "load_imdb",
    "model_device",
    "plot_confusion_matrix",
    "plot_history",
    "precision_reason",
    "predict",
    "predict_proba",
    "resolve_bert",
    "runs_dir",
    "seed_everything",
    "show_images",
    "stratified_subset",
]
