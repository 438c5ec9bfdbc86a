#!/usr/bin/env bash
# Galaxy's importer (galaxy-importer from PyPI) on the built tarball, offline: its checks of the metadata, docs,
# changelog and README, ansible-doc and ansible-lint of the content (ansible-test runs in make sanity instead: the
# importer would run it in a container). Fails on any error or warning.
# Usage: .ci/galaxy-import.sh BUILD (make galaxy-import builds the tarball first).
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:?usage: .ci/galaxy-import.sh BUILD_DIR}" && pwd)"
tarball="$(ls "$build"/dist/ember-blockstore-*.tar.gz)"
printf '[defaults]\n' >"$build/ansible.cfg"
export ANSIBLE_CONFIG="$build/ansible.cfg"
cat >"$build/galaxy-importer.cfg" <<'CFG'
[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
OFFLINE_ANSIBLE_LINT = True
CHECK_CHANGELOG = True
CFG
export GALAXY_IMPORTER_CONFIG="$build/galaxy-importer.cfg"
log="$build/galaxy-importer.log"
rc=0
(cd "$build" && python3 -m galaxy_importer.main "$tarball") >"$log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || grep -qE '^(WARNING|ERROR)|Traceback' "$log"; then
  cat "$log" >&2
  echo "galaxy-import: the importer failed or warned (rc $rc); log: $log" >&2
  exit 1
fi
grep -E "^Importer processing completed" "$log"
