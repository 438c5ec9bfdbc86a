#!/usr/bin/env bash
# Run each named make target as a gate: all of them, even after a failure; print each one's time and a summary;
# exit non-zero when any failed. Usage: .ci/gates.sh GATE... (make check passes the list).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
failed=()
summary=()
total_start=$(date +%s)
for gate in "$@"; do
  echo "=== gate $gate"
  start=$(date +%s)
  if make --no-print-directory "$gate"; then status=ok; else status=FAILED; failed+=("$gate"); fi
  seconds=$(( $(date +%s) - start ))
  echo "=== gate $gate: $status in ${seconds} s"
  summary+=("$(printf '%-16s %-6s %4d s' "$gate" "$status" "$seconds")")
done
echo "=== gates summary (total $(( $(date +%s) - total_start )) s)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "=== failed gates: ${failed[*]}"
  exit 1
fi
