"""An empty QubesDB module: offline there is no QubesDB daemon to talk to.

qubes-core-admin imports `qubesdb` lazily when it would write a running
qube's database; no qube runs offline, so nothing here is ever called.
"""
