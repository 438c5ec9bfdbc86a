#!/usr/bin/env bash
# Build test: the tarball in BUILD/dist holds no caches, test output or lab files; it installs into an empty
# collections path; ansible-doc lists and renders every plugin and role from there; the unit tests pass against
# the installed copy. Usage: .ci/build-test.sh BUILD (make build-test builds the tarball first).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: .ci/build-test.sh BUILD_DIR}"
tarball="$(ls "$build"/dist/ember-blockstore-*.tar.gz)"
fail() { echo "build-test: $*" >&2; exit 1; }

# 1. Contents: nothing from the development tree that build_ignore must keep out.
forbidden='^(\.collections|collections|\.ci|\.venv|\.ansible|\.benchmarks|benchmarks|build|lab|inventories/lab)(/|$)'
forbidden+='|(^|/)(\.pytest_cache|\.ruff_cache|\.hypothesis|__pycache__|tests/output)(/|$)'
forbidden+='|^(Makefile|ansible\.cfg|requirements-dev\.txt|changelogs/\.plugin-cache\.yaml)$|\.pyc$|\.tar\.gz$'
if bad="$(tar -tzf "$tarball" | sed 's#^\./##' | grep -E "$forbidden")"; then
  fail "the tarball holds development files:"$'\n'"$bad"
fi
for required in MANIFEST.json FILES.json COPYING README.md meta/runtime.yml meta/execution-environment.yml \
                bindep.txt requirements.txt CHANGELOG.rst changelogs/changelog.yaml; do
  tar -tzf "$tarball" | sed 's#^\./##' | grep -qx "$required" || fail "the tarball lacks $required"
done
echo "build-test: $(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) entries, no development files"

# 2. Install into an empty path (community.general comes from the `ansible` package: Galaxy is not reachable).
colls="$build/installed"
rm -rf "$colls" && mkdir -p "$colls"
ansible-galaxy collection install --no-deps -p "$colls" "$tarball" >/dev/null
installed="$colls/ansible_collections/ember/blockstore"
[ -f "$installed/MANIFEST.json" ] || fail "not installed at $installed"

# 3. ansible-doc from the installed copy only (no ansible.cfg pointing at the checkout).
export ANSIBLE_CONFIG=/dev/null ANSIBLE_COLLECTIONS_PATH="$colls"
count=0
for type in module filter lookup test inventory callback connection become cache shell strategy vars role; do
  list="$(ansible-doc -t "$type" -l ember.blockstore -j 2>/dev/null || true)"
  for name in $(printf '%s' "${list:-{\}}" | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))'); do
    out="$(ansible-doc -t "$type" "$name" 2>&1)" || fail "ansible-doc -t $type $name failed:"$'\n'"$out"
    if grep -qiE '^\[?(WARNING|ERROR)' <<<"$out"; then fail "ansible-doc -t $type $name warns:"$'\n'"$out"; fi
    count=$((count + 1))
  done
done
# Every plugin and role in the tree must have been listed (a plugin without docs is left out of the list).
expected=$(find "$installed/plugins/modules" "$installed/plugins/lookup" -name '*.py' ! -name '__init__.py' | wc -l)
# Filters: every name a filter plugin file returns (a file holds several; each needs its own doc).
filters=$(cd "$installed/plugins/filter" && python3 -c '
import glob, importlib.util
names = set()
for path in glob.glob("*.py"):
    spec = importlib.util.spec_from_file_location("f_" + path[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names.update(mod.FilterModule().filters())
print(len(names))')
expected=$((expected + filters))
expected=$((expected + $(find "$installed/roles" -mindepth 1 -maxdepth 1 -type d | wc -l)))
[ "$count" -ge "$expected" ] || fail "ansible-doc rendered $count plugins/roles, expected at least $expected"
echo "build-test: ansible-doc rendered $count plugins and roles from the installed copy"

# 4. The unit tests (from the checkout) against the installed copy.
export EMBER_COLLECTIONS_PATH="$colls"
python3 - <<'PY'
import os, sys
sys.path.insert(0, os.environ["EMBER_COLLECTIONS_PATH"])
import ansible_collections.ember.blockstore.plugins.module_utils._size as m
assert m.__file__.startswith(os.environ["EMBER_COLLECTIONS_PATH"]), m.__file__
PY
python3 -m pytest -q -p no:cacheprovider tests/unit
