#!/usr/bin/env bash
# Execution environment check (no container build here): an EE definition that installs the built tarball is
# accepted by `ansible-builder create`, the generated context holds the tarball, the Galaxy requirements and a
# Containerfile, and ansible-builder's introspection of the installed collection reads meta/execution-environment.yml
# (bindep.txt, requirements.txt). Usage: .ci/ee-check.sh BUILD (make ee-check builds the tarball first).
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:?usage: .ci/ee-check.sh BUILD_DIR}" && pwd)"
tarball="$(ls "$build"/dist/ember-blockstore-*.tar.gz)"
fail() { echo "ee-check: $*" >&2; exit 1; }
# Only the installed copy counts: no ansible.cfg pointing at the checkout, no user collections.
printf '[defaults]\n' >"$build/ansible.cfg"
export ANSIBLE_CONFIG="$build/ansible.cfg"
ee="$build/ee"
rm -rf "$ee" && mkdir -p "$ee"
cp "$tarball" "$ee/"
# An EE for this collection. The base image is a placeholder (nothing is pulled by `create`); use your EE base.
cat >"$ee/execution-environment.yml" <<YAML
---
version: 3
images:
  base_image:
    name: ember-ee-base:latest
dependencies:
  galaxy:
    collections:
      - name: /build/collections/$(basename "$tarball")
        type: file
  system:
    - openssh-client [platform:dpkg]
additional_build_files:
  - src: $(basename "$tarball")
    dest: collections
additional_build_steps:
  prepend_galaxy:
    - COPY _build/collections/ /build/collections/
YAML
(cd "$ee" && ansible-builder create -f execution-environment.yml -c context --output-filename Containerfile >create.log 2>&1) \
  || { cat "$ee/create.log" >&2; fail "ansible-builder create failed"; }
ctx="$ee/context"
[ -f "$ctx/Containerfile" ] || fail "no Containerfile in $ctx"
[ -f "$ctx/_build/collections/$(basename "$tarball")" ] || fail "the tarball is not in the build context"
grep -q "ember-blockstore" "$ctx/_build/requirements.yml" || fail "the Galaxy requirements do not name the collection"
grep -q "ansible-galaxy collection install" "$ctx/Containerfile" || fail "the Containerfile installs no collections"
echo "ee-check: ansible-builder create wrote $ctx (Containerfile, _build/requirements.yml, the tarball)"

# Introspection: what an EE build reads from the installed collection's meta/execution-environment.yml.
colls="$ee/collections"
ANSIBLE_COLLECTIONS_PATH="$colls" ansible-galaxy collection install --no-deps -p "$colls" "$tarball" >/dev/null
intro="$(ansible-builder introspect --sanitize "$colls")"
while IFS= read -r line; do echo "  $line"; done <<<"$intro"
grep -q "openssh-client \[platform:dpkg\].*ember.blockstore" <<<"$intro" \
  || fail "introspection did not read bindep.txt through meta/execution-environment.yml"
if grep -qiE "^(ansible|ansible-core|pytest)" <<<"$(sed -n '/python:/,/system:/p' <<<"$intro")"; then
  fail "the EE would install controller or test packages from requirements.txt"
fi
echo "ee-check: introspection reads bindep.txt and requirements.txt; no test or ansible packages reach the EE"
