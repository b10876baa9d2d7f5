/**
 * The input grammar of each dom0 service, written from SPEC §4a and §4.15
 * rather than read from the services' own parsers, so it can judge them: a
 * valid example (naming a full-tier qube of the attack fleet), the keys of
 * its payload, and an oracle that says whether a whole (argument, payload)
 * pair is well-formed. A generated input the oracle calls well-formed is not
 * malformed and is skipped. Keyed by operation id, one entry per operation
 * of the capability model (`malformedGaps`).
 */
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
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
import { isIP } from 'node:net';
import { normaliseCall } from '../../src/sim/qrexec/normalise.js';
import { gapsIn } from '../gaps.js';

/** Qubes of the attack fleet the agent sees (any tier). */
export const VISIBLE = ['ai-tpl', 'ai-egress', 'ai-dvm', 'ai-box', 'ai-peer', 'ai-read', 'ai-execbox'] as const;
/** Names that exist outside the agent's world, and names that exist nowhere. */
export const OUTSIDE = ['vault', 'ai-outside', 'drop', 'dom0', 'sys-firewall'] as const;
export const ABSENT = ['ai-nosuch', 'nosuch'] as const;

export const PREFIX = 'ai-';
export const LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black'];
const MAX_PAYLOAD = 64 * 1024;

/** A qube name as Qubes accepts it. */
export function qubeNameShape(v: unknown): v is string {
  return (
    typeof v === 'string' &&
    /^[a-zA-Z][a-zA-Z0-9_.-]{0,30}$/.test(v) &&
    !['Domain-0', 'none', 'default'].includes(v) &&
    !v.endsWith('-dm')
  );
}

const visible = (v: unknown): boolean => typeof v === 'string' && (VISIBLE as readonly string[]).includes(v);
const newName = (v: unknown): boolean => qubeNameShape(v) && v.startsWith(PREFIX) && v.length > PREFIX.length;
const label = (v: unknown): boolean => v === undefined || (typeof v === 'string' && LABELS.includes(v));
const netvm = (v: unknown): boolean => v === undefined || v === 'inherit' || v === 'none';
const safeInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
/** The attack fleet's settings bound no lease: any positive whole number of seconds is well-formed. */
const leaseSeconds = (v: unknown): boolean => safeInt(v, 1, Number.MAX_SAFE_INTEGER);

function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Exactly these keys allowed, these required. */
function keysOk(o: Record<string, unknown>, required: readonly string[], optional: readonly string[]): boolean {
  const allowed = new Set([...required, ...optional]);
  return Object.keys(o).every((k) => allowed.has(k)) && required.every((k) => Object.hasOwn(o, k));
}

export interface PayloadGrammar {
  readonly required: readonly string[];
  readonly optional: readonly string[];
  /** Well-formed examples (each a different branch of the grammar). */
  readonly examples: readonly Record<string, unknown>[];
  /** Whether a parsed payload is well-formed. */
  valid(o: Record<string, unknown>, argument: string): boolean;
  /** A well-formed payload naming QUBE, where no argument or template does (a plan's step), for the timing check. */
  naming?(qube: string): Record<string, unknown>;
  /** An empty payload is well-formed too (the JSON is optional). */
  readonly emptyValid?: boolean;
}

export interface Grammar {
  /** What the argument is: none, a qube name, a number of seconds, or a plan's id. */
  readonly argument: 'none' | 'qube' | 'seconds' | 'plan';
  /** A well-formed argument. */
  readonly example: string;
  /** Whether an argument is well-formed (a visible qube where one is named). */
  argumentValid(a: string): boolean;
  /** null: the payload must be empty (or is in a line syntax, below). */
  readonly payload: PayloadGrammar | null;
  /** A payload in a line syntax of Qubes' own rather than JSON. */
  readonly lines?: LinesGrammar;
}

/** A payload of lines in Qubes' own syntax: examples, near misses (each breaking one rule), and the oracle. */
export interface LinesGrammar {
  readonly examples: readonly string[];
  readonly misses: readonly (readonly [string, string])[];
  valid(payload: Buffer): boolean;
}

const noArgument = (a: string): boolean => a === '';
const visibleArgument = (a: string): boolean => visible(a);

function newQube(
  extraRequired: Record<string, unknown>,
  extraOptional: Record<string, (v: unknown) => boolean>,
  extraCheck: (o: Record<string, unknown>) => boolean,
  nameOptional = false,
): PayloadGrammar {
  return {
    required: [...(nameOptional ? [] : ['name']), ...Object.keys(extraRequired)],
    optional: [...(nameOptional ? ['name'] : []), 'label', 'netvm', ...Object.keys(extraOptional)],
    examples: [
      { name: 'ai-fresh', ...extraRequired },
      { name: 'ai-fresh2', label: 'red', netvm: 'none', ...extraRequired },
      { name: 'ai-fresh3', label: 'green', netvm: 'inherit', ...extraRequired },
    ],
    valid(o) {
      if (!keysOk(o, this.required, this.optional)) return false;
      if ((!nameOptional || o['name'] !== undefined) && !newName(o['name'])) return false;
      if (!label(o['label']) || !netvm(o['netvm'])) return false;
      for (const [k, ok] of Object.entries(extraOptional)) if (o[k] !== undefined && !ok(o[k])) return false;
      return extraCheck(o);
    },
  };
}

/** The agent's event names (SPEC §4a, as docs/mcp-server.md lists them). */
const EVENT_NAMES = ['created', 'removed', 'started', 'start-failed', 'stopped', 'paused', 'unpaused', 'property-changed', 'firewall-changed'];

/** An event window's narrowing: none (empty), or non-empty lists of distinct qube names (at most 32) and event names. */
function narrowing(): PayloadGrammar {
  const list = (v: unknown, max: number, ok: (x: unknown) => boolean): boolean =>
    v === undefined || (Array.isArray(v) && v.length >= 1 && v.length <= max && v.every(ok) && new Set(v).size === v.length);
  return {
    required: [],
    optional: ['qubes', 'events'],
    emptyValid: true,
    examples: [{ qubes: ['ai-box'] }, { events: ['created', 'removed'] }, { qubes: ['ai-box', 'vault', 'ai-nothing'], events: ['property-changed'] }],
    valid(o) {
      if (!keysOk(o, this.required, this.optional) || Object.keys(o).length === 0) return false;
      return list(o['qubes'], 32, qubeNameShape) && list(o['events'], EVENT_NAMES.length, (x) => typeof x === 'string' && EVENT_NAMES.includes(x));
    },
  };
}

/**
 * One firewall rule as qubesd reads it (qubes/firewall.py, Rule.from_api_string),
 * in the form the agent writes it: `action=` first, `comment=` last.
 */
function firewallRule(line: string): boolean {
  const at = line.indexOf(' comment=');
  if (at >= 0 && !/^[A-Za-z0-9:;,./_[\] -]*$/.test(line.slice(at + 9))) return false;
  const [first, ...options] = (at < 0 ? line : line.slice(0, at)).split(' ');
  if (first !== 'action=accept' && first !== 'action=drop') return false;
  const o = new Map<string, string>();
  for (const option of options) {
    const m = /^(dst4|dst6|dsthost|proto|dstports|icmptype|specialtarget|expire)=([A-Za-z0-9.:/_-]+)$/.exec(option);
    // dst4, dst6 and dsthost are one option to qubesd
    const key = m?.[1]?.startsWith('dst') && m[1] !== 'dstports' ? 'dst' : m?.[1];
    if (!m || key === undefined || o.has(key)) return false;
    o.set(key, m[2] as string);
  }
  const dst = o.get('dst');
  if (dst !== undefined && !destination(dst)) return false;
  const proto = o.get('proto');
  if (proto !== undefined && !['tcp', 'udp', 'icmp'].includes(proto)) return false;
  const ports = o.get('dstports');
  if (ports !== undefined) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(ports);
    if (!m || (proto !== 'tcp' && proto !== 'udp')) return false;
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (hi > 65535 || lo > hi) return false;
  }
  const icmp = o.get('icmptype');
  if (icmp !== undefined && (!/^\d{1,3}$/.test(icmp) || Number(icmp) > 255 || proto !== 'icmp')) return false;
  const special = o.get('specialtarget');
  if (special !== undefined && special !== 'dns') return false;
  const expire = o.get('expire');
  return expire === undefined || (/^\d{1,12}$/.test(expire) && Number(expire) < 253_402_214_400);
}

/** An address, a network or a host name of lower-case letters, digits, dots, dashes and underscores. */
function destination(v: string): boolean {
  const [host = '', prefix, extra] = v.split('/');
  if (extra !== undefined) return false;
  if (prefix === undefined) return isIP(host) !== 0 || /^[a-z0-9._-]+$/.test(host);
  if (!/^\d{1,3}$/.test(prefix)) return false;
  const family = isIP(host);
  return (family === 4 && Number(prefix) <= 32) || (family === 6 && Number(prefix) <= 128);
}

const FIREWALL_RULES: LinesGrammar = {
  examples: ['action=accept dsthost=192.0.2.1\naction=drop\n', 'action=accept dsthost=example.com proto=tcp dstports=443-443 comment=the web\naction=accept specialtarget=dns\naction=drop\n'],
  misses: [
    ['no rules', ''],
    ['no final newline', 'action=drop'],
    ['an empty line', 'action=accept\n\naction=drop\n'],
    ['carriage returns', 'action=accept\r\naction=drop\r\n'],
    ['no action', 'dsthost=192.0.2.1\n'],
    ['action not first', 'dsthost=192.0.2.1 action=accept\n'],
    ['an unknown action', 'action=reject\n'],
    ['dstname, which the agent does not write', 'action=accept dstname=example.com\n'],
    ['an unknown key', 'action=accept dstaddr=192.0.2.1\n'],
    ['a key twice', 'action=accept proto=tcp proto=udp\n'],
    ['two destinations', 'action=accept dst4=192.0.2.1 dsthost=example.com\n'],
    ['ports without a protocol', 'action=accept dstports=443\n'],
    ['ports with icmp', 'action=accept proto=icmp dstports=1-2\n'],
    ['a port past 65535', 'action=accept proto=tcp dstports=1-65536\n'],
    ['a port range backwards', 'action=accept proto=tcp dstports=443-80\n'],
    ['an ICMP type without icmp', 'action=accept icmptype=8\n'],
    ['an ICMP type past 255', 'action=accept proto=icmp icmptype=256\n'],
    ['an unknown protocol', 'action=accept proto=sctp\n'],
    ['a special target but dns', 'action=accept specialtarget=ntp\n'],
    ['an IPv4 prefix past 32', 'action=accept dst4=192.0.2.0/33\n'],
    ['an IPv6 prefix past 128', 'action=accept dst6=2001:db8::/129\n'],
    ['two slashes', 'action=accept dsthost=192.0.2.0/24/8\n'],
    ['an upper-case host name', 'action=accept dsthost=Example.com\n'],
    ['an expiry that is not a number', 'action=accept expire=soon\n'],
    ['an expiry past year 9999', 'action=accept expire=999999999999\n'],
    ['a comment with an equals sign', 'action=accept comment=a=b\n'],
    ['a comment not last', 'action=accept comment=x proto=tcp\n'],
    ['a double space', 'action=accept  proto=tcp\n'],
    ['a trailing space', 'action=accept \n'],
    ['non-ASCII', 'action=accept dsthost=\u00e9xample.com\n'],
    ['a NUL', 'action=accept\0\n'],
    ['a JSON payload', '{"rules":["action=drop"]}'],
    ['one rule past 512', 'action=drop\n'.repeat(513)],
  ],
  valid(payload) {
    const text = payload.toString('utf8');
    if (!text.endsWith('\n') || Buffer.byteLength(text) !== payload.length || [...text].some((c) => c > '\x7e')) return false;
    const rules = text.slice(0, -1).split('\n');
    return rules.length <= 512 && rules.every(firewallRule);
  },
};

const SETTABLE: Record<string, (v: unknown) => boolean> = {
  label: (v) => typeof v === 'string' && LABELS.includes(v),
  memory: (v) => safeInt(v, 1, 1 << 20),
  maxmem: (v) => safeInt(v, 0, 1 << 20),
  vcpus: (v) => safeInt(v, 1, 512),
  autostart: (v) => typeof v === 'boolean',
  include_in_backups: (v) => typeof v === 'boolean',
  default_dispvm: (v) => qubeNameShape(v),
  netvm: (v) => v === null || v === 'none',
};

const PORT = /^[A-Za-z0-9_.-]{1,64}$/;
const DEVICE_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const DEVICE_OPTIONS: Record<string, readonly string[]> = { block: ['read-only'], usb: [], mic: [] };

function device(withOptions: boolean): PayloadGrammar {
  return {
    required: ['class', 'backend', 'port'],
    optional: withOptions ? ['device_id', 'options'] : ['device_id'],
    examples: withOptions
      ? [
          { class: 'block', backend: 'ai-peer', port: 'sda' },
          { class: 'block', backend: 'ai-peer', port: 'sdb', device_id: 'disk:1', options: { 'read-only': true } },
          { class: 'usb', backend: 'ai-peer', port: '2-1', device_id: '*' },
        ]
      : [
          { class: 'block', backend: 'ai-peer', port: 'sda' },
          { class: 'mic', backend: 'ai-peer', port: 'mic', device_id: 'm.1' },
        ],
    valid(o, argument) {
      if (!keysOk(o, this.required, this.optional)) return false;
      const cls = o['class'];
      if (typeof cls !== 'string' || !Object.hasOwn(DEVICE_OPTIONS, cls)) return false;
      if (!qubeNameShape(o['backend']) || o['backend'] === argument) return false;
      if (typeof o['port'] !== 'string' || !PORT.test(o['port'])) return false;
      const id = o['device_id'];
      if (id !== undefined && (typeof id !== 'string' || (id !== '*' && !DEVICE_ID.test(id)))) return false;
      const opts = o['options'];
      if (opts === undefined) return true;
      if (!plainObject(opts)) return false;
      return Object.entries(opts).every(([k, v]) => (DEVICE_OPTIONS[cls] ?? []).includes(k) && typeof v === 'boolean');
    },
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A plan step's members by how its operation is reached: a dom0 service's call names no qube, an Admin API call takes no argument. */
const STEP_KEYS: Readonly<Record<string, readonly string[]>> = {
  'dom0-service': ['operation', 'argument', 'payload'],
  'admin-api': ['operation', 'qube', 'payload'],
  'in-qube': ['operation', 'qube', 'argument', 'payload'],
};

/**
 * Whether a plan's step may be well-formed: a dom0 service's call as that
 * service's grammar says, any other call on a visible qube (its request is
 * the qube's to judge, so it is not judged here: such a step counts as
 * well-formed and is not sent).
 */
function planStep(s: unknown, ops: readonly Operation[]): boolean {
  if (!plainObject(s)) return false;
  const op = ops.find((o) => o.id === s['operation'] && o.id !== 'events' && !o.id.startsWith('plan.'));
  const keys = op ? STEP_KEYS[op.target] : undefined;
  if (!op || !keys || !keysOk(s, keys, []) || typeof s['payload'] !== 'string' || !BASE64.test(s['payload'])) return false;
  const payload = Buffer.from(s['payload'], 'base64');
  if (op.target === 'dom0-service') {
    const g = GRAMMARS[op.id];
    return g !== undefined && typeof s['argument'] === 'string' && wellFormed(g, s['argument'], payload);
  }
  return visible(s['qube']) && (op.target !== 'admin-api' || payload.length === 0);
}

/** A plan: a purpose line of printable ASCII and 1 to 32 steps, each an operation of the model with the arguments its call takes. */
function plan(ops: readonly Operation[]): PayloadGrammar {
  const step = (operation: string, argument: string): Record<string, unknown> => ({ operation, argument, payload: '' });
  return {
    required: ['purpose', 'steps'],
    optional: [],
    examples: [
      { purpose: 'look around', steps: [step('info', 'ai-box')] },
      { purpose: 'restart the box', steps: [step('start', 'ai-box'), step('shutdown', 'ai-box'), step('start', 'ai-box')] },
    ],
    valid(o) {
      if (!keysOk(o, this.required, this.optional)) return false;
      const { purpose, steps } = o;
      if (typeof purpose !== 'string' || !/^[\x20-\x7e]{1,200}$/.test(purpose)) return false;
      return Array.isArray(steps) && steps.length >= 1 && steps.length <= 32 && steps.every((s) => planStep(s, ops));
    },
    naming: (qube) => ({ purpose: 'timing', steps: [step('start', qube)] }),
  };
}

/** The grammar of each dom0 service, by the operation it serves; an operation missing here fails the check. */
export const GRAMMARS: Readonly<Record<string, Grammar>> = {
  list: { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  'pool.figures': { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  'tombstone.list': { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  'device.list': { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  events: {
    argument: 'seconds',
    example: '1',
    argumentValid: (a) => /^[1-9][0-9]?$/.test(a) && Number(a) <= 60,
    payload: narrowing(),
  },
  info: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  start: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  renew: {
    argument: 'qube',
    example: 'ai-box',
    argumentValid: visibleArgument,
    payload: {
      required: [],
      optional: ['seconds'],
      examples: [{}, { seconds: 3600 }],
      valid(o) {
        return keysOk(o, this.required, this.optional) && (o['seconds'] === undefined || leaseSeconds(o['seconds']));
      },
    },
  },
  remove: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  // the attack fleet has no tombstones: every name is refused
  'tombstone.restore': { argument: 'qube', example: 'ai-box', argumentValid: () => false, payload: null },
  checkpoint: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  revert: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  shutdown: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  kill: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  'firewall.set': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null, lines: FIREWALL_RULES },
  create: {
    argument: 'none',
    example: '',
    argumentValid: noArgument,
    payload: newQube({ template: 'ai-tpl' }, { leaseSeconds }, (o) => visible(o['template'])),
  },
  'create.disptemplate': {
    argument: 'none',
    example: '',
    argumentValid: noArgument,
    payload: newQube({ template: 'ai-tpl' }, { leaseSeconds }, (o) => visible(o['template'])),
  },
  clone: { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: newQube({}, { leaseSeconds }, () => true) },
  disposable: {
    argument: 'qube',
    example: 'ai-dvm',
    argumentValid: visibleArgument,
    payload: newQube({}, { autoCleanup: (v) => typeof v === 'boolean' }, () => true, true),
  },
  'property.set': {
    argument: 'qube',
    example: 'ai-box',
    argumentValid: visibleArgument,
    payload: {
      required: ['name', 'value'],
      optional: [],
      examples: [
        { name: 'memory', value: 400 },
        { name: 'label', value: 'red' },
        { name: 'netvm', value: null },
        { name: 'autostart', value: false },
        { name: 'vcpus', value: 2 },
        { name: 'default_dispvm', value: 'ai-dvm' },
      ],
      valid(o) {
        if (!keysOk(o, this.required, this.optional) || typeof o['name'] !== 'string') return false;
        const check = Object.hasOwn(SETTABLE, o['name']) ? SETTABLE[o['name']] : undefined;
        return check !== undefined && check(o['value']);
      },
    },
  },
  'feature.set': {
    argument: 'qube',
    example: 'ai-box',
    argumentValid: visibleArgument,
    payload: {
      required: ['name', 'value'],
      optional: [],
      examples: [
        { name: 'gui', value: '1' },
        { name: 'menu-items', value: 'xterm.desktop' },
      ],
      valid(o) {
        if (!keysOk(o, this.required, this.optional)) return false;
        const n = o['name'];
        return typeof n === 'string' && /^[a-zA-Z0-9_.-]{1,64}$/.test(n) && n !== 'internal' && typeof o['value'] === 'string';
      },
    },
  },
  'device.attach': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: device(true) },
  'device.detach': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: device(false) },
  'plan.submit': { argument: 'none', example: '', argumentValid: noArgument, payload: plan(OPERATIONS) },
  // no plan exists where the check runs: a well-formed id is refused too, and is not sent
  'plan.status': { argument: 'plan', example: '1', argumentValid: (a) => /^[1-9][0-9]{0,8}$/.test(a), payload: null },
};

/**
 * An operation the policy decides alone: what qmcp decides is its target,
 * which must be a visible qube at the operation's tier; the argument and
 * payload are for qubesd or the qube itself to judge (SPEC §5). Its grammar
 * is a well-formed argument and payload, sent toward near misses of a target.
 */
export interface TargetGrammar {
  readonly argument: string;
  readonly payload: Buffer;
}

const bare: TargetGrammar = { argument: '', payload: Buffer.alloc(0) };

/** The target grammar of each operation the policy decides, by operation id. */
export const TARGET_GRAMMARS: Readonly<Record<string, TargetGrammar>> = {
  state: bare,
  'firewall.get': bare,
  run: { argument: '', payload: encodeExecRequest({ shell: 'id -u', user: 'root', cwd: '/', env: ['A=1'] }) },
  'file.write': { argument: '', payload: encodeWriteFileRequest({ path: '/root/x', content: 'x' }) },
  'file.read': { argument: '', payload: encodeReadFileRequest({ path: '/etc/hostname', offset: 1, limit: 10 }) },
  'dir.list': { argument: '', payload: encodeListDirRequest({ path: '/etc', limit: 10 }) },
  'file.stat': { argument: '', payload: encodeStatRequest({ path: '/etc/hostname' }) },
  'job.start': { argument: '', payload: encodeExecRequest({ shell: 'id -u', user: 'root', cwd: '/', env: ['A=1'] }) },
  'job.output': { argument: '', payload: encodeJobOutputRequest({ job: '0123456789ab', stream: 'stdout', offset: 0, limit: 1024 }) },
  'job.wait': { argument: '', payload: encodeJobWaitRequest({ job: '0123456789ab', timeoutSeconds: 0 }) },
  'job.kill': { argument: '', payload: encodeJobKillRequest({ job: '0123456789ab', signal: 'TERM' }) },
  'job.list': { argument: '', payload: encodeJobListRequest() },
  copy: { argument: 'ai-peer', payload: encodeCopyToRequest({ paths: ['/etc/hostname'] }) },
  'port.forward': { argument: 'ai-peer', payload: encodePortForwardRequest({ port: 8080, localPort: 9080 }) },
  'firewall.reload': bare,
  pause: bare,
  unpause: bare,
};

/** Whether a target reaches the policy as a visible qube's name (qrexec cleans it first). */
export function wellFormedTarget(target: string): boolean {
  return (VISIBLE as readonly string[]).includes(normaliseCall(target, '').target);
}

/** One line per operation without a grammar: a dom0 service's, or a target grammar for what the policy decides. */
export function malformedGaps(ops: readonly Operation[], grammars = GRAMMARS, targets = TARGET_GRAMMARS): string[] {
  return [
    ...gapsIn(ops, grammars, 'malformed grammar', (op) => op.target === 'dom0-service'),
    ...gapsIn(ops, targets, 'malformed target grammar', (op) => op.target !== 'dom0-service'),
  ];
}

/** Whether (argument, payload bytes) is well-formed for the grammar, decoding as a service would. */
export function wellFormed(g: Grammar, argument: string, payload: Buffer): boolean {
  if (!g.argumentValid(argument)) return false;
  if (g.lines) return payload.length <= MAX_PAYLOAD && g.lines.valid(payload);
  if (g.payload === null) return payload.length === 0;
  if (payload.length === 0 && g.payload.emptyValid === true) return true;
  if (payload.length > MAX_PAYLOAD) return false;
  let o: unknown;
  try {
    o = JSON.parse(payload.toString('utf8'));
  } catch {
    return false;
  }
  return plainObject(o) && g.payload.valid(o, argument);
}

/** Argument near misses: every rule a qube name or a number of seconds can break, and names that are not the agent's. */
export const BAD_NAMES: readonly string[] = [
  '',
  ' ',
  '@adminvm',
  '@default',
  '@dispvm',
  '@dispvm:ai-dvm',
  '@tag:ai-managed',
  '@anyvm',
  'uuid:00000000-0000-0000-0000-000000000000',
  '..',
  '.',
  '../ai-box',
  'ai-box/..',
  'ai/box',
  '-ai-box',
  '_ai-box',
  '1ai-box',
  'ai-box-dm',
  'Domain-0',
  'none',
  'default',
  'dom0',
  'AI-BOX',
  'Ai-box',
  'a'.repeat(32),
  'ai-' + 'x'.repeat(60),
  'ai-box\0',
  '\0',
  'ai-box\n',
  'ai-box\r\n',
  'ai box',
  ' ai-box',
  'ai-box ',
  'ai-box\t',
  'ai-box+x',
  'ai-box;id',
  '$(id)',
  '`id`',
  "ai-box'",
  'ai-box"',
  'ai-box\\',
  '\u0430i-box',
  'ai-b\u043ex',
  '\uff41i-box',
  '\u202eai-box',
  'ai-box\u200b',
  'ai-bo\u0301x',
  '\ud800',
  'ai-\u00e9',
  '0',
  '-1',
  '1.5',
  '9007199254740993',
  '1e3',
  '61',
  '01',
  '100',
  ...VISIBLE.map((n) => n.toUpperCase()),
  ...OUTSIDE,
  ...ABSENT,
];

/** Values of every wrong type, and numbers at and past each edge. */
export const BAD_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -0.5,
  2 ** 53 + 1,
  -(2 ** 53) - 1,
  1e308,
  (1 << 20) + 1,
  513,
  '',
  '400',
  '1',
  'True',
  'none ',
  'NONE',
  'Red',
  'red\0',
  'inherit\n',
  'ai-dvm\0',
  [],
  ['red'],
  {},
  { value: 'red' },
  [[[[[[[[[[[[['deep']]]]]]]]]]]]],
  ...BAD_NAMES,
];

/** A JSON value nested `depth` levels deep. */
export function deeplyNested(depth: number): string {
  return '['.repeat(depth) + '1' + ']'.repeat(depth);
}
