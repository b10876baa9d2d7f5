/**
 * The calls a noninterference sequence makes, and how one is made: raw
 * qrexec through the simulated router, from the principal's seat or from a
 * sandbox qube's (code the agent runs there), with the reply's bytes and
 * exit status collected. The principal's calls are one per operation of the
 * capability model (`CALLS`, keyed by operation id); the denied ones come
 * from the model's escalation classes.
 */
import { asExecutableReply, isDom0Service, qrexecCollect } from '../../src/sim/qrexec/index.js';
import {
  encodeCopyToRequest,
  encodePortForwardRequest,
  encodeExecRequest,
  encodeListDirRequest,
  encodeReadFileRequest,
  encodeStatRequest,
  encodeJobKillRequest,
  encodeJobListRequest,
  encodeJobOutputRequest,
  encodeJobWaitRequest,
  encodeWriteFileRequest,
} from '../../src/shared/inqube-protocol.js';
import { BACKGROUND_SERVICES, ESCALATIONS, OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
import { gapsIn } from '../gaps.js';
import { PRINCIPAL, prng } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import type { Machine } from './machines.js';
import { OUTSIDE_NAMES, OUTSIDE_TOMBSTONES, WORLD } from './machines.js';
import { hangBoundMs } from '../hang-bound.js';

type Rand = ReturnType<typeof prng>;

export interface Call {
  /** The qube the call comes from. */
  readonly seat: string;
  /** The operation of the model a principal's call makes; absent for other calls. */
  readonly operation?: string;
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
  /** With the gate on: what the call made the operator answer (requests and dialogs, with the answers). */
  readonly gate?: string;
}

/** Names a create may give; none is an outside name of either machine. */
const NEW_NAMES = ['ai-new1', 'ai-new2', 'ai-new3', 'ai-clone1', 'ai-disp1', 'ai-tpl2', 'work2', 'AI-new'] as const;
/** Names that exist on neither machine, and the shapes an agent might guess. */
const GUESSES = ['ai-nothing', 'nothing', 'ai-', 'Dom0', 'ai-box.', 'a', '0', 'ai-box2'] as const;
/** Sandbox qubes (and the sink) whose seat a call may come from: code the agent runs there. */
const SEATS = ['ai-box', 'ai-execbox', 'ai-read', 'ai-dvm', 'ai-egress', 'drop'] as const;

/**
 * What a sandbox qube may call (code the agent runs there): the copy mesh, a forward's connection,
 * a few of Qubes' own services, and below, the background services and
 * the principal's operations from the model.
 */
const SEAT_SERVICES = ['qubes.Filecopy', 'qmcp.SinkPush', 'qubes.ConnectTCP+8080', 'qubes.VMShell', 'qubes.OpenInVM', 'qubes.GetDate'] as const;

/** Admin API calls the policy must deny the principal: every escalation class's. */
const DENIED = [...new Set(ESCALATIONS.flatMap((e) => e.denies))];

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
    // with other principals: their worlds by tag and as a disposable's template
    ...(b.otherWorlds.length > 0 ? ['@tag:oc-managed', '@dispvm:oc-box', '@dispvm:oc-extra'] : []),
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

const EXEC = encodeExecRequest({ shell: 'id -u; hostname; ls / | wc -l' }).toString('latin1');
const WRITE = encodeWriteFileRequest({ path: '/root/qmcp-ni', content: 'x' }).toString('latin1');
const READ = encodeReadFileRequest({ path: '/etc/hostname' }).toString('latin1');
// paths whose answer holds no time: mtimes differ between the paired machines whatever the outside does
const LIST = encodeListDirRequest({ path: '/qmcp-ni-none' }).toString('latin1');
const STAT = encodeStatRequest({ path: '/qmcp-ni-none' }).toString('latin1');
const COPY = encodeCopyToRequest({ paths: ['/etc/hostname'] }).toString('latin1');
const FORWARD = encodePortForwardRequest({ port: 8080, localPort: 9080 }).toString('latin1');
// a job id no qube has: each machine answers it alike
const JOB = '0123456789ab';
const JOB_OUTPUT = encodeJobOutputRequest({ job: JOB, stream: 'stdout', offset: 0, limit: 1024 }).toString('latin1');
const JOB_WAIT = encodeJobWaitRequest({ job: JOB, timeoutSeconds: 0 }).toString('latin1');
const JOB_KILL = encodeJobKillRequest({ job: JOB, signal: 'TERM' }).toString('latin1');
const JOB_LIST = encodeJobListRequest().toString('latin1');
const FIREWALL = 'action=accept dsthost=192.0.2.1\naction=drop\n';

type Part = (r: Rand, n: Names) => string;
/** How one operation's call is made from the principal's seat. */
export type CallForm = (op: Operation, r: Rand, n: Names) => Call;

const none: Part = () => '';
const fresh = (r: Rand): Record<string, unknown> => ({ name: r.pick(NEW_NAMES), ...(r.int(3) === 0 ? { netvm: r.pick(['none', 'inherit']) } : {}) });

/** A dom0 service at `@adminvm`; its other names and any other target must be refused alike. */
function dom0(argument: Part, payload: Part = none): CallForm {
  return (op, r, n) => {
    const service = qrexecService(op, argument(r, n));
    const to = r.int(8) === 0 ? r.pick(['dom0', '@default', '@dispvm', qubeName(r, n)]) : '@adminvm';
    return { seat: PRINCIPAL, target: to, service, payload: payload(r, n), operation: op.id };
  };
}

/** What the policy decides: the call targets the qube. */
function onQube(payload = '', argument: Part = none): CallForm {
  return (op, r, n) => {
    return { seat: PRINCIPAL, target: target(r, n), service: qrexecService(op, argument(r, n)), payload, operation: op.id };
  };
}

const createPayload: Part = (r, n) => json({ ...fresh(r), template: r.pick(['ai-tpl', 'ai-tpl', 'debian', qubeName(r, n)]) });
const devicePayload: Part = (r, n) => json({ class: r.pick(['block', 'usb', 'mic']), backend: qubeName(r, n), port: r.pick(['sda', 'sdb', '2-1', 'mic']) });

/** A plan of one to three steps over the names a call may take: a start, a read, an in-qube run, a copy. */
const planPayload: Part = (r, n) => {
  const b64 = (text: string): string => Buffer.from(text, 'latin1').toString('base64');
  const steps = Array.from({ length: 1 + r.int(3) }, () =>
    r.pick([
      () => ({ operation: 'start', argument: qubeName(r, n), payload: '' }),
      () => ({ operation: 'info', argument: qubeName(r, n), payload: '' }),
      () => ({ operation: 'run', qube: qubeName(r, n), argument: '', payload: b64(encodeExecRequest({ shell: 'true', timeoutSeconds: 5 }).toString('latin1')) }),
      () => ({ operation: 'copy', qube: qubeName(r, n), argument: r.pick(['drop', ...n.outside.slice(0, 2), 'ai-peer']), payload: b64(COPY) }),
    ])(),
  );
  return json({ purpose: 'noninterference', steps });
};

/** The principal's call of each operation of the model, by operation id. */
export const CALLS: Readonly<Record<string, CallForm>> = {
  list: dom0(none),
  info: dom0(qubeName),
  state: onQube(),
  'firewall.get': onQube(),
  'device.list': dom0(none),
  'pool.figures': dom0(none),
  'tombstone.list': dom0(none),
  // a one-second window; the event windows below compare longer ones while both sides act
  events: dom0(() => '1'),
  run: onQube(EXEC),
  'file.write': onQube(WRITE),
  'file.read': onQube(READ),
  'dir.list': onQube(LIST),
  'file.stat': onQube(STAT),
  'job.start': onQube(EXEC),
  'job.output': onQube(JOB_OUTPUT),
  'job.wait': onQube(JOB_WAIT),
  'job.kill': onQube(JOB_KILL),
  'job.list': onQube(JOB_LIST),
  copy: onQube(COPY, (r, n) => r.pick(['drop', ...n.outside.slice(0, 3), 'ai-peer', 'ai-nothing'])),
  'port.forward': onQube(FORWARD, (r, n) => r.pick(['drop', ...n.outside.slice(0, 3), 'ai-peer', 'ai-nothing', 'dom0', PRINCIPAL])),
  start: dom0(qubeName),
  renew: dom0(qubeName, (r) => json(r.pick([{}, { seconds: 3600 }]))),
  shutdown: dom0(qubeName),
  kill: dom0(qubeName),
  'firewall.set': dom0(qubeName, () => FIREWALL),
  'firewall.reload': onQube(),
  pause: onQube(),
  unpause: onQube(),
  remove: dom0(qubeName),
  // the outside tombstones, and whatever an earlier remove entombed
  'tombstone.restore': dom0((r, n) => (r.int(2) === 0 ? r.pick(Object.keys(OUTSIDE_TOMBSTONES)) : qubeName(r, n))),
  checkpoint: dom0(qubeName),
  revert: dom0(qubeName),
  'property.set': dom0(qubeName, (r, n) =>
    json(
      r.pick([
        { name: 'memory', value: 300 + 100 * r.int(5) },
        { name: 'label', value: 'green' },
        { name: 'netvm', value: null },
        { name: 'autostart', value: false },
        { name: 'default_dispvm', value: qubeName(r, n) },
      ]),
    ),
  ),
  'feature.set': dom0(qubeName, (r) => json({ name: r.pick(['gui', 'menu-items']), value: '1' })),
  create: dom0(none, createPayload),
  'create.disptemplate': dom0(none, createPayload),
  disposable: dom0(qubeName, (r) => json({ ...fresh(r), autoCleanup: r.int(2) === 0 })),
  clone: dom0(qubeName, (r) => json(fresh(r))),
  'device.attach': dom0(qubeName, devicePayload),
  'device.detach': dom0(qubeName, devicePayload),
  'plan.submit': dom0(none, planPayload),
  // ids count each principal's own submissions: the same on both machines
  'plan.status': dom0((r) => r.pick(['1', '2', '3', '9'])),
};

/** One line per operation of the model without a call. */
export function noninterferenceGaps(ops: readonly Operation[], calls: Readonly<Record<string, CallForm>> = CALLS): string[] {
  return gapsIn(ops, calls, 'noninterference call');
}

/** A call from inside a sandbox qube or the sink: code the agent runs there. */
function seatCall(r: Rand, n: Names, ops: readonly Operation[]): Call {
  const roll = r.int(4);
  const background = BACKGROUND_SERVICES.map((b) => b.service);
  if (roll < 2) {
    const service = r.pick(SEAT_SERVICES);
    return { seat: r.pick(SEATS), target: target(r, n), service, payload: '' };
  }
  if (roll === 2) return { seat: r.pick(SEATS), target: target(r, n), service: r.pick(background), payload: '' };
  // the principal's own operations, tried from a sandbox
  const op = r.pick(ops);
  return { ...(CALLS[op.id] as CallForm)(op, r, n), seat: r.pick(SEATS) };
}

/** One generated call: mostly the principal's, some from inside sandbox qubes; `only` keeps to the principal's calls of those operations. */
export function generateCall(r: Rand, n: Names, ops: readonly Operation[], only?: readonly string[]): Call {
  const of = (form: Operation['target']): Operation[] => ops.filter((o) => o.target === form && (!only || only.includes(o.id)));
  if (only) {
    const op = r.pick(ops.filter((o) => only.includes(o.id)));
    return (CALLS[op.id] as CallForm)(op, r, n);
  }
  if (r.int(4) === 0) return seatCall(r, n, ops);
  const roll = r.int(20);
  const call = (op: Operation): Call => (CALLS[op.id] as CallForm)(op, r, n);
  if (roll < 11) return call(r.pick(of('dom0-service')));
  if (roll < 16) {
    const admin = of('admin-api');
    // as often as an operation: a call the policy must deny
    if (r.int(admin.length + 1) === 0) return { seat: PRINCIPAL, target: target(r, n), service: r.pick(DENIED), payload: '' };
    return call(r.pick(admin));
  }
  return call(r.pick(of('in-qube')));
}

/** A sequence for one pair: starts first, so some calls reach a running sandbox qube and a backend's devices. */
export function generateSequence(seed: number, n: Names, length: number, ops: readonly Operation[] = OPERATIONS, only?: readonly string[]): Call[] {
  const r = prng(seed);
  const calls: Call[] = ['ai-box', 'ai-peer'].map((q) => ({ seat: PRINCIPAL, target: '@adminvm', service: qrexecService('start', q), payload: '', operation: 'start' }));
  while (calls.length < length) calls.push(generateCall(r, n, ops, only));
  return calls;
}

/**
 * With the gate on, after the starts: calls on a qube of the agent's world
 * at its tier, so that the operator is asked whatever the generated calls
 * name (a firewall replacement in dom0, an Admin API call and a command in
 * the dialog when the gate asks for them), and a plan, which the operator
 * answers, and its status.
 */
export function gatePrelude(): Call[] {
  const at = (id: string, target: string, payload: string, argument = ''): Call => ({ seat: PRINCIPAL, target, service: qrexecService(id, argument), payload, operation: id });
  const plan = { purpose: 'gate', steps: [{ operation: 'info', argument: 'ai-box', payload: '' }, { operation: 'run', qube: 'ai-box', argument: '', payload: encodeExecRequest({ shell: 'hostname', timeoutSeconds: 5 }).toString('base64') }] };
  return [at('firewall.set', '@adminvm', FIREWALL, 'ai-peer'), at('firewall.reload', 'ai-peer', ''), at('run', 'ai-box', EXEC), at('plan.submit', '@adminvm', json(plan)), at('plan.status', '@adminvm', '', '1')];
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

/**
 * A reply as the per-call executable gives it: a resident service's status
 * is in its trailer, so a raw refusal reads status 0. For judging what a
 * call did; what is compared stays raw.
 */
export function asExecutable(c: Call, o: Observation): Observation {
  if (typeof o.status !== 'number' || !isDom0Service(c.target, c.service)) return o;
  const r = asExecutableReply({ status: o.status, stdout: Buffer.from(o.stdout, 'latin1'), stderr: Buffer.from(o.stderr, 'latin1') });
  return { ...o, status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
}

/** Whether a call names, anywhere in it, a qube outside the agent's world of one machine. */
export function namesOutside(c: Call, outside: readonly string[]): boolean {
  const words = `${c.target} ${c.service} ${c.payload}`.split(/[\s+:"{},]+/);
  return outside.some((n) => words.includes(n));
}
