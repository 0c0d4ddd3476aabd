"""JupyterLab on localhost for the browser checks (tools/lab_browser.py): a free port, a random token, throwaway
settings, a copy of the course; shut down with its kernels at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "interactive"
COURSE_PARTS = ("pyproject.toml", "helpers", "exercises", "diagrams", "notebooks", "solutions", "docs")
"""What a course copy holds: the notebooks with what they link to, and what makes it a checkout (helpers.paths)."""


def interactive_cells(notebook: Path) -> list[int]:
    """The indices of a notebook's cells tagged `interactive`."""
    cells = json.loads(notebook.read_text())["cells"]
    return [i for i, c in enumerate(cells) if TAG in c.get("metadata", {}).get("tags", [])]


def notebooks_with_interactives(folder: Path = ROOT / "notebooks") -> list[Path]:
    """The student editions that have at least one cell tagged `interactive`."""
    return [p for p in sorted(folder.glob("*.ipynb")) if interactive_cells(p)]


def copy_course(dest: Path) -> Path:
    """A copy of the course's notebooks and what they need in `dest` (the checkout is never written to)."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    for part in COURSE_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=ignore, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, dest / part)
    return dest


def write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    """Write a notebook of (cell type, source, tags) cells, with the python3 kernel."""
    nb_cells = []
    for kind, source, tags in cells:
        cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"cells": nb_cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}, indent=1
        )
    )
    return path


# ---------------------------------------------------------------------------------------------- the server
def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(folder: Path) -> None:
    """JupyterLab user settings for a robot: no news or update checks (network), no autosave, every cell in the DOM."""
    settings = {
        ("apputils-extension", "notification"): {
            "fetchNews": "false",
            "checkForUpdates": False,
            "doNotDisturbMode": True,
        },
        ("docmanager-extension", "plugin"): {"autosave": False},
        ("notebook-extension", "tracker"): {"windowingMode": "none"},
    }
    for (plugin, name), values in settings.items():
        target = folder / "@jupyterlab" / plugin / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def kernel_spec(folder: Path, python: str) -> None:
    """The `python3` kernel spec in a data folder of our own, running `python` (e.g. .venv-min's, for ipywidgets 7)."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        )
    )


class Lab:
    """JupyterLab serving `root` on a free localhost port with a random token; a context manager that always stops it.

    `env` is added to the server's (and so the kernels') environment; `kernel_python` runs the kernels with another
    Python. Everything JupyterLab writes besides the notebooks' folder goes into a temporary folder.
    """

    def __init__(
        self, root: Path, env: dict[str, str] | None = None, kernel_python: str | None = None, timeout: float = 120.0
    ) -> None:
        self.root, self.extra_env, self.kernel_python = Path(root), dict(env or {}), kernel_python
        self.timeout = timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="lab-browser-")
        self.home = Path(self._tmp.name)
        self.log_path = self.home / "jupyterlab.log"

    def notebook_url(self, relative: str) -> str:
        """The page that opens one notebook (a path relative to the served root) alone, in a workspace of its own."""
        return f"{self.url}/lab/workspaces/check-{secrets.token_hex(4)}/tree/{relative}?reset&token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of JupyterLab's log, for a failure's message."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> Lab:
        lab_settings(self.home / "settings")
        env = dict(
            os.environ,
            **self.extra_env,
            JUPYTERLAB_SETTINGS_DIR=str(self.home / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.home / "rt"),
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            IPYTHONDIR=str(self.home / "ipython"),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        if self.kernel_python:
            kernel_spec(self.home / "data", self.kernel_python)
            env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(self.home / "data"), env.get("JUPYTER_PATH")]))
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "getuid") and os.getuid() == 0:
            command.append("--allow-root")  # JupyterLab refuses root (containers) unless told
        with open(self.log_path, "w") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=3):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {self.timeout:.0f} s:\n{self.log_tail()}")

    def _children(self) -> list:
        """The server's descendants (its kernels run in sessions of their own), to be sure they end too."""
        try:
            import psutil  # ipykernel's dependency

            return psutil.Process(self.process.pid).children(recursive=True)
        except Exception:
            return []

    def stop(self) -> None:
        """Shut down the kernels and the server (the API first, then SIGTERM, then SIGKILL); remove the temp folder."""
        if self.process is not None and self.process.poll() is None:
            children = self._children()
            request = urllib.request.Request(
                f"{self.url}/api/shutdown", method="POST", headers={"Authorization": f"token {self.token}"}
            )
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=10).close()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
            for child in children:  # kernels left behind by a server that did not shut down cleanly
                with contextlib.suppress(Exception):
                    if child.is_running():
                        child.kill()
        self._tmp.cleanup()
