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

.PHONY: setup lab test clean

setup: $(VENV)/.installed

# torch first, on its own: on this CPU machine the pin takes the local CPU wheel; where torch is
# already importable (Colab, a CUDA box set up by hand) it is left alone.
$(VENV)/.installed: pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -r requirements.txt -e ".[offline]"
	touch $@

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) --no-browser $(LAB_ARGS)

test: setup
	COURSE_PROFILE=smoke $(BIN)/python -m pytest $(TESTS)

clean:
	rm -rf $(VENV) runs .pytest_cache
