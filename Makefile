# toil.cluster: `make test` and `make demo` work on a fresh machine from nothing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TOIL_VENV := .venv-toil
BIN := $(VENV)/bin
COLLECTION := $(VENV)/collections/ansible_collections/toil/cluster
# Debian packages the tests need (installed only when missing).
DEB_PACKAGES := git ca-certificates shellcheck util-linux

export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(VENV)/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup test lint ruff ansible-lint sanity units integration demo bench clean

help:
	@echo "make test   - set up .venv and run ruff, ansible-lint, ansible-test sanity, unit and integration tests"
	@echo "make demo   - run the main job against the embedded AWS endpoint (moto on 127.0.0.1)"
	@echo "make bench  - run the benchmarks against their anchors and print ratios"

.debs.stamp: Makefile
	@tools/ensure-debs.sh $(DEB_PACKAGES)
	@touch $@

$(VENV)/.installed: requirements-dev.txt constraints.txt .debs.stamp
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	@touch $@

$(TOIL_VENV)/.installed: tests/toil-requirements.txt
	@test -x $(TOIL_VENV)/bin/python || $(PYTHON) -m venv $(TOIL_VENV)
	$(TOIL_VENV)/bin/pip install -q -r tests/toil-requirements.txt -c tests/toil-constraints.txt
	@touch $@

$(COLLECTION): $(VENV)/.installed tools/link-collections.sh
	@tools/link-collections.sh $(VENV)

setup: $(VENV)/.installed $(TOIL_VENV)/.installed $(COLLECTION)

test: setup lint sanity units integration

lint: ruff ansible-lint

ruff: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ansible-lint: setup
	$(BIN)/ansible-lint --offline

sanity: setup
	tools/sanity.sh

units: setup
	$(BIN)/python -m pytest tests/unit

integration: setup
	$(BIN)/python -m pytest tests/integration

demo: setup
	$(BIN)/python tools/embedded_aws.py run -- tools/demo.sh

bench: setup
	$(BIN)/python tools/bench.py

clean:
	rm -rf $(VENV) $(TOIL_VENV) .debs.stamp .pytest_cache .ruff_cache tests/output
