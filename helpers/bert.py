"""Which pretrained BERT to use (the hub's, else the offline stand-in: see helpers.catalog), loading and saving it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .catalog import HUB_BERT, OFFLINE_BERT_DIST, OFFLINE_BERT_PACKAGE, SMALL_BERT_HUB, SMALL_NAME
from .errors import BadFileError, ModelNotFoundError
from .hub import hub_reachable
from .paths import runs_dir


def finetuned_dir(profile: str | None = None) -> Path:
    """runs/<profile>/bert-imdb (…-tiny under COURSE_TINY=1): where 03 saves its classifier. Taught in 03 §6."""
    return runs_dir(profile) / "bert-imdb"


def find_finetuned() -> tuple[Path, str] | None:
    """(folder, run) of the best classifier 03 saved: the gpu run's, else cpu's, else this run's. Taught in 04 §1."""
    runs = runs_dir().parent
    for run in dict.fromkeys(("gpu", "cpu", runs_dir().name)):
        if (runs / run / "bert-imdb").is_dir():
            return check_model_dir(runs / run / "bert-imdb"), run
    return None


def check_model_dir(path: str | Path) -> Path:
    """`path`, or a course error unless it holds a whole saved BERT: config, weights, tokenizer. Taught in 04 §1."""
    path = Path(path).expanduser()
    fix = (
        f"Fix: delete the folder (rm -r {path}) and run notebook 03 to the end to save it again, "
        "or name another model in the config cell."
    )
    names = {p.name for p in path.iterdir()} if path.is_dir() else set()
    needed = ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json or vocab.txt")
    if missing := [f for f in needed if not names & set(f.split(" or "))]:
        raise ModelNotFoundError(
            f"The model folder {path} "
            + (f"lacks {', '.join(missing)}" if names else "does not exist or is empty")
            + f": it is not a whole saved model and tokenizer. {fix}"
        )
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), "pt") as weights:
            keys = list(weights.keys())
    except Exception as error:  # bad JSON, a truncated or overwritten weights file
        raise BadFileError(
            f"The model in {path} cannot be read ({type(error).__name__}: {error}): a file is "
            f"truncated or corrupt. {fix}"
        ) from error
    if model_type != "bert" or not any("encoder.layer." in k for k in keys):
        raise BadFileError(
            f"The model in {path} is a {model_type!r} model, not a BERT "
            f"(config.json and model.safetensors must be BERT's). {fix}"
        )
    return path


def save_finetuned(model: Any, tokenizer: Any, path: str | Path | None = None) -> Path:
    """save_pretrained of model and tokenizer into finetuned_dir(), atomically (beside it, then renamed). 03 §6."""
    path = Path(path) if path is not None else finetuned_dir()
    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for part in (model, tokenizer):
            part.save_pretrained(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
    finally:  # a failed save (disk full, Ctrl-C) leaves the previous model as it was, and no half-written folder
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return path


def _load(what: str, name: str | Path, load: Callable[[str], Any]) -> Any:
    """load(name) for a hub name or a checked folder; what transformers cannot read is a BadFileError naming it."""
    name = check_model_dir(name) if Path(name).is_dir() else name
    try:
        with quiet_loading():
            return load(str(name))
    except Exception as error:  # e.g. weights of another size than config.json says; tokenizers' bare Exception
        raise BadFileError(
            f"The {what} of {name} cannot be loaded ({type(error).__name__}: {str(error)[:300]}). Fix: "
            "save the folder again (notebook 03 §6), or correct the model in the config cell."
        ) from error


def load_tokenizer(name: str | Path) -> Any:
    """AutoTokenizer of a hub name or a checked model folder, in one place with the errors of _load. Taught in 03 §2."""
    from transformers import AutoTokenizer

    return _load("tokenizer", name, AutoTokenizer.from_pretrained)


def offline_bert_path() -> Path | None:
    """Folder of the offline stand-in inside its installed package, or None when not installed. Taught in 00 §4."""
    spec = importlib.util.find_spec(OFFLINE_BERT_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").exists() else None


def hub_model_available(name: str) -> bool:
    """True when a hub model's files can be had (from the local hub cache, or the network). Taught in 00 §4."""
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
    """The BERT to load, said aloud: "auto" (hub, else offline), "small" (6 layers), a name/folder. Taught in 00 §4."""
    if choice not in ("auto", "small"):
        folder = Path(choice).expanduser().exists()
        if not folder and not hub_model_available(choice):
            raise ModelNotFoundError(
                f"MODEL={choice!r} is neither a model folder nor a model on the Hugging Face hub "
                "(or the hub is unreachable). Fix: correct the path or name in the config cell, "
                'or use "small" (offline) or "auto".'
            )
        print(f"Model: {choice} (chosen in the config cell)")
        return str(check_model_dir(choice)) if folder else choice
    if choice == "auto" and hub_model_available(HUB_BERT):
        print(f"Model: {HUB_BERT} from the Hugging Face hub (12 layers, hidden size 768)")
        return HUB_BERT
    small = f"{SMALL_NAME} (a pretrained 6-layer BERT, hidden size 384)"
    why = 'as asked for with "small"' if choice == "small" else f"{HUB_BERT} is out of reach: the offline stand-in"
    if (path := offline_bert_path()) is not None:
        print(f"Model: {small} from the {OFFLINE_BERT_DIST} package ({why}).")
        return str(path)
    if choice == "small" and hub_model_available(SMALL_BERT_HUB):
        print(f"Model: {small}, {SMALL_BERT_HUB} from the Hugging Face hub ({why}).")
        return SMALL_BERT_HUB
    wanted = f"the small BERT ({SMALL_BERT_HUB})" if choice == "small" else f"the hub's {HUB_BERT}"
    raise ModelNotFoundError(
        f"No BERT model is available: {wanted} could not be reached or found in the "
        "local hub cache, and the offline stand-in is not installed.\nEither connect to the "
        "internet (or run `python -m helpers.download bert` on a machine that has it), or "
        "install the stand-in: pip install 'dl-course-helpers[offline]' (that is, "
        f"pip install {OFFLINE_BERT_DIST})."
    )


def base_model_choice(name: str) -> str:
    """What to record of a resolved model so another notebook resolves it again ("small": 6 layers). Taught in 03 §6."""
    path = offline_bert_path()
    return "small" if name == SMALL_BERT_HUB or (path is not None and name == str(path)) else name


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' 'Loading weights' progress bar (a widget) while a model loads. Taught in 04 §1."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_bert(
    name: str | Path,
    labels: Sequence[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    attention: str = "sdpa",
) -> tuple[Any, dict[str, list[str]]]:
    """A float32 BERT classifier over `labels` (seeded head), else the encoder; "eager" for 04. Taught in 03 §3."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    extra: dict[str, Any] = {}
    if labels is not None:
        extra = dict(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )
    auto = AutoModelForSequenceClassification if labels is not None else AutoModel
    with torch.random.fork_rng(devices=[]):  # the new head starts the same each time; the caller's RNG is left alone
        torch.manual_seed(seed)
        model, info = _load(
            "model",
            name,
            lambda n: auto.from_pretrained(
                n, dtype=torch.float32, attn_implementation=attention, output_loading_info=True, **extra
            ),
        )
    return model.to(device), info


def load_eager(path: Path | str, classifier: bool = False, device: torch.device | str = "cpu") -> tuple[Any, Any]:
    """Model and tokenizer in eval mode with eager attention (SDPA returns no attention weights). Taught in 04 §2."""
    from transformers import AutoConfig

    tokenizer = load_tokenizer(path)  # first: it checks a folder's files
    labels = list(AutoConfig.from_pretrained(str(path)).id2label.values()) if classifier else None
    model, _ = load_bert(path, labels, device=device, attention="eager")
    return model.eval(), tokenizer


def load_attention_model(finetuned: Path | str | None = None, device: torch.device | str = "cpu") -> tuple[Any, ...]:
    """(model, tokenizer, kind): the best classifier 03 saved (find_finetuned), else pretrained BERT. 04 §1."""
    found = (check_model_dir(finetuned), "given") if finetuned is not None else find_finetuned()
    if found is None:
        print("No fine-tuned model from notebook 03 was found (run notebook 03 to save one): the pretrained BERT.")
        return *load_eager(resolve_bert("auto"), device=device), "pretrained"
    print(f"Model: the classifier notebook 03 fine-tuned in its {found[1]!r} run ({Path(*found[0].parts[-3:])})")
    return *load_eager(found[0], classifier=True, device=device), "fine-tuned"
