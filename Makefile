# The two commands of the README:
#   make audit   set up what the audit needs, then audit the built-in demo organisation into out/
#   make test    set up the test tools too, then run the whole test suite
# and, for development: make test-fast (all but the tests marked slow), make lint, make bench,
# make hooks (the pre-commit hooks), make lock (take newer versions of the dependencies).
VENV ?= .venv
OUT ?= out
PYTHON ?= python3
LOCK ?= constraints.txt
PIP = $(VENV)/bin/python -m pip install --disable-pip-version-check --progress-bar on -c $(LOCK)
# PostgreSQL tests use the local server when it is there (and skip when it is not, unless
# P402_REQUIRE_POSTGRES=1, as in CI).
export P402_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: audit test test-fast setup setup-dev lint hooks bench lock clean

audit: setup
	$(VENV)/bin/p402 audit --demo --out $(OUT)

test: setup-dev
	$(VENV)/bin/pytest

test-fast: setup-dev
	$(VENV)/bin/pytest -m "not slow"

# The main job's packages only (p402 and what it imports), at the versions of $(LOCK).
setup: $(VENV)/.installed

# Adds the test and lint tools (the [dev] extra): pytest, hypothesis, mypy, ruff, the SDKs...
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml $(LOCK)
	bash .ci/sysdeps
	@echo "== setting up $(VENV): p402 and the packages the audit needs, from $(LOCK)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	@echo "== adding the test and lint tools to $(VENV)"
	$(PIP) -e '.[dev]'
	touch $@

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

hooks: setup-dev
	$(VENV)/bin/pre-commit install

bench: setup
	$(VENV)/bin/python benchmarks/bench_audit.py

lock:
	bash .ci/lock

clean:
	rm -rf $(OUT) dist build .mypy_cache .ruff_cache .pytest_cache .hypothesis
