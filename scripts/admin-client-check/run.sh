#!/bin/sh
# Runs Qubes' own Python client and qvm-* tools against the simulated qubesd
# and checks what they print for the demo fleet.
# usage: scripts/admin-client-check/run.sh ADMIN_CLIENT_CHECKOUT
# ADMIN_CLIENT_CHECKOUT is a work tree of QubesOS/qubes-core-admin-client.
# Build first (npm run build). Needs python3 (3.10+) only.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 ADMIN_CLIENT_CHECKOUT" >&2
  exit 2
fi
checkout=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ ! -f "$checkout/qubesadmin/__init__.py" ]; then
  echo "$checkout is not a qubes-core-admin-client work tree" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/qmcp-admin-client.XXXXXX")
sim_pid=
cleanup() {
  if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
    kill -TERM "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tools read their name and version from the installed package's
# metadata; a checkout has none, so give it a minimal dist-info.
version=$(cat "$checkout/version" 2>/dev/null || echo 0)
meta="$work/meta/qubesadmin-$version.dist-info"
mkdir -p "$meta"
printf 'Metadata-Version: 2.1\nName: qubesadmin\nVersion: %s\nSummary: Qubes Admin API package\nAuthor-email: Invisible Things Lab\nLicense: LGPL-2.1-only\n' \
  "$version" >"$meta/METADATA"

# Each tool as a command on PATH, plus a qvm-appmenus that does nothing
# (qvm-clone runs it; there are no menus here).
bin="$work/bin"
mkdir -p "$bin"
for tool in qvm-ls qvm-prefs qubes-prefs qvm-tags qvm-features qvm-firewall \
  qvm-start qvm-shutdown qvm-kill qvm-pause qvm-unpause qvm-create qvm-clone \
  qvm-remove qvm-device qvm-volume qvm-pool qvm-check; do
  printf '#!/bin/sh\nexec python3 "%s/tool.py" %s "$@"\n' "$here" "$tool" >"$bin/$tool"
  chmod +x "$bin/$tool"
done
printf '#!/bin/sh\nexit 0\n' >"$bin/qvm-appmenus"
chmod +x "$bin/qvm-appmenus"

host="$work/host"
mkdir -p "$host"
node "$repo/bin/qmcp.js" sim start --dir "$host" --fleet demo --no-install \
  >"$work/sim.log" 2>&1 &
sim_pid=$!

# Wait for the socket to answer (up to 30 s).
tries=0
until python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' \
  "$host/qubesd.sock" 2>/dev/null; do
  if ! kill -0 "$sim_pid" 2>/dev/null; then
    echo "the simulator exited before its socket answered:" >&2
    cat "$work/sim.log" >&2
    exit 1
  fi
  tries=$((tries + 1))
  if [ "$tries" -ge 300 ]; then
    echo "no answer on $host/qubesd.sock after 30 s" >&2
    cat "$work/sim.log" >&2
    exit 1
  fi
  sleep 0.1
done

status=0
PATH="$bin:$PATH" \
  PYTHONPATH="$here:$checkout:$work/meta" \
  PYTHONDONTWRITEBYTECODE=1 \
  QMCP_QUBESD_SOCKET="$host/qubesd.sock" \
  python3 "$here/checks.py" || status=$?
if [ "$status" -ne 0 ] && [ -s "$work/sim.log" ]; then
  echo "--- simulator log (last 20 lines)"
  tail -n 20 "$work/sim.log"
fi
exit "$status"
