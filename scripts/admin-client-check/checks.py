"""Runs Qubes' qvm-* tools against the simulated qubesd and checks each
result against what real qubesd would make them print for the demo fleet.

usage: checks.py   (run by run.sh, which sets PATH and the environment)

Prints one PASS or FAIL line per command and a summary line; exits 1 when
anything failed. The commands run in order and later ones rely on the state
earlier ones left (a tag added, a qube created), so the list is a script.
"""

import os
import subprocess
import sys
from collections.abc import Callable

# The demo fleet (src/sim/demo-fleet.ts) as these checks rely on it.
APPVM = 'work'                 # an AppVM that starts halted
APPVM_LABEL = 'blue'
TEMPLATE = 'debian-12-xfce'    # the template of APPVM
DEFAULT_NETVM = 'sys-firewall'
NETVM_BACKEND = 'sys-net'      # a qube others use as netvm
FLEET_NAMES = ['dom0', 'debian-12-xfce', 'fedora-41-xfce', 'ai-debian-tpl',
               'sys-net', 'sys-firewall', 'mcp-control', 'ai-egress', 'ai-dvm',
               'ai-sandbox', 'ai-exec-box', 'ai-net-box', 'ai-full-box',
               'ai-dump', 'default-dvm', 'vault', 'personal', 'work']
AI_MANAGED = ['ai-debian-tpl', 'ai-dvm', 'ai-egress', 'ai-exec-box',
              'ai-full-box', 'ai-net-box', 'ai-sandbox']
DEFAULT_MEMORY = '400'         # qubes.config.defaults['memory']
BLOCK_BACKEND = 'sys-net'      # the one block device of the fleet
BLOCK_DEVICE = 'sys-net:sda'
BLOCK_DESCRIPTION = 'USB stick'

# What admin.vm.property.List gives in Qubes 4.x: the qubes.property and
# stateless_property attributes of each class (qubes/vm/*.py, mix/*.py).
QUBESVM_PROPERTIES = '''
audiovm autostart backup_timestamp bootmode debug default_dispvm default_user
devices_denied dns gateway gateway6 guivm icon include_in_backups
installed_by_rpm ip ip6 kernel kernelopts keyboard_layout klass label mac
management_dispvm maxmem memory name netvm provides_network qid
qrexec_timeout shutdown_timeout start_time stubdom_mem stubdom_uuid
stubdom_xid updateable uuid vcpus virt_mode visible_gateway
visible_gateway6 visible_ip visible_ip6 visible_netmask xid
'''.split()
PROPERTIES = {
    'AppVM': sorted(QUBESVM_PROPERTIES + ['template', 'template_for_dispvms']),
    'TemplateVM': sorted(QUBESVM_PROPERTIES + ['appvm_default_bootmode']),
    'AdminVM': sorted('''
default_dispvm devices_denied icon include_in_backups keyboard_layout klass
label maxmem name qid updateable uuid
'''.split()),
    'global': sorted('''
check_updates_vm clockvm default_audiovm default_dispvm default_guivm
default_kernel default_netvm default_pool default_pool_kernel
default_pool_private default_pool_root default_pool_volatile
default_qrexec_timeout default_shutdown_timeout default_template
management_dispvm maxmem no_cpus stats_interval updatevm
'''.split()),
}

# Names this check creates; run.sh starts from a fresh host every time.
NEW_APP = 'qmcp-check-app'
NEW_STANDALONE = 'qmcp-check-sa'
NEW_CLONE = 'qmcp-check-clone'
TAG = 'qmcp-check'
FEATURE = 'qmcp.check'

Result = tuple[int, str, str]
Expectation = Callable[[Result], list[str]]

results: list[tuple[str, bool]] = []


def run(argv: list[str], stdin: str = '') -> Result:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def table(out: str) -> list[list[str]]:
    return [line.split() for line in lines(out)]


# Expectations: each returns a list of problems (empty when satisfied).

def status(expected: int) -> Expectation:
    def check(r: Result) -> list[str]:
        return [] if r[0] == expected else [f'exit {r[0]}, expected {expected}']
    return check


def failed() -> Expectation:
    def check(r: Result) -> list[str]:
        return [] if r[0] != 0 else ['exit 0, expected a failure']
    return check


def stdout_is(text: str) -> Expectation:
    def check(r: Result) -> list[str]:
        return [] if r[1] == text else [f'stdout {r[1]!r}, expected {text!r}']
    return check


def stdout_has_line(*fields: str) -> Expectation:
    """Some stdout line, split on whitespace, equals these fields."""
    def check(r: Result) -> list[str]:
        want = list(fields)
        if any(row == want for row in table(r[1])):
            return []
        return [f'no line {" ".join(want)!r} in stdout']
    return check


def stdout_has_start(*fields: str) -> Expectation:
    """Some stdout line, split on whitespace, starts with these fields."""
    def check(r: Result) -> list[str]:
        want = list(fields)
        if any(row[:len(want)] == want for row in table(r[1])):
            return []
        return [f'no line starting {" ".join(want)!r} in stdout']
    return check


def column_has(index: int, value: str) -> Expectation:
    """Some stdout row has VALUE in column INDEX (0-based)."""
    def check(r: Result) -> list[str]:
        if any(len(row) > index and row[index] == value for row in table(r[1])):
            return []
        return [f'no row with {value!r} in column {index + 1}']
    return check


def stdout_contains(text: str) -> Expectation:
    def check(r: Result) -> list[str]:
        return [] if text in r[1] else [f'{text!r} not in stdout']
    return check


def stderr_contains(text: str) -> Expectation:
    def check(r: Result) -> list[str]:
        return [] if text in r[2] else [f'{text!r} not in stderr']
    return check


def first_line(*fields: str) -> Expectation:
    def check(r: Result) -> list[str]:
        rows = table(r[1])
        if rows and rows[0] == list(fields):
            return []
        got = ' '.join(rows[0]) if rows else '(nothing)'
        return [f'header {got!r}, expected {" ".join(fields)!r}']
    return check


def raw_list(predicate: Callable[[list[str]], str | None]) -> Expectation:
    def check(r: Result) -> list[str]:
        problem = predicate(lines(r[1]))
        return [problem] if problem else []
    return check


def includes(*names: str) -> Callable[[list[str]], str | None]:
    def check(got: list[str]) -> str | None:
        missing = [n for n in names if n not in got]
        return f'missing {missing}' if missing else None
    return check


def excludes(*names: str) -> Callable[[list[str]], str | None]:
    def check(got: list[str]) -> str | None:
        present = [n for n in names if n in got]
        return f'unexpected {present}' if present else None
    return check


def exactly(*names: str) -> Callable[[list[str]], str | None]:
    def check(got: list[str]) -> str | None:
        return None if got == list(names) else f'got {got}, expected {list(names)}'
    return check


def sorted_names(got: list[str]) -> str | None:
    return None if got == sorted(got) else 'names not sorted'


def expect(name: str, argv: list[str], *expectations: Expectation,
           stdin: str = '') -> Result:
    result = run(argv, stdin)
    problems = [p for e in expectations for p in e(result)]
    results.append((name, not problems))
    if problems:
        print(f'FAIL {name}: {"; ".join(problems)}')
        for stream, text in (('stdout', result[1]), ('stderr', result[2])):
            for line in text.splitlines()[-6:]:
                print(f'     {stream}: {line}')
    else:
        print(f'PASS {name}')
    sys.stdout.flush()
    return result


def state_of(vm: str, state: str) -> Expectation:
    """After the command, qvm-ls reports VM in STATE."""
    def check(_: Result) -> list[str]:
        rc, out, _err = run(['qvm-ls', '--raw-data', '-O', 'state', vm])
        got = out.strip()
        return [] if rc == 0 and got == state else [f'{vm} is {got!r}, expected {state!r}']
    return check


def check_listing() -> None:
    expect('qvm-ls', ['qvm-ls'], status(0),
           first_line('NAME', 'STATE', 'CLASS', 'LABEL', 'TEMPLATE', 'NETVM'),
           stdout_has_line('dom0', 'Running', 'AdminVM', 'black', '-', '-'),
           stdout_has_line(APPVM, 'Halted', 'AppVM', APPVM_LABEL, TEMPLATE, DEFAULT_NETVM))
    expect('qvm-ls --raw-list', ['qvm-ls', '--raw-list'], status(0),
           raw_list(includes(*FLEET_NAMES)), raw_list(sorted_names))
    expect('qvm-ls --raw-data --fields name,class,label,template,netvm',
           ['qvm-ls', '--raw-data', '--fields', 'name,class,label,template,netvm'],
           status(0), raw_list(includes('dom0|AdminVM|black|-|-',
                                        f'{APPVM}|AppVM|{APPVM_LABEL}|{TEMPLATE}|{DEFAULT_NETVM}')))
    # MEMORY is the memory in use: none for a halted qube.
    expect('qvm-ls -O name,state,memory,vcpus,virt_mode VM',
           ['qvm-ls', '-O', 'name,state,memory,vcpus,virt_mode', APPVM], status(0),
           first_line('NAME', 'STATE', 'MEMORY', 'VCPUS', 'VIRT-MODE'),
           stdout_has_line(APPVM, 'Halted', '-', '2', 'pvh'))
    expect('qvm-ls --running --raw-list', ['qvm-ls', '--running', '--raw-list'],
           status(0), raw_list(includes('dom0')), raw_list(excludes(APPVM)))
    expect('qvm-ls --halted --raw-list', ['qvm-ls', '--halted', '--raw-list'],
           status(0), raw_list(includes(APPVM)), raw_list(excludes('dom0')))
    expect('qvm-ls --class AdminVM --raw-list', ['qvm-ls', '--class', 'AdminVM', '--raw-list'],
           status(0), raw_list(exactly('dom0')))
    expect('qvm-ls --tags ai-managed', ['qvm-ls', '--tags', 'ai-managed', '--raw-list'],
           status(0), raw_list(exactly(*AI_MANAGED)))
    expect('qvm-ls --class TemplateVM --raw-list', ['qvm-ls', '--class', 'TemplateVM', '--raw-list'],
           status(0), raw_list(exactly('ai-debian-tpl', 'debian-12-xfce', 'fedora-41-xfce')))
    expect('qvm-ls --tags (no qube has it)', ['qvm-ls', '--tags', TAG, '--raw-list'],
           status(0), stdout_is(''))


def property_names(klass: str) -> Expectation:
    """The first column of qvm-prefs VM is the property list of KLASS."""
    def problem(got: list[str]) -> str | None:
        names = [line.split()[0] for line in got]
        missing = [p for p in PROPERTIES[klass] if p not in names]
        extra = [p for p in names if p not in PROPERTIES[klass]]
        return f'missing {missing}, extra {extra}' if missing or extra else None
    return raw_list(problem)


def check_prefs() -> None:
    expect('qvm-prefs VM', ['qvm-prefs', APPVM], status(0),
           stdout_has_line('name', '-', APPVM),
           stdout_has_start('qid', '-'), stdout_has_start('uuid', '-'),
           stdout_has_line('klass', 'D', 'AppVM'),
           stdout_has_line('label', '-', APPVM_LABEL),
           stdout_has_line('template', '-', TEMPLATE),
           stdout_has_line('netvm', 'D', DEFAULT_NETVM),
           stdout_has_line('memory', 'D', DEFAULT_MEMORY))
    expect('qvm-prefs VM (AppVM property names)', ['qvm-prefs', APPVM], status(0),
           property_names('AppVM'))
    expect('qvm-prefs TEMPLATE (TemplateVM property names)', ['qvm-prefs', TEMPLATE], status(0),
           property_names('TemplateVM'))
    expect('qvm-prefs dom0 (AdminVM property names)', ['qvm-prefs', 'dom0'], status(0),
           property_names('AdminVM'), stdout_has_line('name', 'D', 'dom0'),
           stdout_has_line('qid', 'D', '0'))
    expect('qvm-prefs VM label', ['qvm-prefs', APPVM, 'label'], status(0),
           stdout_is(APPVM_LABEL + '\n'))
    expect('qvm-prefs VM memory 777', ['qvm-prefs', APPVM, 'memory', '777'],
           status(0), stdout_is(''))
    expect('qvm-prefs VM memory (after set)', ['qvm-prefs', APPVM, 'memory'],
           status(0), stdout_is('777\n'))
    expect('qvm-prefs VM (set value shown as non-default)', ['qvm-prefs', APPVM],
           status(0), stdout_has_line('memory', '-', '777'))
    expect('qvm-prefs -D VM memory', ['qvm-prefs', '-D', APPVM, 'memory'],
           status(0), stdout_is(''))
    expect('qvm-prefs VM (reset value shown as default)', ['qvm-prefs', APPVM],
           status(0), stdout_has_line('memory', 'D', DEFAULT_MEMORY))
    expect('qvm-prefs VM netvm "" (none)', ['qvm-prefs', APPVM, 'netvm', ''],
           status(0))
    expect('qvm-prefs VM netvm (none)', ['qvm-prefs', APPVM, 'netvm'],
           status(0), stdout_is(''))
    expect('qvm-prefs -D VM netvm', ['qvm-prefs', '-D', APPVM, 'netvm'], status(0))
    expect('qvm-prefs VM netvm (default again)', ['qvm-prefs', APPVM, 'netvm'],
           status(0), stdout_is(DEFAULT_NETVM + '\n'))
    expect('qvm-prefs VM label no-such-label', ['qvm-prefs', APPVM, 'label', 'no-such-label'],
           failed(), stderr_contains('no-such-label'))
    expect('qvm-prefs VM no_such_property', ['qvm-prefs', APPVM, 'no_such_property'],
           failed(), stderr_contains('no_such_property'))
    expect('qvm-prefs --help-properties VM', ['qvm-prefs', '--help-properties', APPVM],
           status(0), stdout_contains('label'), stdout_contains('netvm'))
    expect('qubes-prefs (global property names)', ['qubes-prefs'], status(0),
           property_names('global'), stdout_has_line('default_netvm', '-', DEFAULT_NETVM))
    expect('qubes-prefs default_netvm', ['qubes-prefs', 'default_netvm'],
           status(0), stdout_is(DEFAULT_NETVM + '\n'))
    expect('qvm-prefs no-such-qube', ['qvm-prefs', 'no-such-qube'], failed(),
           stderr_contains('no-such-qube'))


def check_tags() -> None:
    expect('qvm-tags VM add', ['qvm-tags', APPVM, 'add', TAG], status(0), stdout_is(''))
    expect('qvm-tags VM list', ['qvm-tags', APPVM, 'list'], status(0),
           raw_list(includes(TAG)), raw_list(sorted_names))
    expect('qvm-tags VM list TAG', ['qvm-tags', APPVM, 'list', TAG], status(0),
           stdout_is(TAG + '\n'))
    expect('qvm-ls --tags TAG', ['qvm-ls', '--tags', TAG, '--raw-list'], status(0),
           raw_list(exactly(APPVM)))
    expect('qvm-tags VM del', ['qvm-tags', APPVM, 'del', TAG], status(0))
    expect('qvm-tags VM list TAG (gone)', ['qvm-tags', APPVM, 'list', TAG], status(1),
           stdout_is(''))
    expect('qvm-tags VM del (absent tag)', ['qvm-tags', APPVM, 'del', TAG], status(0))


def check_features() -> None:
    expect('qvm-features VM F V', ['qvm-features', APPVM, FEATURE, 'on'], status(0),
           stdout_is(''))
    expect('qvm-features VM F', ['qvm-features', APPVM, FEATURE], status(0),
           stdout_is('on\n'))
    expect('qvm-features VM', ['qvm-features', APPVM], status(0),
           stdout_has_line(FEATURE, 'on'))
    expect('qvm-features --unset VM F', ['qvm-features', '--unset', APPVM, FEATURE],
           status(0))
    expect('qvm-features VM F (unset)', ['qvm-features', APPVM, FEATURE], status(1),
           stdout_is(''))
    expect('qvm-features --unset VM F (absent)', ['qvm-features', '--unset', APPVM, FEATURE],
           status(0))


def check_firewall() -> None:
    header = ('NO', 'ACTION', 'HOST', 'PROTOCOL', 'PORT(S)', 'SPECIAL', 'TARGET',
              'ICMP', 'TYPE', 'EXPIRE', 'COMMENT')
    expect('qvm-firewall VM list', ['qvm-firewall', APPVM, 'list'], status(0),
           first_line(*header), stdout_has_line('0', 'accept', '-', '-', '-', '-', '-', '-', '-'))
    expect('qvm-firewall VM add --before 0', ['qvm-firewall', APPVM, 'add', '--before', '0',
                                             'drop', 'dsthost=192.168.0.0/16'], status(0))
    expect('qvm-firewall VM add (with ports, comment)',
           ['qvm-firewall', APPVM, 'add', 'action=accept', 'dsthost=10.1.2.3',
            'proto=tcp', 'dstports=443', 'comment=check'], status(0))
    expect('qvm-firewall --raw VM list', ['qvm-firewall', '--raw', APPVM, 'list'], status(0),
           stdout_is('action=drop dst4=192.168.0.0/16\naction=accept\n'
                     'action=accept proto=tcp dst4=10.1.2.3/32 dstports=443-443 comment=check\n'))
    expect('qvm-firewall VM del --rule-no 0', ['qvm-firewall', APPVM, 'del', '--rule-no', '0'],
           status(0))
    expect('qvm-firewall VM del RULE', ['qvm-firewall', APPVM, 'del', 'accept', 'dsthost=10.1.2.3',
                                        'proto=tcp', 'dstports=443', 'comment=check'], status(0))
    expect('qvm-firewall --raw VM (after del)', ['qvm-firewall', '--raw', APPVM], status(0),
           stdout_is('action=accept\n'))
    # Deleting the last rule sends an empty rule list, which qubesd refuses
    # (admin.vm.firewall.Set requires a payload).
    expect('qvm-firewall VM del (last rule, refused)',
           ['qvm-firewall', APPVM, 'del', '--rule-no', '0'], failed())
    expect('qvm-firewall VM add (before reset)', ['qvm-firewall', APPVM, 'add', 'drop'], status(0))
    expect('qvm-firewall VM reset', ['qvm-firewall', APPVM, 'reset'], status(0))
    expect('qvm-firewall --raw VM (after reset)', ['qvm-firewall', '--raw', APPVM], status(0),
           stdout_is('action=accept\n'))
    expect('qvm-firewall --reload VM', ['qvm-firewall', '--reload', APPVM], status(0))


def check_power() -> None:
    expect('qvm-start VM', ['qvm-start', APPVM], status(0), state_of(APPVM, 'Running'),
           state_of(DEFAULT_NETVM, 'Running'))
    expect('qvm-start VM (already running)', ['qvm-start', APPVM], status(1),
           stderr_contains('already running'))
    expect('qvm-start --skip-if-running VM', ['qvm-start', '--skip-if-running', APPVM], status(0))
    expect('qvm-pause VM', ['qvm-pause', APPVM], status(0), state_of(APPVM, 'Paused'))
    expect('qvm-unpause VM', ['qvm-unpause', APPVM], status(0), state_of(APPVM, 'Running'))
    expect('qvm-shutdown --wait VM', ['qvm-shutdown', '--wait', APPVM], status(0),
           state_of(APPVM, 'Halted'))
    expect('qvm-start VM (again)', ['qvm-start', APPVM], status(0), state_of(APPVM, 'Running'))
    expect('qvm-kill VM', ['qvm-kill', APPVM], status(0), state_of(APPVM, 'Halted'))
    # The tool ignores QubesVMNotStartedError from a halted qube.
    expect('qvm-kill VM (halted)', ['qvm-kill', APPVM], status(0))
    expect('qvm-pause VM (halted)', ['qvm-pause', APPVM], failed())


def check_create_remove() -> None:
    expect('qvm-create -t T -l L N', ['qvm-create', '-t', TEMPLATE, '-l', 'red', NEW_APP],
           status(0))
    expect('qvm-ls N (created)', ['qvm-ls', NEW_APP], status(0),
           stdout_has_line(NEW_APP, 'Halted', 'AppVM', 'red', TEMPLATE, DEFAULT_NETVM))
    expect('qvm-create (name taken)', ['qvm-create', '-t', TEMPLATE, '-l', 'red', NEW_APP],
           failed(), stderr_contains('already exists'))
    expect('qvm-create (no such label)', ['qvm-create', '-l', 'no-such-label', 'qmcp-check-x'],
           failed())
    expect('qvm-create --prop', ['qvm-create', '-t', TEMPLATE, '-l', 'green', '--prop',
                                 'memory=600', 'qmcp-check-prop'], status(0))
    expect('qvm-prefs (prop given at create)', ['qvm-prefs', 'qmcp-check-prop', 'memory'],
           status(0), stdout_is('600\n'))
    expect('qvm-create -l L N (default_template)', ['qvm-create', '-l', 'orange', 'qmcp-check-deft'],
           status(0))
    expect('qvm-prefs N template (default_template)', ['qvm-prefs', 'qmcp-check-deft', 'template'],
           status(0), stdout_is(TEMPLATE + '\n'))
    expect('qvm-create --standalone -l L N', ['qvm-create', '--standalone', '-l', 'blue',
                                              NEW_STANDALONE], status(0))
    expect('qvm-ls N (standalone)', ['qvm-ls', NEW_STANDALONE], status(0),
           stdout_has_line(NEW_STANDALONE, 'Halted', 'StandaloneVM', 'blue', '-', DEFAULT_NETVM))
    expect('qvm-tags N add (before clone)', ['qvm-tags', NEW_APP, 'add', TAG], status(0))
    expect('qvm-clone SRC DST', ['qvm-clone', NEW_APP, NEW_CLONE], status(0))
    expect('qvm-ls DST (clone)', ['qvm-ls', NEW_CLONE], status(0),
           stdout_has_line(NEW_CLONE, 'Halted', 'AppVM', 'red', TEMPLATE, DEFAULT_NETVM))
    expect('qvm-tags DST (tags copied)', ['qvm-tags', NEW_CLONE, 'list', TAG], status(0),
           stdout_is(TAG + '\n'))
    created = [NEW_CLONE, NEW_STANDALONE, NEW_APP, 'qmcp-check-prop', 'qmcp-check-deft']
    expect('qvm-remove -f N...', ['qvm-remove', '-f', *created], status(0))
    expect('qvm-ls --raw-list (removed)', ['qvm-ls', '--raw-list'], status(0),
           raw_list(excludes(*created)))
    expect('qvm-remove -f (qube in use)', ['qvm-remove', '-f', DEFAULT_NETVM], failed())
    expect('qvm-remove -f dom0', ['qvm-remove', '-f', 'dom0'], failed())


def check_devices() -> None:
    # Block devices are read from the backend's QubesDB, so a halted backend
    # exposes none (qubes/ext/block.py, device-list:block). Earlier checks
    # started the backend as a netvm, so stop it first; --force because
    # qubes still use it as their netvm.
    expect('qvm-shutdown --wait --force BACKEND', ['qvm-shutdown', '--wait', '--force',
                                                   BLOCK_BACKEND], status(0),
           state_of(BLOCK_BACKEND, 'Halted'))
    expect('qvm-device block list (backend halted)', ['qvm-device', 'block', 'list'],
           status(0), stdout_is(''))
    expect('qvm-start BACKEND', ['qvm-start', BLOCK_BACKEND], status(0),
           state_of(BLOCK_BACKEND, 'Running'))
    expect('qvm-start VM (for attach)', ['qvm-start', APPVM], status(0),
           state_of(APPVM, 'Running'))
    expect('qvm-device block list', ['qvm-device', 'block', 'list'], status(0),
           column_has(0, BLOCK_DEVICE), stdout_contains(BLOCK_DESCRIPTION))
    expect('qvm-device block attach VM DEV', ['qvm-device', 'block', 'attach', APPVM, BLOCK_DEVICE],
           status(0))
    expect('qvm-device block list VM (attached)', ['qvm-device', 'block', 'list', APPVM],
           status(0), column_has(0, BLOCK_DEVICE))
    expect('qvm-device block attach VM DEV (again)',
           ['qvm-device', 'block', 'attach', APPVM, BLOCK_DEVICE], failed())
    expect('qvm-device block detach VM DEV', ['qvm-device', 'block', 'detach', APPVM, BLOCK_DEVICE],
           status(0))
    expect('qvm-device block list VM (detached)', ['qvm-device', 'block', 'list', APPVM],
           status(0), stdout_is(''))
    expect('qvm-kill VM (after devices)', ['qvm-kill', APPVM], status(0))


def check_storage() -> None:
    expect('qvm-volume list', ['qvm-volume', 'list'], status(0),
           first_line('POOL:VOLUME', 'VMNAME', 'VOLUME_NAME', 'REVERT_POSSIBLE'),
           column_has(1, APPVM))
    expect('qvm-volume list VM', ['qvm-volume', 'list', APPVM], status(0),
           column_has(2, 'private'), column_has(2, 'root'))
    expect('qvm-volume info VM:private', ['qvm-volume', 'info', f'{APPVM}:private'], status(0),
           column_has(0, 'pool'), column_has(0, 'size'), stdout_has_line('save_on_stop', 'True'))
    expect('qvm-volume info VM:private size', ['qvm-volume', 'info', f'{APPVM}:private', 'size'],
           status(0), raw_list(lambda got: None if len(got) == 1 and got[0].isdigit()
                               else f'size {got}'))
    # revisions: made when a stop commits the volume (earlier checks stopped
    # VM already); a revert keeps the current content as a new revision and
    # uses the chosen one up
    private = f'{APPVM}:private'
    expect('qvm-volume info VM:private revisions_to_keep', ['qvm-volume', 'info', private, 'revisions_to_keep'],
           status(0), raw_list(lambda got: None if got == ['1'] else f'revisions_to_keep {got}'))
    expect('qvm-volume revert TEMPLATE2:root (never stopped)', ['qvm-volume', 'revert', 'fedora-41-xfce:root'],
           failed(), stderr_contains('No snapshots available'))
    expect('qvm-volume config VM:private revisions_to_keep 2',
           ['qvm-volume', 'config', private, 'revisions_to_keep', '2'], status(0))
    for n in (1, 2):
        expect(f'qvm-start VM (revision {n})', ['qvm-start', APPVM], status(0), state_of(APPVM, 'Running'))
        expect(f'qvm-shutdown --wait VM (revision {n})', ['qvm-shutdown', '--wait', APPVM], status(0),
               state_of(APPVM, 'Halted'))

    def consecutive(got: list[str]) -> str | None:
        return None if len(got) == 2 and all(g.isdigit() for g in got) and int(got[1]) == int(got[0]) + 1 \
            else f'revisions {got}, want two in a row'
    revs = expect('qvm-volume info VM:private revisions', ['qvm-volume', 'info', private, 'revisions'],
                  status(0), raw_list(consecutive))
    got = lines(revs[1])
    if len(got) == 2 and got[1].isdigit():
        first, second = got
        nxt = str(int(second) + 1)
        expect('qvm-volume info VM:private (revisions listed)', ['qvm-volume', 'info', private], status(0),
               stdout_has_line('revisions_to_keep', '2'),
               stdout_contains(f'List of available revisions (for revert):\n  {first}\n  {second}\n'))
        expect('qvm-volume revert VM:private FIRST', ['qvm-volume', 'revert', private, first], status(0))
        expect('qvm-volume info VM:private revisions (after revert)', ['qvm-volume', 'info', private, 'revisions'],
               status(0), raw_list(lambda g: None if g == [second, nxt] else f'revisions {g}'))
        expect('qvm-volume revert VM:private (latest)', ['qvm-volume', 'revert', private], status(0))
        last = str(int(nxt) + 1)
        expect('qvm-volume info VM:private revisions (after latest)', ['qvm-volume', 'info', private, 'revisions'],
               status(0), raw_list(lambda g: None if g == [second, last] else f'revisions {g}'))
        expect('qvm-volume revert VM:private FIRST (used up)', ['qvm-volume', 'revert', private, first], failed())
        expect('qvm-start VM (revert while running)', ['qvm-start', APPVM], status(0), state_of(APPVM, 'Running'))
        expect('qvm-volume revert VM:private SECOND (running)', ['qvm-volume', 'revert', private, second], failed(),
               stderr_contains('not cleanly stopped'))
        expect('qvm-kill VM (after revisions)', ['qvm-kill', APPVM], status(0))
    pools = expect('qvm-pool list', ['qvm-pool', 'list'], status(0),
                   first_line('NAME', 'DRIVER'))
    names = [row[0] for row in table(pools[1])[1:]]
    if names:
        expect('qvm-pool info POOL', ['qvm-pool', 'info', names[0]], status(0),
               stdout_has_line('name', names[0]), stdout_contains('driver'))


def check_api() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    expect('qubesadmin.Qubes() and EventsDispatcher', [sys.executable,
           os.path.join(here, 'api_check.py'), APPVM, DEFAULT_NETVM], status(0),
           stdout_contains('events ok'))


def main() -> int:
    for group in (check_listing, check_prefs, check_tags, check_features,
                  check_firewall, check_power, check_create_remove,
                  check_devices, check_storage, check_api):
        group()
    passed = sum(1 for _, ok in results if ok)
    print(f'SUMMARY {passed} passed, {len(results) - passed} failed, {len(results)} commands')
    return 0 if passed == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
