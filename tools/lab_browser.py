"""Drive the course's interactives in JupyterLab in headless Chromium, offline: the harness of issue 23.

Used by tests/test_browser.py (`make test-browser`) and tools/screenshot_interactives.py. For one notebook it
opens JupyterLab's page, runs the cells up to and including its last cell tagged `interactive` (cell metadata tags),
and for each such cell waits until its widgets render, moves each control as a user would (a slider's handle: the
arrow keys; a dropdown: another option; toggle/radio buttons, checkboxes: a click; plain buttons only where a cell has
no other control, as a "Run" button acts on the other inputs) and checks that the picture the cell shows (its images,
SVGs and canvases, compared pixel by pixel) changed, with no traceback in it. Every HTTP request that would leave
localhost is refused and recorded (WebSockets to another host are recorded), and so are the page's console errors
and uncaught exceptions: any of them fails the check.

What it needs (nothing from the network):

    apt-get install -y chromium          # Debian/Ubuntu: the browser (Playwright's own download is not used)
    pip install -e ".[docs]"             # Playwright's Python package; no `playwright install`

JupyterLab runs on a free localhost port with a random token, in a throwaway folder (a copy of the course's
notebooks, so the checkout is never written to), with its own settings, workspaces, runtime and IPython folders,
and is shut down with its kernels at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.chromium import Guard, browser, guarded_page, missing
from tools.lab_server import ROOT, TAG, Lab, copy_course, interactive_cells, notebooks_with_interactives, write_notebook

__all__ = ["ROOT", "Lab", "browser", "check_notebook", "copy_course", "missing", "notebooks_with_interactives"]
__all__ += ["interactive_cells", "write_notebook"]
# ---------------------------------------------------------------------------------------------- the page
# The notebook's panel is found by its path (never "the current widget", which a restored tab could be) and kept
# in window.__coursePanel; it is made the active tab, as the run command acts on the active notebook.
JS_READY = """(path) => { const app = window.jupyterapp; if (!app) return false;
  const w = [...app.shell.widgets('main')].find(w => w.context && w.context.path === path);
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (!(w && w.content && w.content.widgets && w.context.isReady && k && k.status === 'idle')) return false;
  window.__coursePanel = w; app.shell.activateById(w.id); return app.shell.currentWidget === w; }"""
JS_IDLE = """() => { const s = window.__coursePanel.sessionContext.session;
  return !!(s && s.kernel && s.kernel.status === 'idle'); }"""
JS_RUN_THROUGH = """([last, marks]) => { const w = window.__coursePanel, nb = w.content;
  if (window.jupyterapp.shell.currentWidget !== w) throw new Error('the notebook is not the active tab');
  for (const i of marks) nb.widgets[i].node.setAttribute('data-course-cell', String(i));
  window.__courseRun = undefined;
  nb.activeCellIndex = 0; nb.deselectAll(); nb.extendContiguousSelectionTo(last);
  window.jupyterapp.commands.execute('notebook:run-cell').then(
    ok => { window.__courseRun = {ok: !!ok}; }, e => { window.__courseRun = {ok: false, error: String(e)}; });
  return nb.widgets.length; }"""
JS_RUN_PROBLEMS = """(last) => { const nb = window.__coursePanel.content, out = [];
  nb.widgets.slice(0, last + 1).forEach((c, i) => { if (c.model.type !== 'code') return;
    for (const o of c.model.outputs.toJSON())
      if (o.output_type === 'error') out.push(`cell ${i} raised ${o.ename}: ${o.evalue}`);
    if (c.model.sharedModel.getSource().trim() && c.model.executionCount === null) out.push(`cell ${i} did not run`);
  }); return out; }"""
# The picture a cell shows: every image (pixels, so a re-encoded identical picture is no change), canvas and SVG of
# its output area, plus what went wrong in it (tracebacks, widgets that failed to render) and whether it is loading.
JS_VIEW = """(i) => { const area = document.querySelector(`[data-course-cell="${i}"] .jp-Cell-outputArea`);
  if (!area) return null;
  const hash = (bytes) => { let x = 2166136261; for (let k = 0; k < bytes.length; k++) {
    x ^= bytes[k]; x = Math.imul(x, 16777619); } return (x >>> 0).toString(16); };
  const text = (s) => new TextEncoder().encode(s);
  const parts = []; let loading = 0;
  for (const el of area.querySelectorAll('img, canvas, svg')) {
    const tag = el.tagName.toLowerCase();
    if (tag === 'svg' && el.parentElement && el.parentElement.closest('svg')) continue;
    if (tag === 'img') {
      if (!el.complete || !el.naturalWidth) { loading++; continue; }
      const c = document.createElement('canvas'); c.width = el.naturalWidth; c.height = el.naturalHeight;
      const ctx = c.getContext('2d'); ctx.drawImage(el, 0, 0);
      parts.push(`img ${c.width}x${c.height} ${hash(ctx.getImageData(0, 0, c.width, c.height).data)}`);
    } else if (tag === 'canvas') { parts.push(`canvas ${hash(text(el.toDataURL()))}`); }
    else { parts.push(`svg ${hash(text(el.outerHTML))}`); }
  }
  const all = area.innerText;
  const errors = [...area.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText).filter(t => /Traceback|Error/.test(t)).map(t => t.slice(-600));
  for (const m of all.matchAll(/Error (displaying|creating|rendering) (widget|view)[^\\n]*/g)) errors.push(m[0]);
  if (/Loading widget\\.\\.\\./.test(all)) loading++;
  return {parts, loading, errors, text: all.slice(0, 600)}; }"""
CONTROLS = {
    "slider": ".widget-slider, .widget-hslider, .widget-vslider",
    "select": ".widget-dropdown, .widget-select",
    "toggle-buttons": ".widget-toggle-buttons",
    "radio": ".widget-radio",
    "checkbox": ".widget-checkbox",
    "button": "button.widget-toggle-button, button.widget-button",
}
JS_CONTROLS = """([i, kinds]) => { const area = document.querySelector(`[data-course-cell="${i}"] .jp-Cell-outputArea`);
  const found = [];
  for (const el of area.querySelectorAll(Object.values(kinds).join(', '))) {
    if (found.some(f => f.el.contains(el))) continue;
    if (el.disabled || el.querySelector(':disabled')) continue;
    const kind = Object.keys(kinds).find(k => el.matches(kinds[k]));
    const label = el.querySelector('.widget-label');
    const name = (label && label.textContent) || el.title || el.textContent || '';
    found.push({el, kind, label: name.trim().slice(0, 40)});
  }
  return found.map((f, k) => { f.el.setAttribute('data-course-control', String(k));
    return {k, kind: f.kind, label: f.label}; }); }"""
JS_VALUE = "h => h.getAttribute('aria-valuenow') || h.getAttribute('aria-valuetext') || h.style.left || ''"


@dataclass
class ControlResult:
    """One control moved: which, how, and whether the picture changed."""

    label: str
    kind: str
    moved: str
    changed: bool


@dataclass
class CellResult:
    """One interactive cell: did its widgets render, did every control change the picture."""

    index: int
    rendered: bool = False
    controls: list[ControlResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    screenshot: Path | None = None


@dataclass
class NotebookResult:
    """One notebook: running its cells, then each interactive cell; with the page's guard."""

    notebook: str
    cells: list[CellResult] = field(default_factory=list)
    run_problems: list[str] = field(default_factory=list)
    guard: Guard = field(default_factory=Guard)
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Everything that went wrong, one line each (empty: the notebook's interactives work)."""
        cells = [f"cell {c.index}: {p}" for c in self.cells for p in c.problems]
        return self.run_problems + cells + self.guard.problems()

    def summary(self) -> str:
        """A few lines for a person: per cell, per control."""
        lines = [f"{self.notebook}: {len(self.cells)} interactive cell(s), {self.seconds:.0f} s"]
        for c in self.cells:
            moves = ", ".join(
                f"{m.kind} '{m.label}' {m.moved}: {'changed' if m.changed else 'NO CHANGE'}" for m in c.controls
            )
            lines.append(f"  cell {c.index}: {'rendered' if c.rendered else 'NOT rendered'}; {moves or 'no controls'}")
        return "\n".join(lines + [f"  ❌ {p}" for p in self.problems()])


def _view(page, i: int) -> dict | None:
    return page.evaluate(JS_VIEW, i)


def _settle(page, i: int, timeout_s: float, differs_from: list[str] | None = None) -> dict | None:
    """Wait until cell i shows a loaded picture (different from `differs_from` if given) that holds still."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        view = _view(page, i)
        ready = (
            view and view["parts"] and not view["loading"] and view["parts"] != differs_from and page.evaluate(JS_IDLE)
        )
        if ready and view["parts"] == last:
            return view
        last = view["parts"] if ready else None
        if view and view["errors"]:
            return view
        page.wait_for_timeout(250)
    return None


def _move(page, i: int, control: dict) -> str:
    """Move one control as a user would; returns what it did (e.g. '3 → 4')."""
    box = page.locator(f'[data-course-cell="{i}"] [data-course-control="{control["k"]}"]')
    box.scroll_into_view_if_needed()
    kind = control["kind"]
    if kind == "slider":
        handle = box.locator(".noUi-handle, .ui-slider-handle").first
        before = handle.evaluate(JS_VALUE)
        handle.focus()
        handle.press("ArrowRight")
        if handle.evaluate(JS_VALUE) == before:  # at its maximum: the other way
            handle.press("ArrowLeft")
        return f"{before} → {handle.evaluate(JS_VALUE)} (arrow key)"
    if kind == "select":
        select = box.locator("select").first
        options = select.evaluate("s => [s.selectedIndex, s.options.length]")
        if options[1] < 2:
            return "not moved (one option)"
        target = (max(options[0], 0) + 1) % options[1]
        select.select_option(index=target)
        return f"option {options[0]} → {target}"
    if kind == "toggle-buttons":
        button = box.locator("button:not(.mod-active)").first
        label = button.inner_text().strip()
        button.click()
        return f"→ {label!r} (click)"
    if kind == "radio":
        radio = box.locator("input[type=radio]:not(:checked)").first
        radio.click()
        return "→ another choice (click)"
    if kind == "checkbox":
        box.locator("input[type=checkbox]").first.click()
        return "toggled (click)"
    box.click()
    return "clicked"


def _check_cell(page, i: int, render_timeout: float, change_timeout: float, shot: Path | None) -> CellResult:
    result = CellResult(i)
    page.locator(f'[data-course-cell="{i}"]').scroll_into_view_if_needed()
    view = _settle(page, i, render_timeout)
    controls = page.evaluate(JS_CONTROLS, [i, CONTROLS]) if view else []
    if not view or not view["parts"] or view["errors"] or not controls:
        now = _view(page, i) or {}
        why = now.get("errors") or (["no control (slider, dropdown, buttons)"] if view else ["no picture"])
        result.problems.append(
            f"the widget did not render ({'; '.join(why)}); its output reads: {now.get('text', '')[:300]!r}"
        )
        return result
    result.rendered = True
    if any(c["kind"] != "button" for c in controls):  # a plain button (e.g. "Run the model") acts on other inputs
        controls = [c for c in controls if c["kind"] != "button"]
    for n, control in enumerate(controls):
        before = view["parts"]
        moved = _move(page, i, control)
        after = _settle(page, i, change_timeout, differs_from=before)
        changed = bool(after and not after["errors"])
        result.controls.append(ControlResult(control["label"], control["kind"], moved, changed))
        if after and after["errors"]:
            result.problems.append(f"moving {control['kind']} '{control['label']}' raised: {after['errors'][0]}")
        elif not changed:
            result.problems.append(
                f"the picture did not change within {change_timeout:.0f} s of moving "
                f"{control['kind']} '{control['label']}' ({moved})"
            )
        if shot is not None and n == 0:  # the picture after the first control moved: no longer the stored one
            shoot(page, i, shot)
            result.screenshot = shot
        view = after or _view(page, i)
    return result


# The box around cell i's widget outputs (not its printed lines or static pictures), scrolled to the top of the view.
JS_WIDGET_BOX = """(i) => { const area = document.querySelector(`[data-course-cell="${i}"] .jp-Cell-outputArea`);
  const kids = [...area.querySelectorAll(':scope > .jp-OutputArea-child')]
    .filter(c => c.querySelector('.jupyter-widgets')).map(c => c.querySelector('.jp-OutputArea-output') || c);
  const parts = kids.length ? kids : [area];
  parts[0].scrollIntoView({block: 'start'});
  const r = parts.map(p => p.getBoundingClientRect());
  const x = Math.min(...r.map(b => b.left)), y = Math.min(...r.map(b => b.top));
  const right = Math.min(Math.max(...r.map(b => b.right)), window.innerWidth);
  const bottom = Math.min(Math.max(...r.map(b => b.bottom)), window.innerHeight);
  return {x: Math.max(x, 0), y: Math.max(y, 0), width: right - Math.max(x, 0), height: bottom - Math.max(y, 0)}; }"""


def shoot(page, i: int, out: Path) -> None:
    """Save cell i's widget (controls and picture) as a PNG of at most 128 colours."""
    import io

    from PIL import Image  # a dependency of the course (pillow)

    box = page.evaluate(JS_WIDGET_BOX, i)
    page.wait_for_timeout(300)  # let the browser paint
    png = page.screenshot(clip=box)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    image.save(out, optimize=True)


def check_notebook(
    chromium,
    lab: Lab,
    relative: str,
    *,
    run_timeout: float = 600,
    render_timeout: float = 120,
    change_timeout: float = 60,
    screenshots: dict[int, Path] | None = None,
    viewport: tuple[int, int] = (1200, 1000),
) -> NotebookResult:
    """Open `relative` (under lab.root) in JupyterLab, run it through its last interactive cell, move every control.

    `screenshots` maps cell indices to PNG paths, written when the cell's first control has moved.
    """
    start = time.monotonic()
    result = NotebookResult(relative)
    marks = interactive_cells(lab.root / relative)
    page = guarded_page(chromium, result.guard, *viewport)
    try:
        page.goto(lab.notebook_url(relative), timeout=render_timeout * 1000)
        page.wait_for_function(JS_READY, arg=relative, timeout=render_timeout * 1000, polling=250)
        if not marks:
            result.run_problems.append(f"no cell tagged {TAG!r}")
            return result
        page.evaluate(JS_RUN_THROUGH, [marks[-1], marks])
        page.wait_for_function("window.__courseRun !== undefined", timeout=run_timeout * 1000, polling=500)
        run = page.evaluate("window.__courseRun")
        result.run_problems += page.evaluate(JS_RUN_PROBLEMS, marks[-1])
        if not run["ok"] and not result.run_problems:
            result.run_problems.append(f"running the cells failed: {run.get('error', 'a cell did not finish')}")
        if not result.run_problems:
            for i in marks:
                shot = (screenshots or {}).get(i)
                result.cells.append(_check_cell(page, i, render_timeout, change_timeout, shot))
    except Exception as error:  # a timeout, a crashed page: a failed check, with where it happened
        result.run_problems.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        with contextlib.suppress(Exception):
            failed = Path(tempfile.gettempdir()) / f"{Path(relative).stem}_FAILED.png"
            page.screenshot(path=str(failed))
            result.run_problems.append(f"a screenshot of the page: {failed}")
    finally:
        result.seconds = time.monotonic() - start
        with contextlib.suppress(Exception):  # the kernel ends with the check, not with the server
            page.evaluate("async () => window.__coursePanel && window.__coursePanel.sessionContext.shutdown()")
        with contextlib.suppress(Exception):
            page.context.close()
    return result
