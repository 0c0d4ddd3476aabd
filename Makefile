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
# tests/test_browser.py, harness scripts/lab_browser.py). Needs the system's Chromium (apt-get install -y chromium)
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
	$(MIN_VENV)/bin/python -m pip install -q -r requirements.txt -c requirements-min.txt -e ".[offline]"
	$(MIN_VENV)/bin/python -m pip check
	$(MIN_VENV)/bin/python -m pip list --format=freeze | grep -iE '^(torch|transformers|datasets|huggingface.hub|pyarrow|numpy|matplotlib|ipywidgets|tqdm|pillow)=='
	touch $@

# the student editions notebooks/NN_name.ipynb, built from their sources solutions/NN_name.ipynb. scripts/editions.py
# needs nbformat only, so this target installs no torch: a contributor fixing a typo downloads nothing heavy.
editions:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import nbformat" 2>/dev/null || $(BIN)/python -m pip install -q nbformat
	$(BIN)/python scripts/editions.py

# The offline room pack (scripts/pack.py, docs/teaching.md): `make pack` on a machine with internet builds
# PACK_DIR with wheels for PACK_TARGETS, the data sets (from COURSE_DATA_DIR or data/), the models, INSTALL
# and manifest.json; `make install-pack PACK=dir` installs the course from it into $(VENV) with no network.
PACK_DIR ?= pack
PACK ?= $(PACK_DIR)
PACK_TARGETS ?= linux-x86_64:3.11,3.12 macos-arm64:3.11,3.12
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

pack:  # uv resolves each platform's requirements (pip cannot for another OS); installed when missing
	$(PYTHON) -c "import uv" 2>/dev/null || command -v uv >/dev/null || $(PYTHON) -m pip install -q uv
	$(PYTHON) scripts/pack.py build --out "$(PACK_DIR)" --targets $(PACK_TARGETS) --torch "$(TORCH)" --torch-index "$(TORCH_INDEX)"

install-pack:
	$(PYTHON) scripts/pack.py install --pack "$(PACK)" --venv "$(VENV)"

# The course website (site/: Sphinx + myst-nb): every notebook with its stored outputs, never re-executed,
# offline; warnings are errors. Open it with `python -m http.server -d _build/site` (http://localhost:8000).
SITE_DIR ?= _build/site
site: $(VENV)/.site-installed
	$(BIN)/sphinx-build -W --keep-going -E -q -c site -b html . $(SITE_DIR)
	@echo "built $(SITE_DIR)/index.html; open it with: python -m http.server -d $(SITE_DIR)"

$(VENV)/.site-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e ".[site]"
	touch $@

# The GPU proof (issue 22, scripts/gpu_proof.py): `make gpu-bundle` writes .gpu/call1 and .gpu/call2 (ignored), what
# each device command carries; `make gpu-proof-dry` runs every step at tiny size on this CPU and prints the plan;
# on the GPU machine `make gpu-proof CALL=1` (carry .gpu/call1), then CALL=2, with the image's python3.
.PHONY: gpu-bundle gpu-proof gpu-proof-dry
CALL ?= 1
gpu-bundle: setup
	$(BIN)/python scripts/gpu_proof.py bundle
gpu-proof-dry: setup  # accelerate (the `bench` extra) for the Trainer's side of the IMDB benchmark
	$(BIN)/python -c "import accelerate" 2>/dev/null || $(BIN)/python -m pip install -q "accelerate>=1.0"
	$(BIN)/python scripts/gpu_proof.py dry
gpu-proof:
	python3 scripts/gpu_proof.py run --call $(CALL)

clean:
	rm -rf $(VENV) runs .pytest_cache _build
