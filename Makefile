# Orienteer: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench bench-tui clean

$(BIN)/orienteer: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,ml]'
	touch $@

install: $(BIN)/orienteer

demo: install
	$(BIN)/orienteer demo

test: install
	$(BIN)/python -m pytest -n auto -q

bench: install
	$(BIN)/python bench/bench_workspace.py

bench-tui: install
	$(BIN)/python bench/bench_tui.py

clean:
	rm -rf $(VENV) orienteer-demo .orienteer-demo.building orienteer-workspace
