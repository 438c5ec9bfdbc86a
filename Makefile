# ember.blockstore — the two front-door commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap vde2 e2fsprogs openssh-client
COLLECTION_LINK := .collections/ansible_collections/ember/blockstore
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help deps collection lab lab-down demo test test-unit test-integration lint sanity clean

help:
	@echo "make demo       build + boot the lab (3 VMs) and run playbooks/site.yml on it"
	@echo "make test       unit + integration tests (boots its own lab from clean overlays)"
	@echo "make test-unit  unit tests only (no VMs)"
	@echo "make lab / make lab-down   boot / stop the lab VMs"

deps: .collections/.deps-stamp collection
.collections/.deps-stamp: requirements.txt
	@missing=""; for t in qemu-system-x86_64 qemu-img debootstrap vde_switch mkfs.ext4 ssh; do \
	  command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(APT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; fi
	$(PIP) install -q -r requirements.txt
	@mkdir -p .collections && touch $@

collection: $(COLLECTION_LINK)
$(COLLECTION_LINK):
	@mkdir -p $(dir $@) && ln -sfn ../../.. $@

lab: deps
	lab/up.sh

lab-down:
	lab/down.sh

demo: lab
	ansible-playbook -i inventories/lab playbooks/site.yml

test: deps
	lab/run-tests.sh tests

test-unit: deps
	lab/run-tests.sh tests/unit

test-integration: deps
	lab/run-tests.sh tests/integration

lint: deps
	$(PYTHON) -m ruff check plugins tests

# ansible-test needs the collection in a git checkout under .../ansible_collections/ember/blockstore, and its pip
# bootstrap download is unreachable offline: a stand-in script bootstraps pip from ensurepip (see docs/lab.md).
SANITY_DIR := $(HOME)/.cache/ember-blockstore/sanity/ansible_collections/ember/blockstore
sanity: deps
	@mkdir -p $(HOME)/.ansible/test/cache && \
	  echo 'import ensurepip; ensurepip.bootstrap(upgrade=True)' > $(HOME)/.ansible/test/cache/get_pip_24_2.py
	rm -rf $(SANITY_DIR) && mkdir -p $(dir $(SANITY_DIR)) && git clone -q $(CURDIR) $(SANITY_DIR)
	cd $(SANITY_DIR) && ansible-test sanity --venv --python 3.11

clean: lab-down
	rm -rf .collections tests/output .pytest_cache
