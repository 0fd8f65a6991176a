# The two commands a user needs: `make local` (install everything, run the pipeline locally)
# and `make test` (install everything, lint, run the whole test suite). `.ci/run` calls `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The suite is CPU-bound and its tests are independent, so it runs on one worker per core (at most 4:
# each worker synthesizes the app once, which takes a Node process of its own).
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, os.cpu_count() or 1))')

.PHONY: setup local up test lint bench synth browser clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt lambdas/shared/requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/pip download --quiet --disable-pip-version-check -r lambdas/shared/requirements.txt \
		-d .cache/layer-wheels --platform manylinux2014_x86_64 --implementation cp \
		--python-version 3.14 --only-binary=:all:
	touch $(STAMP)

local: setup
	$(BIN)/rekpipe local run $(FOLDER)

up: setup
	$(BIN)/rekpipe local up

lint: setup
	$(BIN)/ruff check .

test: lint browser
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: setup
	$(BIN)/python -m bench

# Debian's chromium, for the report's browser test (tests/report/test_report_browser.py skips without it).
# Installs only as root with apt-get (CI); elsewhere it says what to run.
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is not installed: run 'sudo apt-get install chromium' to run the report's browser test"; fi

synth: setup
	CDK_OUTDIR=cdk.out $(BIN)/python cdk_app.py

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .ruff_cache
