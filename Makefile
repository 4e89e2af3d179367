# Quick start:  make demo   (encode + decode a real 4-camera sample)   |   make test
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all bench clean

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml; pip takes the local CPU build and nothing pulls CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mvcodec demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/conventional_anchors.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
