# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make test` runs the suite in this many processes (pytest-xdist); 0 runs it in one.
TEST_WORKERS ?= 2

.PHONY: demo test lint docs setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/python examples/backup.py demo

test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

lint: setup
	$(BIN)/ruff check src tests examples bench docs/_hooks.py
	$(BIN)/ruff format --check src tests examples bench docs/_hooks.py
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

docs: setup
	$(BIN)/mkdocs serve
