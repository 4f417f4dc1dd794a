# The two commands of the README: `make plan` (set up, then plan dev offline) and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

.PHONY: install plan plan-all test lint typecheck schema docs clean distclean

# scripts/check_python.py stops a too-old $(PYTHON) before it creates anything, and removes a $(VENV) that
# another interpreter built (`venv` over it would keep the old bin/python).
$(STAMP): pyproject.toml scripts/install_helm.py scripts/check_python.py
	$(PYTHON) scripts/check_python.py --venv $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python scripts/install_helm.py $(BIN)
	touch $(STAMP)

install: $(STAMP)

plan: $(STAMP)
	$(BIN)/mlstack plan dev
	$(BIN)/mlstack check dev
	$(BIN)/mlstack cost dev

plan-all: $(STAMP)
	$(BIN)/mlstack plan --all

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

schema: $(STAMP)
	$(BIN)/mlstack schema --out docs/reference/stack-file.schema.json

docs: schema
	$(BIN)/python -m mlstack.docgen
	$(BIN)/python -m mlstack.reference
	$(BIN)/python -m policies.docs

# `clean` keeps $(VENV) (a rebuild takes minutes); `distclean` removes it too, for a fresh start.
clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
