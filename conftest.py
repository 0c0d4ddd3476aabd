"""Repository-wide pytest hook: the solutions editions never run under nbval (see tests/test_solutions.py)."""

from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent / "solutions"


def pytest_collection_modifyitems(config, items):
    """Deselect nbval cells of solutions/*.ipynb, even when named on the command line (pyproject ignores the folder)."""
    keep, dropped = [], []
    for item in items:
        path = Path(str(item.fspath))
        (dropped if path.parent == SOLUTIONS and path.suffix == ".ipynb" else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        print(
            f"\nconftest.py: {len(dropped)} nbval cells of solutions/ deselected: the solutions editions run "
            "with strict checks in tests/test_solutions.py (no stored-output comparison)"
        )
