"""Points Qubes' Python client (qubesadmin) at a simulated qubesd.

qubesadmin picks its transport from the host: it talks to the local qubesd
socket only when /etc/qubes-release exists, and that socket's path is fixed.
This module, imported before any tool runs, makes the choice and the path
come from the environment instead, so the unmodified client runs here:

  QMCP_QUBESD_SOCKET  the Admin API socket to use (required)

The tools refuse to run as root and, when root, switch user to run
qvm-appmenus; in dom0 they run as the desktop user, so a root caller is
presented to them as an ordinary user.
"""

import os

DOM0_USER_UID = 1000


def apply() -> None:
    """Makes qubesadmin.Qubes a local-socket client of QMCP_QUBESD_SOCKET."""
    path = os.environ.get('QMCP_QUBESD_SOCKET')
    if not path:
        raise SystemExit('QMCP_QUBESD_SOCKET is not set')
    import qubesadmin.config
    qubesadmin.config.QUBESD_SOCKET = path
    import qubesadmin
    import qubesadmin.app
    qubesadmin.Qubes = qubesadmin.app.QubesLocal
    if os.getuid() == 0:
        os.getuid = lambda: DOM0_USER_UID
