#!/bin/sh
# Runs qubes-core-admin's own Admin API offline and the simulated qubesd on
# the same fleet, sends both the same generated call set and reports where
# their normalised replies differ.
# usage: scripts/qubesd-check/run.sh CORE_ADMIN_CHECKOUT QREXEC_CHECKOUT [check.py options]
#   --record test/fixtures/qubesd/calls.json  records the smaller call set npm test replays
#   --services  runs qmcp's dom0 services and operator commands on both instead (services.mjs)
#   --boundary  on test/boundary's fleet: its raw-qrexec refusal checks on both instead (boundary.mjs)
# Build first (npm run build). Needs /usr/bin/python3 with Debian's
# python3-lxml python3-libvirt python3-docutils python3-jinja2 python3-yaml
# python3-pyinotify and python3-setuptools. Runs as root (qubesd's storage
# drivers take root for granted offline); writes only under a temp dir.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 CORE_ADMIN_CHECKOUT QREXEC_CHECKOUT [check.py options]" >&2
  exit 2
fi
admin=$(cd "$1" && pwd)
qrexec=$(cd "$2" && pwd)
shift 2
services=
case "${1:-}" in
  --services) services=services; shift ;;
  --boundary) services=boundary; shift ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
if [ ! -f "$admin/qubes/api/admin.py" ]; then
  echo "$admin is not a qubes-core-admin work tree" >&2
  exit 2
fi
if [ ! -f "$qrexec/qrexec/policy/parser.py" ]; then
  echo "$qrexec is not a qubes-core-qrexec work tree" >&2
  exit 2
fi

# The commits a recording names (git checkouts; else the version file).
revision() {
  git -C "$1" rev-parse HEAD 2>/dev/null || echo "version $(cat "$1/version" 2>/dev/null || echo unknown)"
}
admin_rev=$(revision "$admin")
qrexec_rev=$(revision "$qrexec")

work=$(mktemp -d "${TMPDIR:-/tmp}/qmcp-qubesd-check.XXXXXX")
sim_pid=
real_pid=
cleanup() {
  for pid in $sim_pid $real_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# VM classes, pools and extensions load through entry points: write both
# packages' egg-info into the temp dir (not into the checkouts).
mkdir -p "$work/meta" "$work/real"
(cd "$admin" && "$py" setup.py -q egg_info --egg-base "$work/meta") >"$work/egg.log" 2>&1
(cd "$qrexec" && "$py" setup.py -q egg_info --egg-base "$work/meta") >>"$work/egg.log" 2>&1

# The fleet both hosts build, and the methods the simulator implements.
node --input-type=module -e "
import { demoFleet } from '$repo/dist/src/sim/demo-fleet.js';
import { boundaryFleet } from '$repo/dist/test/boundary/helpers.js';
import { adminMethods } from '$repo/dist/src/sim/qubesd/methods/index.js';
import { writeFileSync } from 'node:fs';
writeFileSync('$work/fleet.json', JSON.stringify('$services' === 'boundary' ? boundaryFleet : demoFleet()));
const methods = {};
for (const [name, d] of Object.entries(adminMethods)) {
  methods[name] = { wantsArg: d.wantsArg, wantsPayload: d.wantsPayload, destAdminvm: d.destAdminvm, streaming: !!d.streaming };
}
writeFileSync('$work/methods.json', JSON.stringify(methods));
"

(cd "$work/real" && PATH="$here/stubs:$PATH" \
  PYTHONPATH="$here/stubs:$admin:$qrexec:$work/meta" PYTHONDONTWRITEBYTECODE=1 \
  exec "$py" "$here/serve.py" "$work/real" "$work/fleet.json" "$work/real.sock") \
  >"$work/real.log" 2>&1 &
real_pid=$!

# (services.mjs and boundary.mjs run their own simulator in process)
if [ -z "$services" ]; then
  mkdir -p "$work/host"
  node "$repo/bin/qmcp.js" sim start --dir "$work/host" --fleet "$work/fleet.json" --no-install \
    >"$work/sim.log" 2>&1 &
  sim_pid=$!
fi

# Wait for both sockets to answer (up to 60 s).
socks="$work/real.sock"
[ -n "$services" ] || socks="$socks $work/host/qubesd.sock"
for sock in $socks; do
  tries=0
  until "$py" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' \
    "$sock" 2>/dev/null; do
    if ! kill -0 "$real_pid" 2>/dev/null || { [ -n "$sim_pid" ] && ! kill -0 "$sim_pid" 2>/dev/null; }; then
      echo "a server exited before its socket answered:" >&2
      tail -n 30 "$work/real.log" "$work/sim.log" >&2
      exit 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 600 ]; then
      echo "no answer on $sock after 60 s" >&2
      exit 1
    fi
    sleep 0.1
  done
done

if [ -n "$services" ]; then
  node "$here/$services.mjs" "$work/real.sock" "$work/fleet.json" "$@"
  exit $?
fi
"$py" "$here/check.py" "$work/real.sock" "$work/host/qubesd.sock" \
  "$work/methods.json" "$work/fleet.json" --source "$admin_rev" "$qrexec_rev" "$@"
