# Every target sets itself up: a fresh machine needs only Python and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install test demo bench clean

# torch goes in first and pinned, so nothing later can pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

demo: $(STAMP)
	$(PY) -m examples.demo

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
