# toil.cluster: `make test` and `make demo` work on a fresh machine from nothing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
TOIL_VENV := .venv-toil
# The oldest ansible-core this collection supports (requires_ansible), for the tests run on every core
# (tests/harness/ansible_cores.py); inside .venv, so it is ignored, cleaned and left out of builds with it.
CORE217_VENV := $(VENV)/core-2.17
BIN := $(VENV)/bin
COLLECTION := $(VENV)/collections/ansible_collections/toil/cluster
# Debian packages the tests need (installed only when missing).
DEB_PACKAGES := git ca-certificates shellcheck util-linux prometheus mtail prometheus-node-exporter rsync
# The podman test hosts (tests/harness/hosts): podman with runc, a debootstrap image, a signed test apt repo.
DEB_PACKAGES += podman runc debootstrap gpg
# Only `make test-vm` boots a qemu VM (this kernel has no md driver for the RAID0 case): installed there.
VM_DEB_PACKAGES := qemu-system-x86
TEST_HOSTS := $(VENV)/.test-hosts.stamp
WHEELHOUSES := $(VENV)/.wheelhouses.stamp
HOSTS_DIR := tests/harness/hosts

export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(VENV)/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Podman settings for the test hosts, kept in the repository (see tests/harness/hosts/containers.conf).
export CONTAINERS_CONF := $(CURDIR)/$(HOSTS_DIR)/containers.conf

PYTEST := $(BIN)/python -m pytest
# pytest finds the harness and the collection through pyproject.toml's `pythonpath`; scripts get the same path here.
HARNESS_PATH := PYTHONPATH=$(CURDIR)/tests:$(CURDIR)/$(VENV)/collections
# The integration tests that need no podman host run on two pytest-xdist workers, each with its own endpoint.
XDIST := -n 2
# `make test`'s stages, each timed by tools/stages.py (a table of the times at the end). ansible-test sanity (mostly
# building its own virtualenvs on a fresh clone), the linters and the unit tests run in the background while the
# integration tests run: those wait on podman hosts and subprocesses and leave the cores partly idle. Their output comes in one
# piece after the tests', and a failure still fails `make test`.
TEST_STAGES := setup 'sanity&' 'lint&' 'units&' integration
CHECK_STAGES := setup lint units integration-aws

.PHONY: help setup setup-parts setup-venv test check test-vm lint ruff ansible-lint docs-lint sanity units integration integration-aws integration-hosts molecule \
	demo docs iam-docs bench clean

help:
	@echo "make test    - set up .venv and run ruff, ansible-lint, ansible-test sanity, unit and integration tests; prints each stage's time"
	@echo "make check   - the fast loop: lint, unit tests and the integration tests that need no podman host (a few minutes)"
	@echo "make molecule - run the roles' molecule scenarios (extensions/molecule/) on podman test hosts"
	@echo "make test-vm - the tests that boot a qemu VM (RAID0 of instance-store disks; 12-16 min, not in make test)"
	@echo "make demo    - run the main job against the embedded AWS endpoint (moto on 127.0.0.1)"
	@echo "make bench   - run the benchmarks against their anchors and print ratios"
	@echo "make docs    - render the module, plugin and role reference (docs/reference/) with antsibull-docs"

.debs.stamp: Makefile
	@tools/ensure-debs.sh $(DEB_PACKAGES)
	@touch $@

# The controller's venv needs no Debian package beyond Python 3.11's venv: `make demo` and `make docs` stop here.
$(VENV)/.installed: requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	@touch $@

$(TOIL_VENV)/.installed: tests/toil-requirements.txt
	@test -x $(TOIL_VENV)/bin/python || $(PYTHON) -m venv $(TOIL_VENV)
	$(TOIL_VENV)/bin/pip install -q -r tests/toil-requirements.txt -c tests/toil-constraints.txt
	@touch $@

$(CORE217_VENV)/.installed: tests/core217-requirements.txt
	@test -x $(CORE217_VENV)/bin/python || $(PYTHON) -m venv $(CORE217_VENV)
	$(CORE217_VENV)/bin/pip install -q -r tests/core217-requirements.txt
	@touch $@

$(COLLECTION): $(VENV)/.installed tools/link-collections.sh
	@tools/link-collections.sh $(VENV)

# The test-host image (Debian 12 + systemd + sshd), built once; the script itself rebuilds only on change.
$(TEST_HOSTS): .debs.stamp $(HOSTS_DIR)/build-image.sh $(HOSTS_DIR)/containers.conf $(wildcard $(HOSTS_DIR)/image/*)
	$(HOSTS_DIR)/build-image.sh
	@touch $@

# The virtualenvs and the test-host image are independent: made side by side (most of it is waiting on downloads),
# each one's output in one piece.
setup:
	@$(MAKE) --no-print-directory -j4 --output-sync=target setup-parts

# What `make demo`, `make docs` and `make iam-docs` need: the controller's venv and the collections linked into it;
# no apt, no podman, no test-host image, no Toil venv (tests/unit/test_makefile_setup.py holds them to it).
setup-venv: $(COLLECTION)

setup-parts: $(VENV)/.installed $(TOIL_VENV)/.installed $(CORE217_VENV)/.installed $(COLLECTION) $(TEST_HOSTS) $(WHEELHOUSES)

# The wheels the podman hosts install Toil and the autoscaler's Python packages from (tests/harness/wheelhouses.py).
$(WHEELHOUSES): $(VENV)/.installed tests/harness/wheelhouses.py roles/toil/defaults/main.yml tests/toil-constraints.txt constraints.txt
	@$(HARNESS_PATH) $(BIN)/python -m harness.wheelhouses
	@touch $@

# Every stage runs (one failure never hides another) unless the set-up fails; the exit code is the first failure's.
test:
	@$(PYTHON) tools/stages.py $(TEST_STAGES)

check:
	@$(PYTHON) tools/stages.py $(CHECK_STAGES)

lint: ruff ansible-lint docs-lint

ruff: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ansible-lint: setup
	$(BIN)/ansible-lint --offline

sanity: setup
	tools/sanity.sh

units: setup
	$(PYTEST) tests/unit

# All of them (but the VM's) in one pytest run: the podman-host tests (marker `hosts`) in two lanes, one per xdist
# worker, each lane's tests one after the other; the AWS-only ones on whichever worker is free (tests/integration/conftest.py).
# The slowest tests are listed at the end, to balance the lanes by.
integration: setup
	$(PYTEST) tests/integration -m "not vm" $(XDIST) --dist loadgroup --durations=15

integration-aws: setup
	$(PYTEST) tests/integration -m "not hosts and not vm" $(XDIST) --dist loadgroup

integration-hosts: setup
	$(PYTEST) tests/integration -m "hosts and not vm"

# The roles' molecule scenarios (extensions/molecule/), one after another; `make test` runs each as one test
# (tests/integration/test_molecule.py) in the podman-host lanes.
molecule: setup
	$(HARNESS_PATH) env -u ANSIBLE_CONFIG $(BIN)/molecule test --all

# The tests that boot a qemu VM in software emulation (the RAID0 of instance-store disks: this kernel has
# no md driver for a container to use); 12-16 minutes on two cores, so not part of `make test`.
test-vm: setup
	@tools/ensure-debs.sh $(VM_DEB_PACKAGES)
	$(PYTEST) tests/integration -m vm

# antsibull-docs lint of every plugin's and role's documentation, and docs/reference/ up to date with it.
docs-lint: setup-venv
	tools/render_docs.sh --check

docs: setup-venv
	tools/render_docs.sh

# docs/iam.md's generated policy blocks, after a policy changed (a unit test fails until they match).
iam-docs: setup-venv
	$(HARNESS_PATH) $(BIN)/python tools/render_iam_docs.py

# The endpoint's command line (tests/harness/endpoint.py) runs the demo; the demo itself gets no PYTHONPATH.
demo: setup-venv
	$(HARNESS_PATH) $(BIN)/python -m harness.endpoint run -- env -u PYTHONPATH tools/demo.sh

bench: setup
	$(HARNESS_PATH) $(BIN)/python tools/bench.py

clean:
	rm -rf $(VENV) $(TOIL_VENV) .debs.stamp .pytest_cache .ruff_cache tests/output
