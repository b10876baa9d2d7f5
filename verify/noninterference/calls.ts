/**
 * The calls a noninterference sequence makes, and how one is made: raw
 * qrexec through the simulated router, from the principal's seat or from a
 * sandbox qube's (code the agent runs there), with the reply's bytes and
 * exit status collected.
 */
import { qrexecCollect } from '../../src/sim/qrexec/index.js';
import { encodeCopyToRequest, encodeExecRequest, encodeReadFileRequest } from '../../src/shared/inqube-protocol.js';
import { PRINCIPAL, prng } from '../malformed/host.js';
import type { Machine } from './machines.js';
import { OUTSIDE_NAMES, WORLD } from './machines.js';
import { hangBoundMs } from '../hang-bound.js';

type Rand = ReturnType<typeof prng>;

export interface Call {
  /** The qube the call comes from. */
  readonly seat: string;
  readonly target: string;
  /** `service` or `service+argument`. */
  readonly service: string;
  readonly payload: string;
}

/** What one machine answered: the raw bytes and the exit status. */
export interface Observation {
  readonly status: number | 'timeout';
  readonly stdout: string;
  readonly stderr: string;
}

/** Names a create may give; none is an outside name of either machine. */
const NEW_NAMES = ['ai-new1', 'ai-new2', 'ai-new3', 'ai-clone1', 'ai-disp1', 'ai-tpl2', 'work2', 'AI-new'] as const;
/** Names that exist on neither machine, and the shapes an agent might guess. */
const GUESSES = ['ai-nothing', 'nothing', 'ai-', 'Dom0', 'ai-box.', 'a', '0', 'ai-box2'] as const;
/** Sandbox qubes (and the sink) whose seat a call may come from: code the agent runs there. */
const SEATS = ['ai-box', 'ai-execbox', 'ai-read', 'ai-dvm', 'ai-egress', 'drop'] as const;

const DOM0_SERVICES = [
  'qmcp.List',
  'qmcp.PoolFigures',
  'qmcp.DeviceList',
  'qmcp.Info+',
  'qmcp.Start+',
  'qmcp.Remove+',
  'qmcp.SetProperty+',
  'qmcp.SetFeature+',
  'qmcp.Create',
  'qmcp.CreateDispTemplate',
  'qmcp.Clone+',
  'qmcp.CreateDisposable+',
  'qmcp.DeviceAttach+',
  'qmcp.DeviceDetach+',
] as const;

const ADMIN_CALLS = [
  'admin.vm.CurrentState',
  'admin.vm.firewall.Get',
  'admin.vm.Shutdown',
  'admin.vm.Kill',
  'admin.vm.Pause',
  'admin.vm.Unpause',
  'admin.vm.Start',
  'admin.vm.List',
  'admin.vm.property.Get+netvm',
  'admin.vm.tag.Set+ai-full',
  'admin.vm.feature.Get+gui',
  'admin.vm.firewall.Reload',
] as const;

const SEAT_SERVICES = ['qubes.Filecopy', 'qmcp.SinkPush', 'qubes.VMShell', 'qubes.UpdatesProxy', 'qubes.NotifyUpdates', 'qubes.OpenInVM', 'qubes.GetDate', 'qubes.FeaturesRequest', 'admin.vm.List', 'qmcp.List', 'qmcp.Info+ai-box', 'qmcp.Exec'] as const;

/** Everything a call may name, from what both machines hold. */
export interface Names {
  /** The agent's world, plus what the sequence may create. */
  readonly visible: readonly string[];
  /** The outside qubes of either machine. */
  readonly outside: readonly string[];
  /** Outside names where the machines differ: held by one only, or edited. */
  readonly differing: readonly string[];
  /** Special targets: keywords, disposables, uuids. */
  readonly special: readonly string[];
}

export function namesOf(a: Machine, b: Machine): Names {
  const outside = [...new Set([...a.outside, ...b.outside, ...OUTSIDE_NAMES])].filter((n) => n !== PRINCIPAL);
  const uuid = (m: Machine, n: string): string => `uuid:${m.uuids.get(n) ?? ''}`;
  const special = [
    '@adminvm',
    'dom0',
    '@default',
    '@dispvm',
    '@dispvm:ai-dvm',
    '@dispvm:ops-dvm',
    `@dispvm:${b.outside.find((n) => !a.outside.includes(n)) ?? 'work'}`,
    '@dispvm:ai-nothing',
    '@anyvm',
    '@tag:ai-managed',
    uuid(a, 'ai-box'),
    uuid(a, 'ai-read'),
    uuid(a, 'vault'),
    ...b.outside.filter((n) => !a.outside.includes(n)).map((n) => uuid(b, n)),
    ...a.outside.filter((n) => !b.outside.includes(n)).map((n) => uuid(a, n)),
    'uuid:00000000-0000-4000-8000-000000000000',
    PRINCIPAL,
  ];
  const edited = [...a.edits, ...b.edits].map((e) => (e.kind === 'add' ? e.qube.name : e.kind === 'devices' ? e.backend : e.name));
  const differing = [...new Set([...a.outside.filter((q) => !b.outside.includes(q)), ...b.outside.filter((q) => !a.outside.includes(q)), ...edited])];
  return { visible: [...WORLD, ...NEW_NAMES.slice(0, 5)], outside, differing: differing.length > 0 ? differing : outside, special };
}

function qubeName(r: Rand, n: Names): string {
  const roll = r.int(20);
  if (roll < 8) return r.pick(n.visible);
  if (roll < 13) return r.pick(n.differing);
  if (roll < 17) return r.pick(n.outside);
  return r.pick(GUESSES);
}

function target(r: Rand, n: Names): string {
  return r.int(4) === 0 ? r.pick(n.special) : qubeName(r, n);
}

const json = (o: unknown): string => JSON.stringify(o);

function dom0Payload(r: Rand, n: Names, service: string): string {
  const fresh = (): Record<string, unknown> => ({ name: r.pick(NEW_NAMES), ...(r.int(3) === 0 ? { netvm: r.pick(['none', 'inherit']) } : {}) });
  switch (service) {
    case 'qmcp.Create':
    case 'qmcp.CreateDispTemplate':
      return json({ ...fresh(), template: r.pick(['ai-tpl', 'ai-tpl', 'debian', qubeName(r, n)]) });
    case 'qmcp.Clone+':
    case 'qmcp.CreateDisposable+':
      return json(fresh());
    case 'qmcp.SetProperty+':
      return json(
        r.pick([
          { name: 'memory', value: 300 + 100 * r.int(5) },
          { name: 'label', value: 'green' },
          { name: 'netvm', value: null },
          { name: 'autostart', value: false },
          { name: 'default_dispvm', value: qubeName(r, n) },
        ]),
      );
    case 'qmcp.SetFeature+':
      return json({ name: r.pick(['gui', 'menu-items']), value: '1' });
    case 'qmcp.DeviceAttach+':
    case 'qmcp.DeviceDetach+':
      return json({ class: r.pick(['block', 'usb', 'mic']), backend: qubeName(r, n), port: r.pick(['sda', 'sdb', '2-1', 'mic']) });
    default:
      return '';
  }
}

const EXEC = encodeExecRequest({ shell: 'id -u; hostname; ls / | wc -l' }).toString('latin1');
const READ = encodeReadFileRequest({ path: '/etc/hostname' }).toString('latin1');
const COPY = encodeCopyToRequest({ paths: ['/etc/hostname'] }).toString('latin1');

/** One generated call: mostly the principal's, some from inside sandbox qubes. */
export function generateCall(r: Rand, n: Names): Call {
  if (r.int(4) === 0) {
    const service = r.pick(SEAT_SERVICES);
    return { seat: r.pick(SEATS), target: target(r, n), service, payload: service === 'qmcp.Exec' ? EXEC : '' };
  }
  const roll = r.int(20);
  if (roll < 11) {
    const base = r.pick(DOM0_SERVICES);
    const service = base.endsWith('+') ? `${base}${qubeName(r, n)}` : base;
    // dom0 services live at @adminvm; the other names of dom0 and any other target must be refused alike
    const to = r.int(8) === 0 ? r.pick(['dom0', '@default', '@dispvm', qubeName(r, n)]) : '@adminvm';
    return { seat: PRINCIPAL, target: to, service, payload: dom0Payload(r, n, base) };
  }
  if (roll < 16) return { seat: PRINCIPAL, target: target(r, n), service: r.pick(ADMIN_CALLS), payload: '' };
  const kind = r.pick(['exec', 'read', 'copy'] as const);
  if (kind === 'exec') return { seat: PRINCIPAL, target: target(r, n), service: 'qmcp.Exec', payload: EXEC };
  if (kind === 'read') return { seat: PRINCIPAL, target: target(r, n), service: 'qmcp.ReadFile', payload: READ };
  return { seat: PRINCIPAL, target: target(r, n), service: `qmcp.CopyTo+${r.pick(['drop', ...n.outside.slice(0, 3), 'ai-peer', 'ai-nothing'])}`, payload: COPY };
}

/** A sequence for one pair: starts first, so some calls reach a running sandbox qube and a backend's devices. */
export function generateSequence(seed: number, n: Names, length: number): Call[] {
  const r = prng(seed);
  const calls: Call[] = ['ai-box', 'ai-peer'].map((q) => ({ seat: PRINCIPAL, target: '@adminvm', service: `qmcp.Start+${q}`, payload: '' }));
  while (calls.length < length) calls.push(generateCall(r, n));
  return calls;
}

/** How long one call may take on an idle machine before it counts as hanging; scaled by the load when the call starts. */
const CALL_TIMEOUT_MS = 60_000;

/** The real call: raw qrexec from the call's seat on the machine's router. */
export async function rawCall(m: Machine, c: Call): Promise<Observation> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), hangBoundMs(CALL_TIMEOUT_MS));
  });
  try {
    const r = await Promise.race([qrexecCollect(m.host.router.socketFor(c.seat), c.target, c.service, c.payload), timeout]);
    if (r === 'timeout') return { status: 'timeout', stdout: '', stderr: '' };
    return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a call names, anywhere in it, a qube outside the agent's world of one machine. */
export function namesOutside(c: Call, outside: readonly string[]): boolean {
  const words = `${c.target} ${c.service} ${c.payload}`.split(/[\s+:"{},]+/);
  return outside.some((n) => words.includes(n));
}
