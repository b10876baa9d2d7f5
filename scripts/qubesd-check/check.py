"""Sends one generated Admin API call set to real qubesd and to the simulator
and compares their normalised replies.

usage: check.py REAL_SOCKET SIM_SOCKET METHODS_JSON FLEET_JSON [--seed N]
                [--rounds N] [--show N] [--dump FILE]
                [--record FILE --source ADMIN_COMMIT QREXEC_COMMIT]

METHODS_JSON lists the simulator's methods with their argument, payload and
destination flags; FLEET_JSON is the fleet both hosts were built from. Each
call goes to real qubesd first, then to the simulator, from dom0. Prints the
agreement by method, then each difference class with one example, and
'SUMMARY agreed/compared (xen-only calls excluded)'.

With --record it sends a smaller call set instead (every method, valid,
invalid and hostile, and two seeded sequences of state changes) and writes
each call with real qubesd's normalised reply to FILE, for
test/qubesd/recorded.test.ts to replay against the simulator.
"""

import argparse
import collections
import json
import random
import re
import socket
import sys

UNKNOWN = 'no-such-qube'
HOSTILE_ARGS = ['', 'a/b', '../../etc/passwd', 'x' * 300, 'bad name', 'ü', '-x', 'a+b']

# Values to try per property type, then per property that checks its value.
TYPE_VALUES = {
    'int': ['0', '-1', '1', '400', '4000', '1000000000000', 'abc', '1.5', ' 5', ''],
    'bool': ['True', 'False', 'true', 'false', '1', '0', 'yes', 'off', 'maybe', ''],
    'str': ['x', '', 'two words', 'ü'],
    'label': ['red', 'black', 'nope', '', '1'],
}
PROP_VALUES = {
    'ip': ['10.137.0.99', '10.137.0.999', 'abc', 'fd09::1', ''],
    'ip6': ['fd09:24ef:4179::99', 'bad', '10.137.0.1', ''],
    'mac': ['00:16:3e:00:00:01', '00:16:3E:00:00:01', 'zz:16:3e:00:00:01', '00:16:3e', ''],
    'keyboard_layout': ['de+neo+', 'us++', 'us', 'bad layout+', 'a+b+c+d', ''],
    'virt_mode': ['hvm', 'pv', 'pvh', 'HVM', 'xen', ''],
    'kernel': ['6.6.63-1.fc37', '1.0', '../x', ''],
    'default_kernel': ['6.6.63-1.fc37', '1.0', ''],
    'default_user': ['user', 'root', 'a b', 'a:b', ''],
    'devices_denied': ['', 'b******', 'u03****', 'bad', 'b*****', 'b******m******'],
    'bootmode': ['default', 'other', ''],
    'kernelopts': ['quiet', ''],
    'qrexec_timeout': ['-1', '0', '30'],
    'shutdown_timeout': ['-1', '0', '30'],
    'memory': ['-1', '0', '100', '8000'],
    'maxmem': ['-1', '0', '100', '8000'],
    'vcpus': ['-1', '0', '4'],
    'name': ['renamed', 'dom0'],
    'default_pool': ['varlibqubes', 'linux-kernel', 'nope', ''],
    'default_pool_private': ['varlibqubes', 'nope'],
    'stats_interval': ['-1', '0', '5'],
    'default_qrexec_timeout': ['-1', '0', '30'],
}
VOLUMES = ['root', 'private', 'volatile', 'kernel', 'nope', '']
POOLS = ['varlibqubes', 'linux-kernel', 'nope', '']
TAGS = ['t1', 'ai-managed', 'created-by-dom0', 'guivm-dom0', 'bad tag', 'a/b', '']
FEATURES = ['f1', 'servicevm', 'updates-available', 'bad feature', 'a/b', '', 'gui']
FEATURE_VALUES = ['1', '', 'text', 'ü', 'two\nlines']
FIREWALL_RULES = [
    'action=accept\n',
    'action=accept dsthost=10.0.0.1\naction=drop\n',
    'action=accept proto=tcp dstports=443-443 dsthost=example.com\naction=drop\n',
    'action=accept proto=tcp dstports=443 dsthost=example.com\n',
    'action=maybe\n',
    'action=accept dsthost=10.0.0.0/33\n',
    '',
    'action=accept dns=1\n',
]
DEVICE_ARGS = ['sys-net+sda', 'sys-net+nope', 'dom0+mic', 'nope+sda', 'sys-net', '']
VOLUME_SIZES = ['0', '1', '2147483648', '21474836480', '-1', 'abc', '']
LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black']

SEQUENCE_SKIP = {'default_guivm', 'default_audiovm'}
UUID = re.compile(rb'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
DISP = re.compile(rb'\bdisp[0-9]+\b')
# Properties whose values are identities, host figures or clocks.
MASKED_PROPS = {'qid', 'uuid', 'dispid', 'start_time', 'backup_timestamp',
                'maxmem@dom0', 'maxmem@global', 'no_cpus@global', 'xid',
                'stubdom_xid'}
# Volume and pool fields that name paths, sizes or times.
MASKED_FIELDS = {'path', 'size', 'usage', 'vid', 'dir_path', 'revisions',
                 'usage_details', 'size_details', 'source', 'data_size', 'data_usage'}
# A Python object's address in a repr qubesd prints (a qube's, in some errors).
ADDRESS = re.compile(rb' at 0x[0-9a-f]+')


def call(sock_path, method, dest, arg='', payload=b''):
    """One Admin API call from dom0: returns the raw reply ('' on none)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path)
    name = method + ('+' + arg if arg else '')
    s.sendall(f'{name} dom0 name {dest}'.encode() + b'\0' + payload)
    s.shutdown(socket.SHUT_WR)
    chunks = []
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            chunks.append(d)
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    return b''.join(chunks)


def kind(reply):
    if not reply:
        return 'empty'
    if reply.startswith(b'0\0'):
        return 'ok'
    if reply.startswith(b'2\0'):
        parts = reply.split(b'\0')
        return 'error ' + parts[1].decode(errors='replace')
    return 'other'


class Normaliser:
    def __init__(self, method, dest, arg):
        self.method, self.dest, self.arg = method, dest, arg

    def __call__(self, reply):
        if reply.startswith(b'2\0'):
            # type and message; the traceback field is empty without --debug
            parts = reply.split(b'\0')
            text = ADDRESS.sub(b' at 0xADDR', b'\0'.join(parts[3:]))
            return UUID.sub(b'UUID', b'2\0' + parts[1] + b'\0' + text)
        body = self.mask_body(reply)
        body = UUID.sub(b'UUID', body)
        return DISP.sub(b'dispN', body)

    def mask_body(self, reply):
        m, where = self.method, 'global' if self.method.startswith('admin.property.') else self.dest
        if m in ('admin.vm.property.Get', 'admin.property.Get', 'admin.vm.property.GetDefault',
                 'admin.property.GetDefault'):
            if self.arg in MASKED_PROPS or f'{self.arg}@{where}' in MASKED_PROPS:
                return re.sub(rb' [^ ]*$', b' MASKED', reply.rstrip(b'\n'))
            return reply
        if m in ('admin.vm.property.GetAll', 'admin.property.GetAll'):
            out = []
            for line in reply.split(b'\n'):
                name = line.split(b' ', 1)[0].lstrip(b'0\0').decode(errors='replace')
                if name in MASKED_PROPS or f'{name}@{where}' in MASKED_PROPS:
                    line = re.sub(rb'(type=\S+) .*$', rb'\1 MASKED', line)
                out.append(line)
            return b'\n'.join(out)
        if m in ('admin.vm.volume.Info', 'admin.pool.Info', 'admin.pool.UsageDetails'):
            out = []
            for line in reply.split(b'\n'):
                key = line.split(b'=', 1)[0].lstrip(b'0\0').decode(errors='replace')
                if key in MASKED_FIELDS:
                    line = line.split(b'=', 1)[0] + b'=MASKED'
                out.append(line)
            return b'\n'.join(out)
        if m == 'admin.vm.volume.CloneFrom' and reply.startswith(b'0\0'):
            return b'0\0TOKEN'
        if m == 'admin.vm.volume.ListSnapshots':
            return b'0\0' if reply.startswith(b'0\0') else reply
        return reply


class Run:
    def __init__(self, real, sim, methods, fleet, rng):
        self.real, self.sim, self.rng = real, sim, rng
        self.methods = methods
        self.fleet = fleet
        self.results = []  # (method, agreed, xen_only, call, real, sim)
        self.created = 0
        # with --record: every call that reached the simulator, in order
        self.steps = None

    def qubes(self):
        reply = call(self.sim, 'admin.vm.List', 'dom0')
        names = []
        for line in reply[2:].decode().splitlines():
            names.append(line.split(' ', 1)[0])
        return names

    def send(self, method, dest, arg='', payload=b''):
        r = call(self.real, method, dest, arg, payload)
        s = call(self.sim, method, dest, arg, payload)
        norm = Normaliser(method, dest, arg)
        xen = xen_only(method, dest, arg, payload, r, s)
        agreed = norm(r) == norm(s)
        self.results.append((method, agreed, xen, (method, dest, arg, payload), r, s))
        self.step(method, dest, arg, payload, None if xen else norm(r))
        if xen and kind(s) == 'ok':
            self.halt_sim_qubes()
            if method == 'admin.property.Set':
                self.global_as_real(arg)
        return r, s

    def global_as_real(self, prop):
        """A global property the simulator took where offline qubesd could not
        is set back to the real host's value, so later reads compare again."""
        m = re.match(rb'0\0default=\S+ type=\S+ ?(.*)$', call(self.real, 'admin.property.Get', 'dom0', prop), re.S)
        if m:
            call(self.sim, 'admin.property.Set', 'dom0', prop, m.group(1))
            self.step('admin.property.Set', 'dom0', prop, m.group(1), None)

    def step(self, method, dest, arg, payload, reply):
        """One recorded call; reply None: replayed to keep the state, not compared."""
        if self.steps is not None:
            self.steps.append({'method': method, 'dest': dest, 'arg': arg,
                               'payload': payload.decode('latin-1'),
                               'reply': None if reply is None else reply.decode('latin-1')})

    def both(self, method, dest, arg='', payload=b''):
        """A call that keeps both hosts in step (a cleanup, a restore), not compared."""
        for sock in (self.real, self.sim):
            call(sock, method, dest, arg, payload)
        self.step(method, dest, arg, payload, None)

    def halt_sim_qubes(self):
        """What the simulator started (the real host starts nothing offline) is killed again."""
        reply = call(self.sim, 'admin.vm.List', 'dom0')
        for line in reply[2:].decode().splitlines():
            name = line.split(' ', 1)[0]
            if name != 'dom0' and 'state=Halted' not in line:
                call(self.sim, 'admin.vm.Kill', name)
                self.step('admin.vm.Kill', name, '', b'', None)


def xen_only(method, dest, arg, payload, real, sim):
    """A call whose real answer depends on what offline qubesd lacks: the
    hypervisor, QubesDB, or the mic and usb device classes (their extensions
    ship in other packages: qubes-gui-daemon's audio part,
    qubes-app-linux-usb-proxy)."""
    text = real.decode(errors='replace')
    # dom0 always runs: its device listings read dom0's QubesDB (exposed
    # devices) and libvirt (attached ones), and its CurrentState asks Xen;
    # offline these crash qubesd on the stubs
    if not real and dest == 'dom0' and (
            method.startswith('admin.vm.device.') or method == 'admin.vm.CurrentState'):
        return True
    # what dom0 is told through its QubesDB: its keyboard layout, and the
    # clock service when dom0 becomes the clock qube
    if not real and dest == 'dom0' and arg == 'keyboard_layout' and method in (
            'admin.vm.property.Set', 'admin.vm.property.Reset'):
        return True
    if not real and method == 'admin.property.Set' and arg == 'clockvm' and payload == b'dom0':
        return True
    if method == 'admin.deviceclass.List':
        return True
    if 'offline mode' in text or 'libvirt' in text.lower():
        return True
    # notes are sanitised by a C library of qubes-core-admin's package, not
    # built here: every notes call is offline-only (a Get reads what the Set
    # could not write)
    if 'libqubes-pure' in text or method.startswith('admin.vm.notes.'):
        return True
    if method.startswith(('admin.vm.device.mic.', 'admin.vm.device.usb.')):
        return True
    power = ('admin.vm.Start', 'admin.vm.Shutdown', 'admin.vm.Kill', 'admin.vm.Pause',
             'admin.vm.Unpause', 'admin.vm.Suspend', 'admin.vm.Resume', 'admin.vm.CreateDisposable')
    return method.startswith(power) and kind(sim) == 'ok' and kind(real) != 'ok'


def vm_props(run, dest):
    reply = call(run.sim, 'admin.vm.property.List', dest)
    real = call(run.real, 'admin.vm.property.List', dest)
    names = set(reply[2:].decode().split()) | set(real[2:].decode(errors='replace').split())
    return sorted(names)


def global_props(run):
    reply = call(run.sim, 'admin.property.List', 'dom0')
    real = call(run.real, 'admin.property.List', 'dom0')
    return sorted(set(reply[2:].decode().split()) | set(real[2:].decode(errors='replace').split()))


def prop_type(run, dest, prop, glob=False):
    m = 'admin.property.Get' if glob else 'admin.vm.property.Get'
    reply = call(run.real, m, dest, prop)
    match = re.match(rb'0\0default=\S+ type=(\S+)', reply)
    return match.group(1).decode() if match else 'str'


def values_for(run, prop, ptype, qubes):
    if prop in PROP_VALUES:
        return PROP_VALUES[prop]
    if ptype == 'vm':
        return qubes + ['', 'dom0', UNKNOWN]
    return TYPE_VALUES.get(ptype, TYPE_VALUES['str'])


def probe_reads(run, targets):
    """Every argument-less read on each target, and each with a stray argument/payload."""
    for name, d in run.methods.items():
        if d['streaming']:
            run.send(name, 'dom0', 'x')  # refused before streaming
            continue
        writes = ('Remove', 'Set', 'Reset', 'Start', 'Shutdown', 'Kill', 'Pause', 'Unpause',
                  'Suspend', 'Resume', 'Create', 'Clone', 'Resize', 'Attach', 'Detach', 'Assign',
                  'Unassign', 'Reload', 'CreateDisposable')
        is_write = any(w in name.split('.')[-1] or w in name for w in writes)
        if d['wantsArg'] is not True and not is_write:
            dests = ['dom0'] if d['destAdminvm'] is True else targets + [UNKNOWN]
            for dest in dests:
                run.send(name, dest)
        # the call's framing refused: an argument, a payload or a destination it forbids
        if d['wantsArg'] is False:
            run.send(name, 'dom0' if d['destAdminvm'] else 'work', 'extra')
        if d['wantsArg'] is True:
            run.send(name, 'dom0' if d['destAdminvm'] else 'work', '')
        if d['wantsPayload'] is False:
            run.send(name, 'dom0' if d['destAdminvm'] else 'work', 'x' if d['wantsArg'] else '',
                     b'payload')
        if d['destAdminvm'] is True:
            run.send(name, 'work', 'x' if d['wantsArg'] else '')
        if d['destAdminvm'] is False:
            run.send(name, 'dom0', 'x' if d['wantsArg'] else '')


def probe_properties(run, targets, qubes):
    for dest in targets:
        props = vm_props(run, dest) + ['no_such_prop', 'bad name', '']
        for p in props:
            for m in ('Get', 'GetDefault', 'Help'):
                run.send(f'admin.vm.property.{m}', dest, p)
    for p in global_props(run) + ['no_such_prop', '']:
        for m in ('Get', 'GetDefault', 'Help'):
            run.send(f'admin.property.{m}', 'dom0', p)


def probe_property_writes(run, targets, qubes):
    """Each property of each target set to each candidate value, read back, and reset."""
    for dest in targets:
        for p in vm_props(run, dest):
            ptype = prop_type(run, dest, p)
            for v in values_for(run, p, ptype, qubes):
                set_read_reset(run, dest, p, v)
    for p in global_props(run):
        ptype = prop_type(run, 'dom0', p, glob=True)
        before = call(run.real, 'admin.property.Get', 'dom0', p)
        for v in values_for(run, p, ptype, qubes):
            r, s = run.send('admin.property.Set', 'dom0', p, v.encode())
            run.send('admin.property.Get', 'dom0', p)
        run.send('admin.property.Reset', 'dom0', p)
        restore_global(run, p, before)


def set_read_reset(run, dest, prop, value):
    """A qube's property set, read back and, if either side took it, reset and resynced."""
    r, s = run.send('admin.vm.property.Set', dest, prop, value.encode())
    run.send('admin.vm.property.Get', dest, prop)
    if kind(r) == 'ok' or kind(s) == 'ok':
        run.send('admin.vm.property.Reset', dest, prop)
        resync(run, dest, prop)


def resync(run, dest, prop):
    """After a reset both hosts hold the property at its default, whatever went before."""
    # Fleet values the reset dropped come back so later probes start from the same fleet.
    for q in run.fleet['qubes']:
        if q['name'] == dest and prop in (q.get('properties') or {}):
            v = q['properties'][prop]
            payload = b'' if v is None else (str(v) if not isinstance(v, bool) else str(v)).encode()
            run.both('admin.vm.property.Set', dest, prop, payload)
        if q['name'] == dest and prop == 'label':
            run.both('admin.vm.property.Set', dest, prop, q.get('label', 'red').encode())
        if q['name'] == dest and prop == 'template' and q.get('template'):
            run.both('admin.vm.property.Set', dest, prop, q['template'].encode())


def restore_global(run, prop, before):
    m = re.match(rb'0\0default=(\S+) type=\S+ ?(.*)$', before, re.S)
    if not m or m.group(1) == b'True':
        return
    run.both('admin.property.Set', 'dom0', prop, m.group(2))


def probe_features(run, dest, values):
    for f in FEATURES:
        for v in values:
            run.send('admin.vm.feature.Set', dest, f, v.encode())
            for m in ('Get', 'CheckWithTemplate', 'CheckWithAdminVM',
                      'CheckWithTemplateAndAdminVM', 'CheckWithNetvm'):
                run.send(f'admin.vm.feature.{m}', dest, f)
        run.send('admin.vm.feature.Remove', dest, f)
        run.send('admin.vm.feature.Remove', dest, f)
    run.send('admin.vm.feature.List', dest)


def probe_firewall_volumes(run, dest, sizes):
    for rules in FIREWALL_RULES:
        run.send('admin.vm.firewall.Set', dest, '', rules.encode())
        run.send('admin.vm.firewall.Get', dest)
    run.send('admin.vm.firewall.Set', dest, '', b'action=accept\n')
    run.send('admin.vm.firewall.Reload', dest)
    for v in VOLUMES:
        run.send('admin.vm.volume.Info', dest, v)
        run.send('admin.vm.volume.ListSnapshots', dest, v)
        for size in sizes:
            run.send('admin.vm.volume.Resize', dest, v, size.encode())
        run.send('admin.vm.volume.CloneFrom', dest, v)
        run.send('admin.vm.volume.CloneTo', dest, v, b'no-such-token')


def probe_pools_labels(run):
    for p in POOLS:
        for m in ('Info', 'UsageDetails', 'volume.List'):
            run.send(f'admin.pool.{m}', 'dom0', p)
    for lbl in LABELS + ['nope', '']:
        run.send('admin.label.Get', 'dom0', lbl)
        run.send('admin.label.Index', 'dom0', lbl)


def probe_collections(run, targets):
    """Tags, features, notes, firewall, volumes, pools, labels, devices, power."""
    for dest in targets + [UNKNOWN]:
        for t in TAGS:
            run.send('admin.vm.tag.Get', dest, t)
            run.send('admin.vm.tag.Set', dest, t)
            run.send('admin.vm.tag.List', dest)
            run.send('admin.vm.tag.Remove', dest, t)
        probe_features(run, dest, FEATURE_VALUES)
        run.send('admin.vm.notes.Set', dest, '', b'some notes\n')
        run.send('admin.vm.notes.Get', dest)
        run.send('admin.vm.notes.Set', dest, '', b'\xff\xfe bad utf-8')
        run.send('admin.vm.notes.Get', dest)
        run.send('admin.vm.notes.Set', dest, '', b'')
        probe_firewall_volumes(run, dest, VOLUME_SIZES)
        for cls in ('block', 'mic', 'usb', 'pci'):
            for a in DEVICE_ARGS:
                for m in ('Available', 'Attached', 'Assigned'):
                    run.send(f'admin.vm.device.{cls}.{m}', dest, a)
                run.send(f'admin.vm.device.{cls}.Attach', dest, a, b"required='no' attach_automatically='no' ident='x' devclass='x' backend_domain='x' mode='manual' frontend_domain='x'")
                run.send(f'admin.vm.device.{cls}.Detach', dest, a)
                run.send(f'admin.vm.device.{cls}.Assign', dest, a, b"bad")
                run.send(f'admin.vm.device.{cls}.Unassign', dest, a)
        for m in ('Start', 'Shutdown', 'Kill', 'Pause', 'Unpause', 'Suspend', 'Resume'):
            run.send(f'admin.vm.{m}', dest)
        run.send('admin.vm.Shutdown', dest, 'force')
        run.send('admin.vm.Shutdown', dest, 'bogus')
        run.send('admin.vm.CreateDisposable', dest)
    probe_pools_labels(run)


def probe_creates(run, qubes):
    """Creations with valid and invalid templates, labels, names and pools; each removed again."""
    templates = ['debian-12-xfce', 'default-dvm', 'work', 'dom0', UNKNOWN, '']
    names = ['new-1', 'Bad_Name', 'dom0', 'work', '-x', 'a' * 40, 'disp12', '']
    labels = ['red', 'nope', '']
    for klass in ('AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'):
        for in_pool in (False, True):
            m = f"admin.vm.{'CreateInPool' if in_pool else 'Create'}.{klass}"
            for t in templates:
                for name in names[:3] if t != 'debian-12-xfce' else names:
                    for lbl in labels if name == 'new-1' else ['red']:
                        payload = f'name={name} label={lbl}'
                        if in_pool:
                            payload += ' pool=varlibqubes'
                        r, s = run.send(m, 'dom0', t, payload.encode())
                        run.send('admin.vm.List', 'dom0')
                        run.both('admin.vm.Remove', name)
            run.send(m, 'dom0', 'debian-12-xfce', b'label=red')
            run.send(m, 'dom0', 'debian-12-xfce', b'name=new-2 label=red extra=1')
            run.send(m, 'dom0', 'debian-12-xfce', b'name=new-2 label=red pool=nope')
            run.both('admin.vm.Remove', 'new-2')


def probe_sequences(run, rounds, qubes):
    """Seeded random state changes, each followed by reads of what it touched."""
    rng = run.rng
    created = []
    for i in range(rounds):
        live = [q for q in qubes if q != 'dom0'] + created
        dest = rng.choice(live)
        op = rng.choice(['prop', 'prop', 'prop', 'tag', 'feature', 'create', 'remove', 'global'])
        if op == 'prop':
            props = vm_props(run, dest)
            p = rng.choice(props)
            ptype = prop_type(run, dest, p)
            if rng.random() < 0.3:
                run.send('admin.vm.property.Reset', dest, p)
            else:
                v = rng.choice(values_for(run, p, ptype, live))
                run.send('admin.vm.property.Set', dest, p, v.encode())
            run.send('admin.vm.property.GetAll', dest)
        elif op == 'global':
            # a default GUI or audio qube other than dom0 makes qubesd crash
            # on reading its clients' properties ever after: left to the probes
            p = rng.choice([g for g in global_props(run) if g not in SEQUENCE_SKIP])
            ptype = prop_type(run, 'dom0', p, glob=True)
            v = rng.choice(values_for(run, p, ptype, live))
            run.send('admin.property.Set', 'dom0', p, v.encode())
            run.send('admin.property.GetAll', 'dom0')
        elif op == 'tag':
            t = rng.choice(TAGS)
            run.send(rng.choice(['admin.vm.tag.Set', 'admin.vm.tag.Remove']), dest, t)
            run.send('admin.vm.tag.List', dest)
        elif op == 'feature':
            f = rng.choice(FEATURES)
            if rng.random() < 0.5:
                run.send('admin.vm.feature.Set', dest, f, rng.choice(FEATURE_VALUES).encode())
            else:
                run.send('admin.vm.feature.Remove', dest, f)
            run.send('admin.vm.feature.List', dest)
        elif op == 'create':
            name = f'seq-{i}'
            klass = rng.choice(['AppVM', 'AppVM', 'StandaloneVM', 'TemplateVM', 'DispVM'])
            tpl = rng.choice([q for q in live if q != name] + ['debian-12-xfce'])
            r, s = run.send(f'admin.vm.Create.{klass}', 'dom0', tpl,
                            f'name={name} label={rng.choice(LABELS)}'.encode())
            if kind(r) == 'ok' and kind(s) == 'ok':
                created.append(name)
            elif kind(r) == 'ok' or kind(s) == 'ok':
                run.both('admin.vm.Remove', name)
        elif op == 'remove' and created:
            name = rng.choice(created)
            r, s = run.send('admin.vm.Remove', name)
            if kind(r) == 'ok' and kind(s) == 'ok':
                created.remove(name)
        run.send('admin.vm.List', 'dom0')
        run.send('admin.vm.property.GetAll', dest)
    run.send('admin.property.GetAll', 'dom0')


# The recorded set: the same probes on fewer qubes and values.
RECORD_TARGETS = ['dom0', 'debian-12-xfce', 'work', 'sys-net', 'default-dvm']
RECORD_TYPE_VALUES = {'int': ['-1', '400', 'abc'], 'bool': ['True', 'maybe'],
                      'str': ['x', ''], 'label': ['red', 'nope']}


def record_set(run, qubes, rounds):
    """Every method with valid, invalid and hostile arguments, then two
    sequences of state changes. No Help texts: those are Qubes' docstrings."""
    probe_reads(run, ['dom0', 'work'])
    for dest in RECORD_TARGETS + [UNKNOWN]:
        run.send('admin.vm.property.GetAll', dest)
        run.send('admin.vm.property.Help', dest, 'no_such_prop')
    run.send('admin.property.GetAll', 'dom0')
    for dest in ('dom0', 'work'):
        for p in vm_props(run, dest) + ['no_such_prop', 'bad name', '']:
            run.send('admin.vm.property.GetDefault', dest, p)
    for p in global_props(run) + ['no_such_prop', '']:
        run.send('admin.property.GetDefault', 'dom0', p)
    for dest in ('work', 'dom0', 'default-dvm'):
        for p in vm_props(run, dest):
            ptype = prop_type(run, dest, p)
            if p in PROP_VALUES:
                values = PROP_VALUES[p]
            elif ptype == 'vm':
                values = ['sys-net', 'default-dvm', '', 'dom0', UNKNOWN]
            else:
                values = RECORD_TYPE_VALUES.get(ptype, RECORD_TYPE_VALUES['str'])
            for v in values:
                set_read_reset(run, dest, p, v)
    for p in global_props(run):
        if p in SEQUENCE_SKIP:
            continue
        ptype = prop_type(run, 'dom0', p, glob=True)
        before = call(run.real, 'admin.property.Get', 'dom0', p)
        values = PROP_VALUES.get(p) or (['sys-net', 'work', '', UNKNOWN] if ptype == 'vm'
                                        else RECORD_TYPE_VALUES.get(ptype, ['x']))
        for v in values:
            run.send('admin.property.Set', 'dom0', p, v.encode())
            run.send('admin.property.Get', 'dom0', p)
        run.send('admin.property.Reset', 'dom0', p)
        restore_global(run, p, before)
    record_collections(run)
    for klass in ('AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'):
        for method in (f'admin.vm.Create.{klass}', f'admin.vm.CreateInPool.{klass}'):
            pool = ' pool=varlibqubes' if 'InPool' in method else ''
            for tpl, payload in (('debian-12-xfce', 'name=new-1 label=red'),
                                 ('default-dvm', 'name=new-1 label=blue'),
                                 ('work', 'name=new-1 label=red'), (UNKNOWN, 'name=new-1 label=red'),
                                 ('debian-12-xfce', 'name=Bad_Name label=red'),
                                 ('debian-12-xfce', 'name=work label=red'),
                                 ('debian-12-xfce', 'name=new-1 label=nope'),
                                 ('debian-12-xfce', 'label=red'),
                                 ('debian-12-xfce', 'name=new-1 label=red pool=nope')):
                r, s = run.send(method, 'dom0', tpl, (payload + pool).encode())
                if kind(r) == 'ok' or kind(s) == 'ok':
                    run.send('admin.vm.property.GetAll', 'new-1')
                    run.send('admin.vm.volume.List', 'new-1')
                    run.send('admin.vm.Remove', 'new-1')
                    run.both('admin.vm.Remove', 'new-1')
    probe_sequences(run, rounds, qubes)
    probe_sequences(run, rounds, qubes)


def record_collections(run):
    for dest in ('work', UNKNOWN):
        for t in TAGS:
            for m in ('Get', 'Set', 'Get', 'Remove'):
                run.send(f'admin.vm.tag.{m}', dest, t)
        run.send('admin.vm.tag.List', dest)
        probe_features(run, dest, ('1', ''))
        probe_firewall_volumes(run, dest, ('1', '21474836480', 'abc'))
    for dest in ('debian-12-xfce', 'sys-net'):
        run.send('admin.vm.feature.List', dest)
        for v in VOLUMES[:3]:
            run.send('admin.vm.volume.Info', dest, v)
    for cls in ('block', 'pci'):
        for dest in ('work', UNKNOWN):
            for a in DEVICE_ARGS:
                for m in ('Available', 'Attached', 'Assigned'):
                    run.send(f'admin.vm.device.{cls}.{m}', dest, a)
                run.send(f'admin.vm.device.{cls}.Detach', dest, a)
                run.send(f'admin.vm.device.{cls}.Assign', dest, a, b'bad')
                run.send(f'admin.vm.device.{cls}.Unassign', dest, a)
    for dest in ('dom0', 'work', UNKNOWN):
        for m in ('Shutdown', 'Pause', 'Unpause', 'Suspend', 'Resume'):
            run.send(f'admin.vm.{m}', dest)
        run.send('admin.vm.Shutdown', dest, 'bogus')
    probe_pools_labels(run)


def write_record(run, path, fleet, seed, rounds, source):
    """The recorded calls, tied to the sources, the fleet and the seed they came from.
    One step a line: [method, dest, arg, payload, real reply normalised or null]."""
    head = {
        'recordedBy': 'scripts/qubesd-check/run.sh CORE_ADMIN QREXEC --record FILE'
                      f' --seed {seed} --rounds {rounds}',
        'qubesCoreAdmin': source[0],
        'qubesCoreQrexec': source[1],
        'seed': seed,
        'rounds': rounds,
        'fleet': fleet,
    }
    lines = [json.dumps([s['method'], s['dest'], s['arg'], s['payload'], s['reply']])
             for s in run.steps]
    with open(path, 'w', encoding='utf-8') as f:
        f.write('{\n')
        for key, value in head.items():
            f.write(f'"{key}": {json.dumps(value)},\n')
        f.write('"steps": [\n' + ',\n'.join(lines) + '\n]\n}\n')


def report(run, show):
    by_method = collections.OrderedDict()
    classes = collections.Counter()
    examples = {}
    xen = 0
    for method, agreed, xen_only_call, c, r, s in run.results:
        if xen_only_call:
            xen += 1
            continue
        row = by_method.setdefault(method, [0, 0])
        row[1] += 1
        if agreed:
            row[0] += 1
            continue
        key = (method, kind(r), kind(s))
        classes[key] += 1
        examples.setdefault(key, (c, r, s))
    total = sum(t for _, t in by_method.values())
    agreed = sum(a for a, _ in by_method.values())
    print('METHOD agreed/compared')
    for method in sorted(by_method):
        a, t = by_method[method]
        print(f'  {method} {a}/{t}')
    print('DIFFERENCES (method, real, simulator): count, example')
    for key, n in classes.most_common(show):
        c, r, s = examples[key]
        print(f'  {key[0]} real={key[1]} sim={key[2]}: {n}')
        print(f'    call {c[0]}+{c[2]} -> {c[1]} payload={c[3][:80]!r}')
        print(f'    real {r[:300]!r}')
        print(f'    sim  {s[:300]!r}')
    pct = 100.0 * agreed / total if total else 0.0
    print(f'SUMMARY {agreed}/{total} agreed ({pct:.1f}%); {xen} xen-only calls excluded')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('real')
    ap.add_argument('sim')
    ap.add_argument('methods')
    ap.add_argument('fleet')
    ap.add_argument('--seed', type=int, default=16)
    ap.add_argument('--rounds', type=int, default=300)
    ap.add_argument('--show', type=int, default=200)
    ap.add_argument('--dump', help='write every call and both replies here (JSON lines)')
    ap.add_argument('--record', help='send the recorded set; write it with the real replies here')
    ap.add_argument('--source', nargs=2, metavar=('ADMIN_COMMIT', 'QREXEC_COMMIT'),
                    default=['unknown', 'unknown'])
    a = ap.parse_args()
    with open(a.methods, encoding='utf-8') as f:
        methods = json.load(f)
    with open(a.fleet, encoding='utf-8') as f:
        fleet = json.load(f)
    run = Run(a.real, a.sim, methods, fleet, random.Random(a.seed))
    qubes = run.qubes()
    if a.record:
        run.steps = []
        record_set(run, qubes, a.rounds)
        write_record(run, a.record, fleet, a.seed, a.rounds, a.source)
    else:
        targets = ['dom0', 'debian-12-xfce', 'work', 'sys-net', 'default-dvm', 'vault']
        probe_reads(run, targets)
        probe_properties(run, targets, qubes)
        probe_property_writes(run, targets, qubes)
        probe_collections(run, targets)
        probe_creates(run, qubes)
        probe_sequences(run, a.rounds, qubes)
    report(run, a.show)
    if a.dump:
        with open(a.dump, 'w', encoding='utf-8') as f:
            for method, agreed, xen, c, r, s in run.results:
                f.write(json.dumps({'method': method, 'dest': c[1], 'arg': c[2],
                                    'payload': c[3].decode('latin-1'), 'agreed': agreed,
                                    'xen_only': xen, 'real': r.decode('latin-1'),
                                    'sim': s.decode('latin-1')}) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
