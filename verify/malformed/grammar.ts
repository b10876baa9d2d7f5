/**
 * The input grammar of each dom0 service, written from SPEC §4a and §4.15
 * rather than read from the services' own parsers, so it can judge them: a
 * valid example (naming a full-tier qube of the attack fleet), the keys of
 * its payload, and an oracle that says whether a whole (argument, payload)
 * pair is well-formed. A generated input the oracle calls well-formed is not
 * malformed and is skipped.
 */

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
}

export interface Grammar {
  /** What the argument is: none, a qube name, or a number of seconds. */
  readonly argument: 'none' | 'qube' | 'seconds';
  /** A well-formed argument. */
  readonly example: string;
  /** Whether an argument is well-formed (a visible qube where one is named). */
  argumentValid(a: string): boolean;
  /** null: the payload must be empty. */
  readonly payload: PayloadGrammar | null;
}

const noArgument = (a: string): boolean => a === '';
const visibleArgument = (a: string): boolean => visible(a);

function newQube(extraRequired: Record<string, unknown>, extraOptional: Record<string, (v: unknown) => boolean>, extraCheck: (o: Record<string, unknown>) => boolean): PayloadGrammar {
  return {
    required: ['name', ...Object.keys(extraRequired)],
    optional: ['label', 'netvm', ...Object.keys(extraOptional)],
    examples: [
      { name: 'ai-fresh', ...extraRequired },
      { name: 'ai-fresh2', label: 'red', netvm: 'none', ...extraRequired },
      { name: 'ai-fresh3', label: 'green', netvm: 'inherit', ...extraRequired },
    ],
    valid(o) {
      if (!keysOk(o, this.required, this.optional)) return false;
      if (!newName(o['name']) || !label(o['label']) || !netvm(o['netvm'])) return false;
      for (const [k, ok] of Object.entries(extraOptional)) if (o[k] !== undefined && !ok(o[k])) return false;
      return extraCheck(o);
    },
  };
}

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

/** The grammar of each known service; a service missing here is fuzzed with the generic one only. */
export const GRAMMARS: Readonly<Record<string, Grammar>> = {
  'qmcp.List': { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  'qmcp.PoolFigures': { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  'qmcp.DeviceList': { argument: 'none', example: '', argumentValid: noArgument, payload: null },
  'qmcp.Events': {
    argument: 'seconds',
    example: '1',
    argumentValid: (a) => /^[1-9][0-9]?$/.test(a) && Number(a) <= 60,
    payload: null,
  },
  'qmcp.Info': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  'qmcp.Start': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  'qmcp.Remove': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: null },
  'qmcp.Create': {
    argument: 'none',
    example: '',
    argumentValid: noArgument,
    payload: newQube({ template: 'ai-tpl' }, {}, (o) => visible(o['template'])),
  },
  'qmcp.CreateDispTemplate': {
    argument: 'none',
    example: '',
    argumentValid: noArgument,
    payload: newQube({ template: 'ai-tpl' }, {}, (o) => visible(o['template'])),
  },
  'qmcp.Clone': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: newQube({}, {}, () => true) },
  'qmcp.CreateDisposable': {
    argument: 'qube',
    example: 'ai-dvm',
    argumentValid: visibleArgument,
    payload: newQube({}, { autoCleanup: (v) => typeof v === 'boolean' }, () => true),
  },
  'qmcp.SetProperty': {
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
  'qmcp.SetFeature': {
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
  'qmcp.DeviceAttach': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: device(true) },
  'qmcp.DeviceDetach': { argument: 'qube', example: 'ai-box', argumentValid: visibleArgument, payload: device(false) },
};

/** Whether (argument, payload bytes) is well-formed for the grammar, decoding as a service would. */
export function wellFormed(g: Grammar, argument: string, payload: Buffer): boolean {
  if (!g.argumentValid(argument)) return false;
  if (g.payload === null) return payload.length === 0;
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
