"""Bad input, a clear error, nothing lost (issue 9 item 4): every file the course reads and every config value.

Each case damages a real file in a temporary folder (a slice of the course's Parquet data, a checkpoint that
helpers.fit wrote, a saved BERT) or types a bad value, and expects one error of ours (a helpers.CourseError)
whose message names the file or value, what is wrong, and the fix; raised before any training step.
"""

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import helpers
from helpers import bert, checkpoints, cifar, data, paths, profiles, text, train
from helpers.errors import BadFileError, ConfigError, CourseError


@pytest.fixture(scope="module")
def parquet_slices(tmp_path_factory):
    """A data/ folder with the first rows of the real IMDB and CIFAR-10 files (train and test)."""
    source = paths.data_dir()
    if not all((source / n / f"{s}.parquet").exists() for n in ("imdb", "cifar10") for s in ("train", "test")):
        pytest.skip(f"no course data in {source}: set COURSE_DATA_DIR (or run python -m helpers.download)")
    root = tmp_path_factory.mktemp("data")
    for name in ("imdb", "cifar10"):
        (root / name).mkdir()
        for split in ("train", "test"):
            table = pq.read_table(source / name / f"{split}.parquet")
            pq.write_table(
                table.take(list(range(0, table.num_rows, table.num_rows // 200))), root / name / f"{split}.parquet"
            )
    return root


@pytest.fixture
def data_root(parquet_slices, tmp_path):
    """A fresh copy of the slices, to damage."""
    shutil.copytree(parquet_slices, tmp_path / "data")
    return tmp_path / "data"


def _expect(error_type, match, fn, *args, **kwargs) -> str:
    with pytest.raises(error_type, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, CourseError)
    return str(info.value)


def test_the_slices_read(data_root):
    assert len(data.read_split("imdb", "test", ["text", "label"], data_root)["label"]) == 200
    assert helpers.load_cifar10(data_root)["train"].num_rows == 200


@pytest.mark.parametrize("damage", ["truncate", "garbage", "overwrite middle"])
def test_a_damaged_parquet_file_names_itself_and_the_download(data_root, damage):
    path = data_root / "imdb" / "train.parquet"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a parquet file\n" * 100)
    else:  # the footer is intact, a data page is not: only reading the rows finds it
        path.write_bytes(raw[: len(raw) // 4] + os.urandom(len(raw) // 4) + raw[len(raw) // 2 :])
    message = _expect(
        BadFileError, "truncated or corrupt", data.read_split, "imdb", "train", ["text", "label"], data_root
    )
    assert str(path) in message and "python -m helpers.download imdb" in message
    _expect(BadFileError, "truncated or corrupt", data.load_imdb, data_root)


def test_another_data_set_in_the_folder(data_root):
    shutil.copy(data_root / "cifar10" / "test.parquet", data_root / "imdb" / "test.parquet")
    message = _expect(BadFileError, "holds another data set", data.load_imdb, data_root)
    assert str(data_root / "imdb" / "test.parquet") in message and "'text'" in message


def test_a_missing_file_is_data_not_found(data_root, monkeypatch):
    (data_root / "cifar10" / "test.parquet").unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _expect(data.DataNotFoundError, "not available", cifar.load_cifar10_tensors, 10, 10, root=data_root)
    assert str(data_root / "cifar10" / "test.parquet") in message and "download cifar10" in message


def test_sizes_larger_than_the_data(data_root):
    imdb = data.load_imdb(data_root)
    _expect(ConfigError, r"size=201 is not allowed.*200 rows", helpers.stratified_subset, imdb["train"], 201)
    _expect(ConfigError, r"size=0 is not allowed", helpers.stratified_subset, imdb["train"], 0)
    _expect(ConfigError, r"size=500 is not allowed", cifar.load_cifar10_tensors, 500, 10, root=data_root)
    small = cifar.load_cifar10_tensors(100, 100, root=data_root)
    _expect(ConfigError, r"size=101", cifar.subset, small["x_train"], small["y_train"], 101)
    assert len(helpers.stratified_subset(imdb["train"], 200)) == 200  # all of it is fine


@pytest.mark.parametrize("value", [0, -8, 2.5, "16"])
def test_config_cell_sizes_are_checked_when_the_cell_runs(value):
    config = {p: dict(batch_size=8, epochs=1, seeds=(0, 1), lr=1e-3) for p in profiles.PROFILES}
    config["cpu"]["batch_size"] = value
    message = _expect(
        ConfigError,
        r"CONFIG\['cpu'\]\['batch_size'\]=.* is not allowed",
        profiles.settings,
        config,
        sizes=("batch_size", "epochs", "seeds"),
        profile="gpu",
    )
    assert "config cell" in message
    config["cpu"].update(batch_size=8, seeds=(0, -1))
    _expect(ConfigError, r"\['seeds'\]=-1 .*at least 0", profiles.settings, config, sizes=("batch_size", "seeds"))
    config["cpu"]["seeds"] = (0,)
    assert profiles.settings(config, sizes=("batch_size", "seeds"), profile="cpu")["seeds"] == (0,)


def test_batch_sizes_and_choices_where_the_loaders_are_built():
    ids, labels = [[2, 5, 3]] * 4, [0, 1, 0, 1]
    _expect(ConfigError, r"batch_size=0 is not allowed", text.TokenBatches, ids, labels, 0)
    _expect(
        ConfigError, r"mask='3d' is unknown: choose one of '2d', '4d'", text.TokenBatches, ids, labels, 2, mask="3d"
    )
    images, y = torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    _expect(
        ConfigError, r"batch_size=-1", cifar.GpuLoader, images, y, batch_size=-1, mean=torch.zeros(3), std=torch.ones(3)
    )
    _expect(
        ConfigError,
        r"flip='always' is unknown",
        cifar.GpuLoader,
        images,
        y,
        batch_size=2,
        mean=torch.zeros(3),
        std=torch.ones(3),
        flip="always",
    )
    _expect(ConfigError, r"schedule='cosine' is unknown", cifar.Recipe, schedule="cosine")


@pytest.fixture(scope="module")
def saved_bert(tmp_path_factory):
    """A tiny BertForSequenceClassification and its WordPiece tokenizer (limit 128 tokens), saved the course's way."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("vocab")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]))
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), model_max_length=128)
    torch.manual_seed(0)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=8,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=128,
            num_labels=2,
        )
    )
    path = bert.save_finetuned(model, tokenizer, tmp_path_factory.mktemp("runs") / "bert-imdb")
    return path, tokenizer


def test_truncation_and_max_length_beyond_the_model(saved_bert):
    _, tokenizer = saved_bert
    _expect(
        ConfigError,
        r"truncation='tail' is unknown: choose one of 'head', 'head\+tail'",
        text.tokenize_function,
        tokenizer,
        64,
        "tail",
    )
    message = _expect(
        ConfigError,
        r"max_length=1024 is not allowed: it must be an integer from 3 to 128",
        text.tokenize_function,
        tokenizer,
        1024,
    )
    assert "reads at most 128 tokens" in message
    _expect(ConfigError, r"max_length=2 ", text.encode_reviews, tokenizer, ["good film"], 2)
    assert text.encode_reviews(tokenizer, ["good film"], 128) == [[2, 5, 7, 3]]


@pytest.fixture
def model_copy(saved_bert, tmp_path):
    shutil.copytree(saved_bert[0], tmp_path / "bert-imdb")
    return tmp_path / "bert-imdb"


@pytest.mark.parametrize(
    "damage",
    [
        "no tokenizer",
        "no weights",
        "truncated weights",
        "garbage config",
        "another model's config",
        "weights of another size",
        "truncated tokenizer",
    ],
)
def test_a_damaged_saved_model(model_copy, damage):
    error, match = BadFileError, "truncated or corrupt"
    if damage == "no tokenizer":
        for name in ("tokenizer.json", "vocab.txt"):
            (model_copy / name).unlink(missing_ok=True)
        error, match = bert.ModelNotFoundError, "lacks tokenizer.json or vocab.txt"
    elif damage == "no weights":
        (model_copy / "model.safetensors").unlink()
        error, match = bert.ModelNotFoundError, "lacks model.safetensors"
    elif damage == "truncated weights":
        raw = (model_copy / "model.safetensors").read_bytes()
        (model_copy / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage config":
        (model_copy / "config.json").write_text("{ not json")
    elif damage == "another model's config":
        config = json.loads((model_copy / "config.json").read_text())
        (model_copy / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
        match = "'gpt2' model, not a BERT"
    elif damage == "weights of another size":
        config = json.loads((model_copy / "config.json").read_text())
        (model_copy / "config.json").write_text(json.dumps({**config, "hidden_size": 32, "intermediate_size": 64}))
        match = "cannot be loaded"
    else:
        raw = (model_copy / "tokenizer.json").read_text()
        (model_copy / "tokenizer.json").write_text(raw[: len(raw) // 2])
        match = "tokenizer of .* cannot be loaded"
    with pytest.raises(error, match=match) as info:
        bert.load_eager(model_copy, classifier=True)
    assert str(model_copy) in str(info.value) and "Fix:" in str(info.value)


def test_resolve_bert_checks_a_folder_typed_in_the_config_cell(model_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(bert, "hub_model_available", lambda name: False)
    _expect(
        bert.ModelNotFoundError,
        "neither a model folder nor a model on the Hugging Face hub",
        bert.resolve_bert,
        str(tmp_path / "no-such-model"),
    )
    assert bert.resolve_bert(str(model_copy)) == str(model_copy)
    (model_copy / "config.json").write_text('{"model_type": "t5"}')
    _expect(BadFileError, "is a 't5' model, not a BERT", bert.resolve_bert, str(model_copy))
    (model_copy / "config.json").write_text("[]")
    _expect(BadFileError, "truncated or corrupt", bert.resolve_bert, str(model_copy))


def test_save_finetuned_is_atomic(saved_bert, tmp_path):
    path, tokenizer = saved_bert
    target = shutil.copytree(path, tmp_path / "bert-imdb")
    before = (target / "model.safetensors").read_bytes()

    class Broken:
        def save_pretrained(self, folder):
            Path(folder).mkdir(parents=True)
            (Path(folder) / "model.safetensors").write_bytes(b"half")
            raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        bert.save_finetuned(Broken(), tokenizer, target)
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert-imdb"]  # no .tmp or .old folder left


def test_finetuned_dirs_per_profile_and_the_best_one_found(saved_bert, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    monkeypatch.setenv("COURSE_TINY", "1")
    assert helpers.finetuned_dir() == tmp_path / "runs" / "gpu-tiny" / "bert-imdb"  # a tiny run never writes gpu's
    assert helpers.finetuned_dir("cpu") == tmp_path / "runs" / "cpu-tiny" / "bert-imdb"
    assert helpers.find_finetuned() is None
    shutil.copytree(saved_bert[0], helpers.finetuned_dir())
    assert helpers.find_finetuned() == (tmp_path / "runs" / "gpu-tiny" / "bert-imdb", "gpu-tiny")
    shutil.copytree(saved_bert[0], tmp_path / "runs" / "cpu" / "bert-imdb")  # what a real cpu run saved
    assert helpers.find_finetuned() == (tmp_path / "runs" / "cpu" / "bert-imdb", "cpu")
    (tmp_path / "runs" / "gpu" / "bert-imdb").mkdir(
        parents=True
    )  # an empty gpu folder is reported, not silently skipped
    _expect(bert.ModelNotFoundError, "does not exist or is empty", helpers.find_finetuned)
    monkeypatch.setenv("COURSE_TINY", "0")
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert helpers.runs_dir() == tmp_path / "runs" / "smoke"


def _tiny_run(tmp_path, width=4, epochs=1):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(torch.randn(8, 3), torch.randint(0, 2, (8,))) for _ in range(2)]
    checkpoint = tmp_path / "runs" / "checkpoints" / "run.pt"
    return model, optimizer, batches, checkpoint


@pytest.mark.parametrize("damage", ["truncate", "garbage", "another model", "another optimizer", "not ours"])
def test_a_damaged_checkpoint_stops_before_training(tmp_path, damage):
    model, optimizer, batches, checkpoint = _tiny_run(tmp_path)
    train.fit(model, batches, epochs=1, optimizer=optimizer, checkpoint=checkpoint, progress=False)
    match = "truncated, corrupt, or from another model"
    if damage == "truncate":
        raw = checkpoint.read_bytes()
        checkpoint.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        checkpoint.write_bytes(b"\x00garbage" * 50)
    elif damage == "another model":
        model, optimizer, _, _ = _tiny_run(tmp_path, width=5)
        match = r"another model's weights: \d+ differ, e.g. '0.weight'"
    elif damage == "another optimizer":
        optimizer = torch.optim.SGD([{"params": [p]} for p in model.parameters()], lr=0.1)
        match = "parameter groups"
    else:
        torch.save({"weights": model.state_dict()}, checkpoint)
        match = "KeyError"
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    steps = []
    forward = lambda m, x: steps.append(1) or m(x)  # noqa: E731
    with pytest.raises(BadFileError, match=match) as info:
        train.fit(model, batches, epochs=2, optimizer=optimizer, checkpoint=checkpoint, forward=forward, progress=False)
    assert str(checkpoint) in str(info.value) and f"rm {checkpoint}" in str(info.value)
    assert not steps and all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_epochs_below_one(tmp_path):
    model, optimizer, batches, _ = _tiny_run(tmp_path)
    _expect(ConfigError, r"epochs=0 is not allowed", train.fit, model, batches, epochs=0, optimizer=optimizer)


def test_a_failed_checkpoint_write_leaves_the_last_good_one(tmp_path, monkeypatch):
    model, optimizer, batches, checkpoint = _tiny_run(tmp_path)
    history = train.fit(model, batches, epochs=1, optimizer=optimizer, checkpoint=checkpoint, progress=False)
    good = checkpoint.read_bytes()

    def full_disk(state, path):
        path.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        checkpoints.save_checkpoint(
            checkpoint, model, optimizer, None, torch.amp.GradScaler("cpu", enabled=False), history.to_dict(), None
        )
    assert checkpoint.read_bytes() == good and sorted(p.name for p in checkpoint.parent.iterdir()) == ["run.pt"]


def _rewrite(path, change):
    """Rewrite a Parquet file with one column changed: change(table) -> table."""
    pq.write_table(change(pq.read_table(path)), path)


def _set_column(table, name, values):
    import pyarrow as pa

    return table.set_column(
        table.schema.get_field_index(name), name, pa.array(values, type=table.schema.field(name).type)
    )


@pytest.mark.parametrize(
    "damage, match",
    [
        ("label out of range", r"row 3 has label 7, but imdb's labels run from 0 to 1"),
        ("null label", r"row 0 has label None"),
        ("one class only", r"has no row of class 1: every split of imdb holds every class"),
        ("empty text", r"row 5 has an empty or missing review text"),
        ("no rows", r"holds no rows"),
    ],
)
def test_imdb_contents_are_checked_before_use(data_root, damage, match):
    path = data_root / "imdb" / "train.parquet"
    table = pq.read_table(path)
    labels, texts = table.column("label").to_pylist(), table.column("text").to_pylist()
    if damage == "label out of range":
        labels[3] = 7
    elif damage == "null label":
        labels[0] = None
    elif damage == "one class only":
        labels = [0] * len(labels)
    elif damage == "empty text":
        texts[5] = "   "
    table = _set_column(_set_column(table, "label", labels), "text", texts)
    pq.write_table(table.slice(0, 0) if damage == "no rows" else table, path)
    message = _expect(BadFileError, match, data.read_split, "imdb", "train", ["text", "label"], data_root)
    assert str(path) in message and "python -m helpers.download imdb" in message
    _expect(BadFileError, match, data.load_imdb, data_root)


@pytest.mark.parametrize(
    "damage, match",
    [
        ("label out of range", r"row 2 has label 10, but cifar10's labels run from 0 to 9"),
        ("not an image", r"Image 0 of .*train.parquet \(rows \[0, 100, 199\]\) does not decode"),
        ("another size", r"is 64x64 pixels, not CIFAR-10's 32x32"),
    ],
)
def test_cifar_contents_are_checked_before_use(data_root, damage, match):
    from io import BytesIO

    from PIL import Image

    path = data_root / "cifar10" / "train.parquet"
    table = pq.read_table(path)
    if damage == "label out of range":
        labels = table.column("label").to_pylist()
        labels[2] = 10
        table = _set_column(table, "label", labels)
    else:
        images = table.column("img").to_pylist()
        if damage == "not an image":
            images[0]["bytes"] = b"not an image"
        else:
            buffer = BytesIO()
            Image.new("RGB", (64, 64)).save(buffer, format="PNG")
            images[0]["bytes"] = buffer.getvalue()
        table = _set_column(table, "img", images)
    pq.write_table(table, path)
    _expect(BadFileError, match, cifar.load_cifar10_tensors, 10, 10, root=data_root)
    _expect(BadFileError, match, helpers.load_cifar10, data_root)


def test_a_bad_image_outside_the_sample_is_named_when_decoded(data_root):
    path = data_root / "cifar10" / "test.parquet"
    table = pq.read_table(path)
    images = table.column("img").to_pylist()
    images[7]["bytes"] = images[7]["bytes"][:20]  # a truncated PNG that the 3-row sample does not read
    pq.write_table(_set_column(table, "img", images), path)
    _expect(BadFileError, r"Image 7 of .* does not decode", cifar.load_cifar10_tensors, None, None, root=data_root)


def test_a_test_split_that_is_a_copy_of_train(data_root):
    shutil.copy(data_root / "imdb" / "train.parquet", data_root / "imdb" / "test.parquet")
    _expect(BadFileError, r"test.parquet is a copy of .*train.parquet", data.load_imdb, data_root)
