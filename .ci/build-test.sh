#!/usr/bin/env bash
# Build test: the tarball in BUILD/dist holds no caches, test output or lab files; it installs into an empty
# collections path; ansible-doc lists and renders every plugin and role from there; the unit tests pass against
# the installed copy. Usage: .ci/build-test.sh BUILD (make build-test builds the tarball first).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: .ci/build-test.sh BUILD_DIR}"
tarball="$(ls "$build"/dist/ember-blockstore-*.tar.gz)"
fail() { echo "build-test: $*" >&2; exit 1; }
# Only the installed copy counts: no ansible.cfg pointing at the checkout, no user collections.
printf '[defaults]\n' >"$build/ansible.cfg"
export ANSIBLE_CONFIG="$build/ansible.cfg"

# 1. Contents: nothing from the development tree that build_ignore must keep out.
forbidden='^(\.collections|collections|\.ci|\.venv|\.ansible|\.benchmarks|benchmarks|build|lab|inventories/lab)(/|$)'
forbidden+='|(^|/)(\.pytest_cache|\.ruff_cache|\.hypothesis|__pycache__|tests/output)(/|$)'
forbidden+='|^(Makefile|ansible\.cfg|requirements-dev\.txt|changelogs/\.plugin-cache\.yaml)$|\.pyc$|\.tar\.gz$'
listing="$(tar -tzf "$tarball" | sed 's#^\./##')"
if bad="$(grep -E "$forbidden" <<<"$listing")"; then
  fail "the tarball holds development files:"$'\n'"$bad"
fi
for required in MANIFEST.json FILES.json COPYING README.md meta/runtime.yml meta/execution-environment.yml \
                bindep.txt requirements.txt CHANGELOG.rst changelogs/changelog.yaml; do
  grep -qx "$required" <<<"$listing" || fail "the tarball lacks $required"
done
echo "build-test: $(basename "$tarball"): $(wc -l <<<"$listing") entries, no development files"

# 2. Install into an empty path (community.general comes from the `ansible` package: Galaxy is not reachable).
colls="$build/installed"
rm -rf "$colls" && mkdir -p "$colls"
export ANSIBLE_COLLECTIONS_PATH="$colls"
ansible-galaxy collection install --no-deps -p "$colls" "$tarball" >/dev/null
installed="$colls/ansible_collections/ember/blockstore"
[ -f "$installed/MANIFEST.json" ] || fail "not installed at $installed"

# 3. ansible-doc from the installed copy: every plugin and role is listed, renders as text, and has docs in JSON.
count=0
for type in module filter lookup test role; do
  names="$(ansible-doc -t "$type" -l -j ember.blockstore | python3 -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin))))')"
  [ -n "$names" ] || continue
  # shellcheck disable=SC2086  # one word per plugin name
  out="$(ansible-doc -t "$type" $names 2>&1)" || fail "ansible-doc -t $type failed:"$'\n'"$out"
  if grep -qE '^\[?(WARNING|ERROR)' <<<"$out"; then fail "ansible-doc -t $type warns:"$'\n'"$out"; fi
  # shellcheck disable=SC2086
  ansible-doc -t "$type" -j $names | python3 -c '
import json, sys
docs, kind, names = json.load(sys.stdin), sys.argv[1], sys.argv[2:]
key = "entry_points" if kind == "role" else "doc"
missing = [name for name in names if not (docs.get(name) or {}).get(key)]
assert not missing, "no documentation for %s" % missing
' "$type" $names || fail "ansible-doc -t $type -j: missing documentation"
  count=$((count + $(wc -w <<<"$names")))
  echo "build-test: ansible-doc -t $type: $names"
done
# Every plugin and role in the tree must have been listed (a plugin without docs is left out of the list).
expected=$(find "$installed/plugins/modules" "$installed/plugins/lookup" -name '*.py' ! -name '__init__.py' | wc -l)
expected=$((expected + $(find "$installed/roles" -mindepth 1 -maxdepth 1 -type d | wc -l)))
# Filters: every name a filter plugin file returns (a file holds several; each needs its own doc).
expected=$((expected + $(PYTHONPATH="$colls" python3 -c '
import glob, importlib, sys
names = set()
for path in glob.glob(sys.argv[1] + "/plugins/filter/*.py"):
    mod = importlib.import_module("ansible_collections.ember.blockstore.plugins.filter." + path.rsplit("/", 1)[1][:-3])
    names.update(mod.FilterModule().filters())
print(len(names))' "$installed")))
[ "$count" -ge "$expected" ] || fail "ansible-doc listed $count plugins and roles, expected $expected"
echo "build-test: ansible-doc listed and rendered $count plugins and roles from the installed copy"

# 4. The unit tests (from the checkout) against the installed copy.
export EMBER_COLLECTIONS_PATH="$colls"
out="$(python3 -m pytest -p no:cacheprovider --ansible-unit-inject-only tests/unit 2>&1)" || { echo "$out"; fail "unit tests failed"; }
grep -q "^ember.blockstore under test: $colls/" <<<"$out" || { echo "$out"; fail "the unit tests did not use $colls"; }
tail -n 1 <<<"$out"
