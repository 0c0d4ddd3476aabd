# The README's two commands (each sets up a local .venv first, so a fresh clone needs nothing else):
#   make lab     set up and open the course in JupyterLab
#   make test    set up and run every test: helper unit tests, then every notebook under nbval
# Options: COURSE_DATA_DIR=path/to/data (a local copy of the data sets), TESTS=<path> (one notebook or
# test file), TORCH='torch==2.13.0' (the torch requirement installed when the venv has none).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
TESTS ?=
PORT ?= 8888
# JupyterLab refuses to start as root (containers, some cloud machines) unless told it may
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test clean editions pack install-pack site

setup: $(VENV)/.installed

# torch first, on its own: on this CPU machine the pin takes the local CPU wheel; where torch is
# already importable (Colab, a CUDA box set up by hand) it is left alone.
$(VENV)/.installed: pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -r requirements.txt -e ".[offline]"
	touch $@

# Serves the whole checkout (notebooks/ links to ../solutions/ and ../docs/) and opens notebooks/ first;
# tests/test_claims.py checks that every relative link in the course resolves inside the served root.
lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
		--port=$(PORT) --no-browser $(LAB_ARGS)

test: setup
	COURSE_PROFILE=smoke $(BIN)/python -m pytest $(TESTS)

# The notebooks' interactives (cells tagged `interactive`) in JupyterLab in headless Chromium, offline (issue 23:
# tests/test_browser.py, harness tools/lab_browser.py). Needs the system's Chromium (apt-get install -y chromium)
# and the `docs` extra (Playwright, installed here). `make test` leaves it out (the `browser` marker, pyproject.toml);
# pass COURSE_DATA_DIR=... as for `make test`.
.PHONY: test-browser
test-browser: $(VENV)/.docs-installed
	COURSE_PROFILE=smoke $(BIN)/python -m pytest -m browser -v -rs tests/test_browser.py

$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $@

# ruff check + ruff format --check over the Python files, as configured in pyproject.toml (lines <= 120); CI runs it.
# `make format` rewrites the files the way the check wants them.
.PHONY: lint format
lint: $(VENV)/.lint-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.lint-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(VENV)/.lint-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e ".[lint]"
	touch $@

# The oldest versions we claim (issue 9): .venv-min gets $(TORCH_MIN) and requirements.txt held at the lower bounds
# by requirements-min.txt (a pip constraints file); `make test-min [TESTS=...]` runs the tests there.
# TORCH_MIN, the torch floor, is read from requirements-min.txt (tests/test_claims.py ties it to pyproject.toml).
MIN_VENV ?= .venv-min
TORCH_MIN ?= $(shell grep -m1 '^torch==' requirements-min.txt)
.PHONY: test-min
test-min: $(MIN_VENV)/.installed
	COURSE_PROFILE=smoke $(MIN_VENV)/bin/python -m pytest $(TESTS)

$(MIN_VENV)/.installed: pyproject.toml requirements.txt requirements-min.txt
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q "$(TORCH_MIN)" "setuptools>=70.1"  # bdist_wheel: tests/test_install.py
	$(MIN_VENV)/bin/python -m pip install -q -c requirements-min.txt -e ".[offline]" "jupyterlab>=4" "nbval>=0.11" "pytest>=8"
	$(MIN_VENV)/bin/python -m pip check
	$(MIN_VENV)/bin/python -m pip list --format=freeze | grep -iE '^(torch|transformers|datasets|huggingface.hub|pyarrow|numpy|matplotlib|ipywidgets|tqdm|pillow)=='
	touch $@

# the student editions notebooks/NN_name.ipynb, built from their sources solutions/NN_name.ipynb. tools/editions.py
# needs nbformat only, so this target installs no torch: a contributor fixing a typo downloads nothing heavy.
editions:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import nbformat" 2>/dev/null || $(BIN)/python -m pip install -q nbformat
	$(BIN)/python -m tools.editions

# The offline pack (tools/pack.py, docs/teaching.md), one builder for rooms and GPU nodes: `make pack` on a machine
# with internet builds PACK_DIR with wheels for PACK_TARGETS, the data sets PACK_DATA (from COURSE_DATA_DIR or data/),
# the models PACK_MODELS, INSTALL and manifest.json. For a machine that already has PyTorch (a GPU node):
#   make pack PACK_TORCH=present PACK_TARGETS=linux-x86_64:3.12 PACK_DATA=cifar10 PACK_EXTRAS=offline,bench
# (no torch wheels; installing makes the venv with --system-site-packages and reuses the machine's torch).
# `make install-pack PACK=dir` installs the course from a pack into $(VENV) with no network; without make:
# python3 -m tools.pack install --pack dir.
PACK_DIR ?= pack
PACK ?= $(PACK_DIR)
PACK_TARGETS ?= linux-x86_64:3.11,3.12 macos-arm64:3.11,3.12
PACK_TORCH ?= $(TORCH)
PACK_DATA ?= imdb,cifar10
PACK_MODELS ?= minilm,bert-base-uncased
PACK_EXTRAS ?= offline
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

pack:  # uv resolves each platform's requirements (pip cannot for another OS); installed when missing
	$(PYTHON) -c "import uv" 2>/dev/null || command -v uv >/dev/null || $(PYTHON) -m pip install -q uv
	$(PYTHON) -m tools.pack build --out "$(PACK_DIR)" --targets $(PACK_TARGETS) --torch "$(PACK_TORCH)" \
		--torch-index "$(TORCH_INDEX)" --data "$(PACK_DATA)" --models "$(PACK_MODELS)" --extras "$(PACK_EXTRAS)"

install-pack:
	$(PYTHON) -m tools.pack install --pack "$(PACK)" --venv "$(VENV)"

# The course website (site/: Sphinx + myst-nb): every notebook with its stored outputs, never re-executed,
# offline; warnings are errors. Open it with `python -m http.server -d _build/site` (http://localhost:8000).
SITE_DIR ?= _build/site
site: $(VENV)/.site-installed
	$(BIN)/sphinx-build -W --keep-going -E -q -c site -b html . $(SITE_DIR)
	@echo "built $(SITE_DIR)/index.html; open it with: python -m http.server -d $(SITE_DIR)"

$(VENV)/.site-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e ".[site]"
	touch $@

# The GPU check (tools/gpu_check.py, benchmarks/README.md): on a machine with a CUDA GPU and the course installed
# (`make setup`, or an offline pack), `make gpu-check` measures what the course claims on a GPU, in priority order, and
# writes every finished step and notebook cell to benchmarks/results/gpu/<date>_<gpu>/ as it ends. ARGS go to it, e.g.
# ARGS="--only env,cifar10_speed --budget 600 --out results/gpu". Without make: python -m tools.gpu_check [ARGS].
# `make gpu-check-dry` runs every step at tiny size on the CPU through the same code (runs/gpu-check-dry/).
ARGS ?=
.PHONY: gpu-check gpu-check-dry
gpu-check: setup
	$(BIN)/python -m tools.gpu_check $(ARGS)
gpu-check-dry: setup  # accelerate (the `bench` extra) for the Trainer's side of the IMDB benchmark
	$(BIN)/python -c "import accelerate" 2>/dev/null || $(BIN)/python -m pip install -q "accelerate>=1.0"
	$(BIN)/python -m tools.gpu_check --dry $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache _build
