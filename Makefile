# Two entry points that set themselves up on a fresh machine (Python 3.11 only):
#   make run   - verify the built-in cases and write reports/ (summary.csv, details.csv, report.html)
#   make test  - run the test suite (the whole built-in library included)
# torch is installed *before* the project, pinned to the CPU build that pip
# finds on this machine, so pip never pulls a multi-GB CUDA build.
PYTHON ?= python3.11
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-quick bench setup clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/verifier run

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/fd_accuracy.py

clean:
	rm -rf $(VENV) reports/*.csv reports/*.html
