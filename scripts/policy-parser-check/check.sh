#!/bin/sh
# Compares `qmcp policy eval` with qrexec's own Python policy parser.
# usage: scripts/policy-parser-check/check.sh QREXEC_CHECKOUT [--record]
# QREXEC_CHECKOUT is a work tree of QubesOS/qubes-core-qrexec. Build first
# (npm run build).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 QREXEC_CHECKOUT [--record]" >&2
  exit 2
fi
checkout=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$here/driver.py" \
  "$repo/test/fixtures/policy-corpus" "$repo/bin/qmcp.js" "$@"
