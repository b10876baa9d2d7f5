#!/bin/sh
# Installs the qmcp in-qube services into this qube: run it as root inside
# an agent template; qubes based on the template get them at their next start.
# With --sink, run it as root inside a sink qube instead: it installs only
# qmcp.SinkPush, into /usr/local/etc/qubes-rpc (kept across restarts), so
# the sink's template stays as it is.
# With --simulated, also installs the qubes.Filecopy receiver, the
# qvm-copy-to-vm sender, the runuser of the simulator and the
# qubes.ConnectTCP link (a real template ships its own).
# QMCP_INSTALL_ROOT installs into another root file system instead of /.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${QMCP_INSTALL_ROOT:-}
usr_local=${QMCP_INSTALL_USR_LOCAL:-$root/usr/local}
simulated=0
case ${1-} in
  '') ;;
  --simulated) simulated=1 ;;
  --sink)
    mkdir -p "$usr_local/etc/qubes-rpc"
    cp "$here/qmcp.SinkPush" "$usr_local/etc/qubes-rpc/qmcp.SinkPush"
    chmod 0755 "$usr_local/etc/qubes-rpc/qmcp.SinkPush"
    echo "qmcp sink service installed in $usr_local/etc/qubes-rpc"
    exit 0
    ;;
  *)
    echo "usage: install.sh [--sink | --simulated]" >&2
    exit 2
    ;;
esac

mkdir -p "$root/etc/qubes-rpc"
for service in qmcp.Exec qmcp.WriteFile qmcp.ReadFile qmcp.ListDir qmcp.Stat qmcp.CopyTo qmcp.SinkPush; do
  cp "$here/$service" "$root/etc/qubes-rpc/$service"
  chmod 0755 "$root/etc/qubes-rpc/$service"
done
# one script for the job services: it acts on the name it is called by
for service in qmcp.JobStart qmcp.JobOutput qmcp.JobWait qmcp.JobKill qmcp.JobList qmcp.PortForward; do
  cp "$here/qmcp.Job" "$root/etc/qubes-rpc/$service"
  chmod 0755 "$root/etc/qubes-rpc/$service"
done
if [ "$simulated" = 1 ]; then
  cp "$here/qubes.Filecopy" "$root/etc/qubes-rpc/qubes.Filecopy"
  chmod 0755 "$root/etc/qubes-rpc/qubes.Filecopy"
  mkdir -p "$usr_local/bin" "$usr_local/sbin"
  cp "$here/qvm-copy-to-vm" "$usr_local/bin/qvm-copy-to-vm"
  chmod 0755 "$usr_local/bin/qvm-copy-to-vm"
  cp "$here/runuser" "$usr_local/sbin/runuser"
  chmod 0755 "$usr_local/sbin/runuser"
  # as qubes-core-agent ships it: qrexec connects the call to localhost:ARGUMENT
  ln -sfn /dev/tcp/127.0.0.1 "$root/etc/qubes-rpc/qubes.ConnectTCP"
fi
echo "qmcp in-qube services installed in $root/etc/qubes-rpc"
