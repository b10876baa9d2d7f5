"""Serves qubes-core-admin's own Admin API offline on a Unix socket.

usage: serve.py WORKDIR FLEET_JSON SOCKET

Builds the app the way qubes/tests/api_admin.py does (an empty store in
offline mode, no libvirt, no Xen), adds the fleet through qubes' Python API
(add_new_vm, property and tag assignment, features, create_on_disk), then
serves QubesAdminAPI through QubesDaemonProtocol on SOCKET (and
QubesInternalAPI on SOCKET.internal) until killed. Prints
'ready' on stdout once the socket listens.

What offline mode lacks is supplied here:
- the VMM connection reports Xen (the AppVM maxmem default asks it, and
  offline mode would otherwise raise on the question);
- the varlibqubes pool is file-reflink, as on an install whose /var/lib/qubes
  takes reflinks (a fresh store picks the plain `file` driver on a
  filesystem that does not; the reflink driver then copies instead);
- qubes' paths (qubes.xml, the varlibqubes pool, vm-kernels) point into
  WORKDIR, with the kernel the simulator reports installed there;
- `qubesdb` and `sudo` come from stubs/ (PYTHONPATH and PATH, set by run.sh).
"""

import asyncio
import functools
import json
import os
import sys

import qubes.config

KERNEL = '6.6.63-1.fc37'


def point_paths_at(work: str) -> None:
    base = os.path.join(work, 'var-lib-qubes')
    kernels = os.path.join(base, qubes.config.system_path['qubes_kernels_base_dir'])
    os.makedirs(os.path.join(kernels, KERNEL), exist_ok=True)
    for name in ('vmlinuz', 'initramfs'):
        open(os.path.join(kernels, KERNEL, name), 'wb').close()
    qubes.config.qubes_base_dir = base
    qubes.config.defaults['pool_configs']['varlibqubes']['dir_path'] = base
    qubes.config.defaults['pool_configs']['linux-kernel']['dir_path'] = kernels


def store_as_reflink() -> None:
    import qubes.storage.reflink
    qubes.storage.reflink.is_supported = lambda *args, **kwargs: True


def report_xen() -> None:
    import qubes.app
    qubes.app.VMMConnection.is_xen = property(lambda self: True)


async def build_fleet(app, fleet: dict) -> None:
    props = fleet.get('properties', {})
    app.default_kernel = KERNEL
    for q in fleet['qubes']:
        kwargs = {'name': q['name'], 'label': q.get('label', 'red')}
        if q.get('template'):
            kwargs['template'] = q['template']
        app.add_new_vm(q['klass'], **kwargs)
        if q['name'] == props.get('default_template'):
            app.default_template = q['name']
    # The qubes' own properties first: a global default_netvm is refused
    # while its qube would still take the network from itself.
    for q in fleet['qubes']:
        vm = app.domains[q['name']]
        for name, value in (q.get('properties') or {}).items():
            setattr(vm, name, value)
        for tag in q.get('tags') or []:
            vm.tags.add(tag)
        for feature, value in (q.get('features') or {}).items():
            vm.features[feature] = value
    for name, value in props.items():
        setattr(app, name, value)
    for q in fleet['qubes']:
        await app.domains[q['name']].create_on_disk()
    app.save()


async def serve(work: str, fleet_path: str, sock: str) -> None:
    import qubes
    import qubes.api
    import qubes.api.admin
    import qubes.api.internal
    app = qubes.Qubes.create_empty_store(
        os.path.join(work, 'qubes.xml'), offline_mode=True)
    await app.setup_pools()
    with open(fleet_path, encoding='utf-8') as f:
        await build_fleet(app, json.load(f))
    loop = asyncio.get_running_loop()
    # the internal API (internal.GetSystemInfo, what qrexec's policy daemon
    # reads) beside it, on SOCKET.internal
    internal = await loop.create_unix_server(
        functools.partial(qubes.api.QubesDaemonProtocol,
                          qubes.api.internal.QubesInternalAPI, app=app, debug=False),
        sock + '.internal')
    server = await loop.create_unix_server(
        functools.partial(qubes.api.QubesDaemonProtocol,
                          qubes.api.admin.QubesAdminAPI, app=app, debug=False),
        sock)
    print('ready', flush=True)
    async with server, internal:
        await server.serve_forever()


def main() -> None:
    work, fleet_path, sock = sys.argv[1:4]
    point_paths_at(work)
    report_xen()
    store_as_reflink()
    asyncio.run(serve(work, fleet_path, sock))


if __name__ == '__main__':
    main()
