# ember.blockstore — the two front-door commands are `make demo` and `make test` (see README.md).
# Every target runs in a virtual environment ($(VENV), default .venv in the checkout): Debian's own Python refuses
# `pip install` outside one (PEP 668). CI keeps it outside the clone (VENV=~/.cache/ember-blockstore/venv-...).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VENV_DIR := $(abspath $(VENV))
export PATH := $(VENV_DIR)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export VIRTUAL_ENV := $(VENV_DIR)
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ember-blockstore
BUILD := $(CURDIR)/build
APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap vde2 e2fsprogs openssh-client
COLLECTION_LINK := .collections/ansible_collections/ember/blockstore
# The gates `make check` runs (and .ci/run), each timed by .ci/gates.sh.
GATES := lint-ruff lint-yaml lint-shell lint-ansible changelog-lint docs-lint docs sanity build-test ee-check galaxy-import

.PHONY: help deps deps-python deps-lab collection lab lab-down demo test test-full test-unit test-integration check \
  bench-converge lint lint-ruff lint-yaml lint-shell lint-ansible sanity changelog-lint changelog docs-lint docs build build-test \
  ee-check galaxy-import clean

help:
	@echo "make demo       build + boot the lab (3 VMs) and run playbooks/site.yml on it"
	@echo "make test       unit + integration tests (boots its own lab from clean overlays)"
	@echo "make test-full  the lab scenarios with their own lab state (attachments, backups, NFS, faults)"
	@echo "make test-unit  unit tests only (no VMs, no root: needs only python3 -m venv and pip)"
	@echo "make lab / make lab-down   boot / stop the lab VMs"
	@echo "make bench-converge   converge benchmark on a running lab (make lab first); writes docs/benchmarks.md"
	@echo "make check      every release gate below, each timed (what CI runs before make test)"
	@echo "  lint          = lint-ruff lint-yaml lint-shell lint-ansible (ansible-lint --profile production)"
	@echo "  sanity        ansible-test sanity on a copy of the working tree (offline)"
	@echo "  changelog-lint / docs-lint   antsibull-changelog lint / antsibull-docs lint-collection-docs"
	@echo "  build-test    build the tarball, install it into an empty path, ansible-doc everything, unit tests"
	@echo "  ee-check      ansible-builder create for meta/execution-environment.yml (no container build)"
	@echo "  galaxy-import galaxy-importer on the built tarball"
	@echo "make docs       collection docsite (antsibull-docs + Sphinx) in build/docsite/build/html"
	@echo "make changelog  regenerate CHANGELOG.rst from changelogs/changelog.yaml"
	@echo "make deps-python / deps-lab   the virtual environment / the lab's apt packages (root)"
	@echo "make clean      stop the lab, remove build output, caches and the collection link"

deps: deps-python deps-lab collection

# (Re)install when requirements*.txt change: the stamp holds their hash, so a fresh clone reuses a cached venv.
deps-python:
	@want="$$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"; \
	if [ "$$(cat "$(VENV_DIR)/.ember-deps" 2>/dev/null)" != "$$want" ]; then \
	  if [ ! -x "$(VENV_DIR)/bin/python" ]; then \
	    echo "creating the virtual environment $(VENV_DIR)"; \
	    $(PYTHON) -m venv "$(VENV_DIR)" || { rm -rf "$(VENV_DIR)"; \
	      echo "'$(PYTHON) -m venv' failed: on Debian install python3-venv (apt-get install python3-venv)" >&2; \
	      exit 1; }; fi; \
	  echo "installing requirements-dev.txt into $(VENV_DIR)"; \
	  "$(VENV_DIR)/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt \
	    2> >(grep -v "^WARNING: Location 'file:" >&2) && echo "$$want" >"$(VENV_DIR)/.ember-deps"; \
	fi

deps-lab:
	@missing=""; for t in qemu-system-x86_64 qemu-img debootstrap vde_switch mkfs.ext4 ssh; do \
	  command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  [ "$$(id -u)" = 0 ] || { echo "the lab needs $(APT_PACKAGES): install them as root" >&2; exit 1; }; \
	  echo "installing $(APT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; fi

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
	lab/run-tests.sh tests -m "not full"

# The lab scenarios that need their own lab state (marked full): attachments, backups and NFS on a freshly booted lab
# with a second storage network, then the fault scenarios (marked faults: nodes killed, rebooted and damaged) on
# a second fresh boot with one storage network. Both run; the target fails when either failed.
test-full: deps
	rc=0; EMBER_LAB_SECOND_NET=1 lab/run-tests.sh tests/integration -m "full and not faults" || rc=1; \
	lab/run-tests.sh tests/integration -m faults || rc=1; exit $$rc

test-unit: deps-python collection
	lab/run-tests.sh tests/unit

test-integration: deps
	lab/run-tests.sh tests/integration -m "not full"

check: deps-python collection
	.ci/gates.sh $(GATES)

# The converge benchmark (docs/benchmarks.md) on a lab that is already up: it does not boot one (lab/up.sh would
# restart a running lab). BENCH_ARGS passes options, e.g. BENCH_ARGS="--sizes 20 --keep" or "--mitogen PATH".
bench-converge: deps-python collection
	python3 benchmarks/converge.py --write docs/benchmarks.md $(BENCH_ARGS)

lint: lint-ruff lint-yaml lint-shell lint-ansible

lint-ruff: deps-python
	ruff check plugins tests

lint-yaml: deps-python
	yamllint --strict .

lint-shell:
	@command -v shellcheck >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; } || \
	  { echo "shellcheck not found: apt-get install shellcheck" >&2; exit 1; }
	shellcheck -x lab/*.sh .ci/*.sh .ci/run

lint-ansible: deps-python collection
	ansible-lint --offline --nocolor --profile production

changelog-lint: deps-python
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

changelog: deps-python collection
	antsibull-changelog generate

# ansible-test needs the collection in a git checkout under .../ansible_collections/ember/blockstore: a copy of the
# working tree (tracked and untracked, not ignored files) in the cache. Its pip bootstrap download is unreachable
# offline: a stand-in script bootstraps pip from ensurepip (see docs/lab.md). shellcheck must be installed, or
# ansible-test skips that test.
SANITY_DIR := $(CACHE)/sanity/ansible_collections/ember/blockstore
sanity: deps-python lint-shell
	@mkdir -p $(HOME)/.ansible/test/cache && \
	  echo 'import ensurepip; ensurepip.bootstrap(upgrade=True)' > $(HOME)/.ansible/test/cache/get_pip_24_2.py
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR) && \
	  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do \
	    [ -e "$$f" ] && printf '%s\0' "$$f"; done | tar --null -T - -cf - | tar -xf - -C $(SANITY_DIR) && \
	  cd $(SANITY_DIR) && git init -q && git add -A
	cd $(SANITY_DIR) && ansible-test sanity --venv --python 3.11 --color no

docs-lint: deps-python collection
	antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck .

# The collection docsite, offline: antsibull-docs sphinx-init writes a Sphinx project, antsibull-docs collection
# --use-current writes the RST of the collection as installed here (build.sh), Sphinx renders it. Intersphinx is
# switched off: its inventories would be downloaded.
DOCSITE := $(BUILD)/docsite
docs: deps-python collection
	rm -rf $(DOCSITE) && mkdir -p -m 700 $(DOCSITE)
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections antsibull-docs sphinx-init --use-current --squash-hierarchy \
	  --lenient --dest-dir $(DOCSITE) ember.blockstore >/dev/null
	printf '\n# Offline build (make docs): no intersphinx inventories.\nintersphinx_mapping = {}\n' >>$(DOCSITE)/conf.py
	cd $(DOCSITE) && ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections ./build.sh 2>&1 | tee build.log
	@# Labels of the Ansible docs (common_return_values, ...) resolve only through intersphinx: not errors here.
	@! grep -E "WARNING|ERROR" $(DOCSITE)/build.log | grep -vE "undefined label: '(common_return_values|ansible_configuration_settings)'" \
	  || { echo "docs: antsibull-docs or Sphinx reported problems (above)" >&2; exit 1; }
	@echo "docsite: $(DOCSITE)/build/html/index.html"

build: deps-python
	rm -rf $(BUILD)/dist && mkdir -p $(BUILD)/dist
	ansible-galaxy collection build --output-path $(BUILD)/dist .

# The tarball holds no caches, test output or lab files; it installs into an empty path, every plugin and role
# renders in ansible-doc from there, and the unit tests pass against the installed copy.
build-test: build
	.ci/build-test.sh $(BUILD)

ee-check: deps-python build
	.ci/ee-check.sh $(BUILD)

galaxy-import: deps-python build
	.ci/galaxy-import.sh $(BUILD)

clean: lab-down
	rm -rf .collections tests/output .pytest_cache .ruff_cache .hypothesis .ansible build
