# Cool Storage: the two commands of the README, and a few helpers.
#
#   make run    create .venv, install, and serve (state in ./var; first start prints the
#               admin user, its S3 key and the endpoints)
#   make test   install what the tests need (Debian packages, Python packages), run pytest
#   make lint   ruff and mypy
#   make bench  run the benchmarks (each prints comparable figures)
#   make clean  remove caches and build leftovers (never ./var: it holds your data and key)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
PYTEST_ARGS ?=

PACKAGES := gateway protocols tiering catalog admin connectors
# Checked by `make lint` and by `make test`: every package, the tests and the benchmarks.
LINT_PATHS := $(PACKAGES) tests bench

.PHONY: run test lint bench clean venv install install-test test-deps

# Stamps make the installs idempotent: pip runs again only when pyproject.toml changes.
$(BIN)/python:
	scripts/ensure-venv.sh $(PYTHON) $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

venv: $(BIN)/python
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	$(BIN)/coolstorage serve

test-deps:
	scripts/install-test-deps.sh

test: test-deps install-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy $(PACKAGES) tests
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy $(PACKAGES) tests

bench: install-test
	@set -e; found=0; for script in bench/*.py; do \
		[ -e "$$script" ] || continue; found=1; \
		echo "== $$script"; $(BIN)/python "$$script"; \
	done; [ $$found -eq 1 ] || echo "no benchmarks yet"

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f $(VENV)/.installed $(VENV)/.installed-test
