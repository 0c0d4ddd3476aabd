"""tools/editions.py: the student edition of a source notebook, and every committed one up to date."""

from pathlib import Path

import nbformat
import pytest

from tools import editions

ROOT = Path(__file__).resolve().parent.parent

SOURCES = sorted((ROOT / "solutions").glob("*.ipynb"))


def code(source, tags=(), outputs=True, cell_id=None):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    cell.execution_count = 3
    if outputs:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="the answer is 42\n")]
    if cell_id:
        cell.id = cell_id
    return cell


def small_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 99 · A lesson\n\nsmoke cpu gpu"),
        code("print('lesson')", cell_id="lesson"),
        nbformat.v4.new_markdown_cell("## Exercises\n\n### Exercise 1"),
        code("answer = None\n### BEGIN SOLUTION\nanswer = 42\nprint(answer)\n### END SOLUTION", cell_id="ex1"),
        code(
            "def f(x):\n    y = None\n    ### BEGIN SOLUTION\n    y = 2 * x\n    ### END SOLUTION\n    return y",
            outputs=False,
            cell_id="ex2",
        ),
        code("check(answer)", tags=["check"], cell_id="chk"),
        nbformat.v4.new_markdown_cell("The answer is 42 because ..."),
        nbformat.v4.new_markdown_cell("## Further reading\n\n- a paper"),
    ]
    nb.cells[6].metadata["tags"] = ["solution"]
    return nb


def test_regions_become_your_code_here_at_their_indentation():
    out = editions.student_edition(small_notebook(), "99_lesson.ipynb")
    sources = {c.id: c.source for c in out.cells}
    assert sources["ex1"] == "answer = None\n# YOUR CODE HERE\npass"
    assert sources["ex2"] == "def f(x):\n    y = None\n    # YOUR CODE HERE\n    pass\n    return y"
    assert "42" not in "".join(c.source for c in out.cells if c.cell_type == "code")


def test_student_function_still_runs():
    out = editions.student_edition(small_notebook(), "99_lesson.ipynb")
    namespace = {}
    exec(next(c.source for c in out.cells if c.id == "ex2"), namespace)
    assert namespace["f"](3) is None


def test_solution_cells_dropped_outputs_cleared_ids_kept():
    source = small_notebook()
    out = editions.student_edition(source, "99_lesson.ipynb")
    by_id = {c.id: c for c in out.cells}
    assert not any("42 because" in c.source for c in out.cells), "a cell tagged solution survived"
    assert by_id["ex1"].outputs == [] and by_id["ex1"].execution_count is None
    assert by_id["chk"].outputs == []
    assert by_id["lesson"].outputs[0].text == "the answer is 42\n", "lesson outputs must be kept"
    kept = [c.id for c in source.cells if "solution" not in c.metadata.get("tags", [])]
    assert [c.id for c in out.cells if c.id != editions.POINTER_ID] == kept
    assert source.cells[3].outputs, "the source must not be changed"


def test_execution_metadata_and_widget_state_stripped():
    out = editions.student_edition(small_notebook(), "99_lesson.ipynb")
    assert "widgets" not in out.metadata
    assert all("execution" not in c.metadata for c in out.cells)


def test_progress_bar_first_frames_are_dropped_and_everything_else_kept():
    nb = small_notebook()
    bar = lambda text: nbformat.v4.new_output(  # noqa: E731  what a tqdm widget leaves once its state is gone
        "display_data", data={"text/plain": text, "application/vnd.jupyter.widget-view+json": {"model_id": "x"}}
    )
    nb.cells[1].outputs = [
        bar("epoch 1/3:   0%|          | 0/79 [00:00<?, ?it/s]"),
        bar("Generating train split: 0 examples [00:00, ? examples/s]"),
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1/3 | train_loss 1.2\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "VBox(children=(Text(),))"}),
    ]
    out = editions.clean(nb)
    assert [o.output_type for o in out.cells[1].outputs] == ["stream", "display_data"]
    assert out.cells[1].outputs[1].data == {"text/plain": "VBox(children=(Text(),))"}


def test_pointer_to_the_solutions_closes_the_exercises_section():
    out = editions.student_edition(small_notebook(), "99_lesson.ipynb")
    index = [c.id for c in out.cells].index(editions.POINTER_ID)
    assert out.cells[index + 1].source.startswith("## Further reading")
    assert "../solutions/99_lesson.ipynb" in out.cells[index].source
    assert "colab.research.google.com/github/" in out.cells[index].source
    assert "/blob/main/solutions/99_lesson.ipynb" in out.cells[index].source


def test_build_is_deterministic_and_idempotent():
    nb = small_notebook()
    first = editions.render(editions.student_edition(nb, "99_lesson.ipynb"))
    again = editions.render(editions.student_edition(nb, "99_lesson.ipynb"))
    assert first == again
    rebuilt = editions.student_edition(nbformat.reads(first, as_version=4), "99_lesson.ipynb")
    assert editions.render(rebuilt) == first, "building a student edition again must not change it"


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without a"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ],
)
def test_unmatched_markers_raise_a_clear_error(source, message):
    nb = small_notebook()
    nb.cells[3].source = source
    with pytest.raises(editions.EditionError, match=message):
        editions.student_edition(nb, "99_lesson.ipynb")


def test_there_are_sources():
    assert SOURCES, "solutions/ holds no source notebook"


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_committed_student_edition_is_up_to_date(path):
    target = ROOT / "notebooks" / path.name
    assert target.exists(), f"notebooks/{path.name} is missing: run `make editions`"
    built = editions.render(editions.student_edition(nbformat.read(path, as_version=4), path.name))
    assert target.read_text() == built, f"notebooks/{path.name} is stale: run `make editions` and commit it"


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_no_solution_left_in_the_student_edition(path):
    student = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
    for cell in student.cells:
        assert editions.BEGIN not in cell.source and "solution" not in cell.metadata.get("tags", [])
        if "check" in cell.metadata.get("tags", []):
            assert not cell.get("outputs"), f"cell {cell.id}: a check cell with stored output"
