# Shortcuts for contributors. The whole test command stays `bash ci/check.sh` (CI runs it);
# these targets run its parts with the same tools (the .venv and .tools it installs).
#
#   make install               tools and the editable install with test extras (ci/install-tools.sh)
#   make test                  everything: lint, types, import layers, chart lint, pytest
#   make lint                  ruff check + ruff format --check, mypy --strict, import-linter, chart lint
#   make fmt                   ruff format and ruff's safe fixes on plugin/ tests/ benchmarks/
#   make test-one T=PATH[::NAME]   one test file or test, e.g. T=tests/unit/test_execution_status.py
#   make update-golden T=PATH  rewrite the golden files those tests compare with (review the diff!)

SHELL := /bin/bash
ROOT := $(CURDIR)
export PATH := $(ROOT)/.tools/bin:$(ROOT)/.venv/bin:$(PATH)
SOURCES := plugin tests benchmarks
T ?=

.PHONY: help install test lint fmt test-one update-golden

help:
	@sed -n '4,9p' Makefile | sed 's/^# \{0,1\}//'

install:
	bash ci/install-tools.sh

test:
	bash ci/check.sh

lint:
	ruff check $(SOURCES)
	ruff format --check $(SOURCES)
	mypy
	lint-imports
	bash ci/lint-chart.sh

fmt:
	ruff format $(SOURCES)
	ruff check --fix $(SOURCES)

test-one:
	@test -n "$(T)" || { echo "usage: make test-one T=tests/path/test_x.py[::test_name]" >&2; exit 2; }
	pytest -q $(T)

update-golden:
	@test -n "$(T)" || { echo "usage: make update-golden T=tests/path/test_x.py" >&2; exit 2; }
	UPDATE_GOLDEN=1 pytest -q --update-golden $(T)
