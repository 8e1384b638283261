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

# LLaMA-Factory's own dataset loader, in a venv of its own (it pins another transformers, peft and accelerate):
# the export tests load Orienteer's ShareGPT/LLaVA bundles with it when it is there. CI always builds it.
# torch, torchvision, triton and the CUDA libraries (5 GB) are the project venv's own, shared rather than
# installed twice (CI's disk is not always large): $(LF)-shared holds links to just those packages and a .pth
# line puts it on this venv's path, so pip finds them installed (about 1 min, 0.8 GB).
LF := build/llamafactory
SITE := import sysconfig; print(sysconfig.get_paths()["purelib"])
SHARED_WITH_LF := torch torch-*.dist-info torchgen functorch torchvision torchvision-*.dist-info torchvision.libs \
  triton triton-*.dist-info nvidia nvidia_*.dist-info cuda cuda_*.dist-info
llamafactory: $(LF)/bin/llamafactory-cli

$(LF)/bin/llamafactory-cli: | $(VENV)/bin/orienteer
	rm -rf $(LF) $(LF)-shared && mkdir -p $(LF)-shared
	site=$$($(BIN)/python -c '$(SITE)') && cd $$site && for p in $(SHARED_WITH_LF); do \
	  if [ -e "$$p" ]; then ln -s "$$site/$$p" $(CURDIR)/$(LF)-shared/; fi; done
	$(PYTHON) -m venv $(LF)
	echo $(CURDIR)/$(LF)-shared > "$$($(LF)/bin/python -c '$(SITE)')/orienteer-shared-torch.pth"
	$(LF)/bin/python -m pip install -q --upgrade pip
	$(LF)/bin/python -m pip install -q 'llamafactory==0.9.5'

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
