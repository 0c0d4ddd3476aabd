"""Data loading from small Parquet files written here in the hub's schema, and the missing-data error."""

from collections import Counter
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image, Value
from PIL import Image as PILImage

from helpers import data, download, paths
from helpers.cifar import images
from helpers.errors import CourseError


def _write_imdb(root, n=20):
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    for split in ("train", "test"):
        # sorted by label, like the real copy
        rows = {"text": [f"{split} review {i}" for i in range(n)], "label": [0] * (n // 2) + [1] * (n - n // 2)}
        path = root / "imdb" / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(str(path))


def _png(color, corner=(0, 0, 0)):
    buf = BytesIO()
    image = PILImage.new("RGB", (32, 32), color)
    image.putpixel((31, 31), corner)  # the test split differs from the train split here
    image.save(buf, format="PNG")
    return buf.getvalue()


def _write_cifar(root):
    features = Features({"img": Image(), "label": ClassLabel(names=list(images.CIFAR10_CLASSES))})
    colors = [(10 * k, 255 - 10 * k, 7) for k in range(10)]
    for split in ("train", "test"):
        corner = (0, 0, 0) if split == "train" else (255, 255, 255)
        rows = {"img": [{"bytes": _png(c, corner), "path": None} for c in colors], "label": list(range(10))}
        path = root / "cifar10" / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(str(path))
    return colors


def test_data_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path.resolve()
    monkeypatch.delenv("COURSE_DATA_DIR")
    root = Path(__file__).resolve().parent.parent
    for where in (root, root / "notebooks", root / "solutions"):  # a checkout: its data/, wherever a notebook runs
        monkeypatch.chdir(where)
        assert paths.data_dir() == root / "data"
    monkeypatch.chdir(tmp_path)  # anywhere else (Colab's /content): the working directory's data/
    assert paths.data_dir() == tmp_path / "data"


def test_load_imdb_reads_hub_schema(tmp_path):
    _write_imdb(tmp_path)
    ds = data.load_imdb(tmp_path)
    assert set(ds) == {"train", "test"}
    assert ds["train"].features["label"].names == ["neg", "pos"]
    assert ds["test"][0]["text"] == "test review 0"


def test_load_cifar10_and_decode_to_uint8(tmp_path):
    colors = _write_cifar(tmp_path)
    ds = data.load_cifar10(tmp_path)
    assert ds["train"].features["label"].names[3] == "cat"
    x = images.images_to_tensor(ds["test"])
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.uint8
    assert x[:, :, 0, 0].tolist() == [list(c) for c in colors]  # PNG is lossless: exact pixels


def test_read_split_is_the_same_data_through_pyarrow(tmp_path):
    colors = _write_cifar(tmp_path)
    columns = data.read_split("cifar10", "train", ("img", "label"), tmp_path)
    assert columns["label"] == list(range(10))
    x = images.decode_images([item["bytes"] for item in columns["img"]])
    assert torch.equal(x, images.images_to_tensor(data.load_cifar10(tmp_path)["train"]))
    assert x[:, :, 2, 3].tolist() == [list(c) for c in colors]
    _write_imdb(tmp_path)
    assert data.read_split("imdb", "test", ["text"], tmp_path)["text"][:2] == ["test review 0", "test review 1"]


def test_missing_offline_names_files_and_remedy(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_imdb(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "imdb" / "train.parquet") in message
    assert "python -m helpers.download imdb" in message and "COURSE_DATA_DIR" in message


def test_missing_and_hub_unreachable_fails_fast(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(data, "hub_reachable", lambda: False)
    with pytest.raises(data.DataNotFoundError, match="cannot be reached"):
        data.load_cifar10(tmp_path)


def test_unknown_dataset_is_an_error():
    with pytest.raises(CourseError, match="name=.mnist. is unknown: choose one of .imdb., .cifar10."):
        data.load_course_dataset("mnist")


def test_stratified_subset_is_balanced_seeded_and_not_a_head_slice():
    labels = [0] * 600 + [1] * 300 + [2] * 100  # sorted, unbalanced
    ds = Dataset.from_dict({"i": list(range(1000)), "label": labels})
    sub = data.stratified_subset(ds, 100, seed=1)
    assert Counter(sub["label"]) == {0: 60, 1: 30, 2: 10}
    assert len(set(sub["i"])) == 100
    assert sub["i"] == data.stratified_subset(ds, 100, seed=1)["i"]
    assert sub["i"] != data.stratified_subset(ds, 100, seed=2)["i"]
    assert len(set(sub["label"][:10])) > 1  # shuffled, not grouped by class


def test_stratified_subset_rounds_to_the_exact_size():
    ds = Dataset.from_dict({"label": [0] * 5 + [1] * 5 + [2] * 5})
    assert len(data.stratified_subset(ds, 7, seed=0)) == 7


def test_stratified_subset_of_everything_is_a_permutation():
    ds = Dataset.from_dict({"i": list(range(50)), "label": [0] * 25 + [1] * 25})
    sub = data.stratified_subset(ds, None, seed=0)
    assert sorted(sub["i"]) == list(range(50)) and sub["i"] != list(range(50))


def test_download_cli_reports_cached_sets(monkeypatch, tmp_path, capsys):
    _write_imdb(tmp_path)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    download.main(["imdb"])
    assert "imdb: train 20 rows, test 20 rows" in capsys.readouterr().out


def test_stratified_indices_accept_tensors():
    idx = data.stratified_indices(torch.tensor([0] * 80 + [1] * 20), 10, seed=0)
    assert sorted(np.asarray([0] * 80 + [1] * 20)[idx].tolist()) == [0] * 8 + [1] * 2


def test_download_cli_defaults_to_everything_and_refuses_unknown_names(monkeypatch):
    asked = []
    monkeypatch.setattr(download, "download", asked.append)
    download.main([])
    download.main(["imdb"])
    assert asked == [("imdb", "cifar10", "bert"), ["imdb"]]
    monkeypatch.undo()
    with pytest.raises(CourseError, match="download='mnist' is unknown"):
        download.download(["mnist"])
