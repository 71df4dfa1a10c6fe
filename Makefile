# The two commands of the README:
#   make audit   set up, then audit the built-in demo organisation into out/
#   make test    set up, then run the whole test suite
VENV ?= .venv
OUT ?= out
PYTHON ?= python3
# PostgreSQL tests use the local server when it is there (and skip when it is not, unless
# P402_REQUIRE_POSTGRES=1, as in CI).
export P402_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: audit test setup lint bench clean

audit: setup
	$(VENV)/bin/p402 audit --demo --out $(OUT)

test: setup
	$(VENV)/bin/pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	bash .ci/sysdeps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python benchmarks/bench_audit.py

clean:
	rm -rf $(OUT) dist build .mypy_cache .ruff_cache .pytest_cache .hypothesis
