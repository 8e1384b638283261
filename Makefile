# Orienteer: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV)/bin)
SHELL := /bin/bash
# Model-free tests for day-to-day work (the markers are registered in pyproject.toml, applied in tests/conftest.py).
FAST := not ml and not tmux and not slurm and not slow
# core/ data/ jobs/ tui/ install as orienteer.* through setuptools' package-dir, which mypy and import-linter
# cannot follow: they read this link tree instead, and mypy's paths are mapped back to the real files.
TYPECHECK := build/typecheck

.PHONY: install demo test test-fast llamafactory check lint typecheck imports typecheck-tree bench bench-tui clean

$(VENV)/bin/orienteer: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,ml,check]'
	touch $@

install: $(VENV)/bin/orienteer

demo: install
	$(BIN)/orienteer demo

test: install
	$(BIN)/python -m pytest -n auto -q

test-fast: install
	$(BIN)/python -m pytest -n auto -q -m "$(FAST)"

# LLaMA-Factory's own dataset loader, in a venv of its own (it pins another transformers): the export tests
# load Orienteer's ShareGPT/LLaVA bundles with it when it is there. CI always builds it (about 4 min, 6 GB).
llamafactory: build/llamafactory/bin/llamafactory-cli

build/llamafactory/bin/llamafactory-cli:
	$(PYTHON) -m venv build/llamafactory
	build/llamafactory/bin/python -m pip install -q --upgrade pip
	build/llamafactory/bin/python -m pip install -q 'llamafactory==0.9.5'

# ruff, mypy and import-linter; each runs even when an earlier one fails, and check fails if any did.
check: install
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory typecheck || status=1; \
	$(MAKE) --no-print-directory imports || status=1; \
	exit $$status

lint:
	$(BIN)/ruff check .

typecheck: typecheck-tree
	set -o pipefail; $(BIN)/mypy | sed -E 's#^$(TYPECHECK)/orienteer/(core|data|jobs|tui)/#\1/#; s#^$(TYPECHECK)/orienteer/#orienteer/#'

imports: typecheck-tree
	cd $(TYPECHECK) && $(BIN)/lint-imports $(CURDIR)/pyproject.toml

typecheck-tree:
	@rm -rf $(TYPECHECK)/orienteer && mkdir -p $(TYPECHECK)/orienteer
	@for d in core data jobs tui; do ln -s ../../../$$d $(TYPECHECK)/orienteer/$$d; done
	@for f in orienteer/*; do case $$f in */__pycache__) ;; *) ln -s ../../../$$f $(TYPECHECK)/$$f;; esac; done

bench: install
	$(BIN)/python bench/bench_workspace.py

bench-tui: install
	$(BIN)/python bench/bench_tui.py

clean:
	rm -rf $(VENV) build orienteer-demo .orienteer-demo.building orienteer-workspace
