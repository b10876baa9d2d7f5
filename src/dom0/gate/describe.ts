/**
 * What the operator reads before answering a gated call or a plan's step
 * (docs/action-gate.md): plain language from the model and the live state
 * read as dom0, with the concrete change. Every value the agent chose is
 * shown quoted by `quote` (printable ASCII only, controls and non-ASCII
 * escaped), so no value can start a line or pass for the prompt's own text.
 */
import type { Settings } from '../../shared/model/settings.js';
import { OPERATIONS } from '../../shared/model/capabilities.js';
import { isQubeName } from '../../shared/names.js';
import { quote } from '../audit/escape.js';
import { footprint } from '../create/budget.js';
import type { Qubesd } from '../qubesd.js';
import { scopeRules } from '../service/config.js';
import { tierOf } from '../service/snapshot.js';

/** One call as the agent made it: the bytes a dom0 service or the policy receives. */
export interface CallToDescribe {
  readonly principal: string;
  /** The capability-model operation id. */
  readonly operation: string;
  /** The qrexec argument after `+` ('' when none). */
  readonly argument: string;
  readonly payload: Buffer;
  /** The qube a policy-decided call is addressed to (its qrexec target); dom0-service calls name theirs in the argument. */
  readonly target?: string;
}

export interface DescribeContext {
  readonly qubesd: Qubesd;
  readonly settings: Settings;
  readonly now: Date;
}

/** How much of an opaque payload the generic description shows. */
const SHOWN_BYTES = 2048;
const GiB = 1024 ** 3;

/** Lines for the operator, each one line of printable ASCII. */
export async function describeCall(call: CallToDescribe, ctx: DescribeContext): Promise<string[]> {
  const op = OPERATIONS.find((o) => o.id === call.operation);
  const lines = [
    `asked by: ${quote(call.principal)}`,
    op ? `operation: ${op.id} (${op.description})` : `operation: unknown ${quote(call.operation)}`,
    ...(await change(call, ctx)),
  ];
  // every value above went through quote(); this only makes the promise checkable
  for (const line of lines) if (!/^[\x20-\x7e]*$/.test(line)) throw new Error('describeCall built a line that is not printable ASCII');
  return lines;
}

async function change(call: CallToDescribe, ctx: DescribeContext): Promise<string[]> {
  const json = jsonPayload(call.payload);
  const arg = call.argument;
  switch (call.operation) {
    case 'start':
      return [`starts ${await qube(ctx, arg)}`];
    case 'renew':
      return [`renews the lease of ${await qube(ctx, arg)} for ${typeof json?.['seconds'] === 'number' ? `${json['seconds']} seconds` : 'the default lease'} from now`];
    case 'remove':
      return removal(ctx, arg);
    case 'property.set':
      return json ? propertyChange(ctx, arg, json) : generic(call);
    case 'feature.set':
      return json ? featureChange(ctx, arg, json) : generic(call);
    case 'create':
    case 'create.disptemplate':
      return json ? creation(ctx, call.operation === 'create' ? 'an AppVM' : 'a disposable template (AppVM)', 'template', String(json['template']), json) : generic(call);
    case 'clone':
      return json ? creation(ctx, 'a clone (of the same class)', 'source', arg, json) : generic(call);
    case 'disposable':
      return json ? disposable(ctx, arg, json) : generic(call);
    case 'device.attach':
    case 'device.detach':
      return json ? device(ctx, call.operation === 'device.attach' ? 'attaches' : 'detaches', arg, json) : generic(call);
    case 'firewall.set':
      return firewall(ctx, arg, call.payload);
    case 'shutdown':
      return [`shuts down ${await qube(ctx, arg)}`, ...(await autoCleanup(ctx, arg))];
    case 'kill':
      return [`kills ${await qube(ctx, arg)} at once, without a clean shutdown`, ...(await autoCleanup(ctx, arg))];
    case 'pause':
    case 'unpause':
    case 'firewall.reload':
      return [`acts on ${await qube(ctx, call.target ?? '')}`];
    case 'run':
    case 'file.write':
    case 'file.read':
    case 'dir.list':
    case 'file.stat':
    case 'copy':
      return inQube(ctx, call);
    default:
      return generic(call);
  }
}

function jsonPayload(payload: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A JSON value the agent chose: strings quoted, numbers, booleans and null as literals. */
function value(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return JSON.stringify(v);
  return quote(JSON.stringify(v) ?? String(v));
}

async function attempt<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch {
    return null;
  }
}

/** `qube "NAME" (AppVM, running, tier full, 2.0 GiB on disk)`, from the live state. */
export async function qube(ctx: DescribeContext, name: string): Promise<string> {
  if (!isQubeName(name)) return `qube ${quote(name)} (not a qube name)`;
  const listed = (await attempt(() => ctx.qubesd.list(name)))?.get(name);
  if (!listed) return `qube ${quote(name)} (does not exist now)`;
  const tags = await attempt(() => ctx.qubesd.tags(name));
  const facts = [listed.klass, listed.state.toLowerCase()];
  if (tags) {
    const set = new Set(tags);
    const { umbrella, sink } = ctx.settings.tags;
    if (set.has(sink) && !set.has(umbrella)) facts.push('a sink');
    else if (!set.has(umbrella)) facts.push('outside the umbrella');
    else facts.push(`tier ${tierOf(set, scopeRules(ctx.settings))}`);
  }
  const disk = await attempt(() => footprint(ctx.qubesd, name));
  if (disk) facts.push(`${(disk.total / GiB).toFixed(1)} GiB on disk`);
  return `qube ${quote(name)} (${facts.map((f) => f.replace(/[^\x20-\x7e]/g, '?')).join(', ')})`;
}

async function isAutoCleanup(ctx: DescribeContext, name: string): Promise<boolean> {
  return (await attempt(() => ctx.qubesd.property(name, 'auto_cleanup')))?.value === 'True';
}

/** What stopping the qube also does: Qubes deletes an auto-cleanup disposable once it halts. */
async function autoCleanup(ctx: DescribeContext, name: string): Promise<string[]> {
  return (await isAutoCleanup(ctx, name)) ? ['an auto-cleanup disposable: once halted, Qubes deletes it with its data (no tombstone)'] : [];
}

async function removal(ctx: DescribeContext, name: string): Promise<string[]> {
  const lines = [`removes ${await qube(ctx, name)}`];
  if (await isAutoCleanup(ctx, name)) {
    lines.push('an auto-cleanup disposable: it is halted and Qubes deletes it with its data (no tombstone)');
    return lines;
  }
  const days = ctx.settings.tombstoneRetentionDays;
  const until = days === null ? 'until the operator reaps it (retention unset: never reaped)' : `for ${days} days (until ${new Date(ctx.now.getTime() + days * 86_400_000).toISOString().slice(0, 10)})`;
  // --principal: with several principals on the machine a restore must name whose tombstone it is
  lines.push(`it is halted and kept as a tombstone ${until}, restorable with \`qmcp dom0 tombstones restore ${quote(name)} --principal ${quote(ctx.settings.principal)}\``);
  return lines;
}

async function propertyChange(ctx: DescribeContext, name: string, json: Record<string, unknown>): Promise<string[]> {
  const prop = typeof json['name'] === 'string' ? json['name'] : '';
  const old = await attempt(() => ctx.qubesd.property(name, prop));
  const was = old ? `${old.value === '' ? 'none' : quote(old.value)}${old.isDefault ? ' (default)' : ''}` : 'unreadable';
  const next = prop === 'netvm' && (json['value'] === null || json['value'] === 'none') ? 'none (no network)' : value(json['value']);
  return [`on ${await qube(ctx, name)}`, `property ${quote(prop)}: ${was} -> ${next}`];
}

async function featureChange(ctx: DescribeContext, name: string, json: Record<string, unknown>): Promise<string[]> {
  const feature = typeof json['name'] === 'string' ? json['name'] : '';
  const old = await attempt(() => ctx.qubesd.call('admin.vm.feature.Get', name, feature));
  return [`on ${await qube(ctx, name)}`, `feature ${quote(feature)}: ${old === null ? 'not set' : quote(old)} -> ${value(json['value'])}`];
}

function network(json: Record<string, unknown>): string {
  if (json['netvm'] === 'none') return 'network: none';
  return 'network: inherited (the egress qube or none, by the create rule)';
}

async function creation(ctx: DescribeContext, what: string, role: string, from: string, json: Record<string, unknown>): Promise<string[]> {
  return [
    `creates ${what} named ${value(json['name'])}`,
    `${role}: ${await qube(ctx, from)}`,
    `label: ${json['label'] === undefined ? `the ${role}'s` : value(json['label'])}; ${network(json)}`,
  ];
}

async function disposable(ctx: DescribeContext, from: string, json: Record<string, unknown>): Promise<string[]> {
  const cleanup = json['autoCleanup'] === false ? 'persistent' : 'auto-cleanup (deleted when it halts)';
  return [
    `creates a disposable ${json['name'] === undefined ? 'named by dom0 (PREFIXdispN)' : `named ${value(json['name'])}`}, ${cleanup}`,
    `disposable template: ${await qube(ctx, from)}`,
    `label: ${json['label'] === undefined ? "the disposable template's" : value(json['label'])}; ${network(json)}`,
  ];
}

async function device(ctx: DescribeContext, verb: string, frontend: string, json: Record<string, unknown>): Promise<string[]> {
  const backend = typeof json['backend'] === 'string' ? json['backend'] : '';
  const id = json['device_id'] === undefined ? 'any device on that port' : `device id ${value(json['device_id'])}`;
  const lines = [
    `${verb} ${value(json['class'])} device at port ${value(json['port'])} (${id})`,
    `backend (where the device is): ${await qube(ctx, backend)}`,
    `frontend (which gets it): ${await qube(ctx, frontend)}`,
  ];
  if (json['options'] !== undefined) lines.push(`options: ${value(json['options'])}`);
  return lines;
}

/** The rule lines of a firewall payload or of `admin.vm.firewall.Get`. */
function ruleLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** A line diff by longest common subsequence: `-` dropped, `+` added, ` ` kept. */
export function diffLines(before: readonly string[], after: readonly string[]): string[] {
  const n = before.length;
  const m = after.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = before[i] === after[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && before[i] === after[j]) {
      out.push(`  ${quote(before[i++]!)}`);
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${quote(before[i++]!)}`);
    else out.push(`+ ${quote(after[j++]!)}`);
  }
  return out;
}

async function firewall(ctx: DescribeContext, name: string, payload: Buffer): Promise<string[]> {
  const old = await attempt(() => ctx.qubesd.call('admin.vm.firewall.Get', name));
  const after = ruleLines(payload.toString('utf8'));
  const lines = [`replaces the firewall rules of ${await qube(ctx, name)}`];
  if (old === null) return [...lines, 'current rules: unreadable', 'new rules:', ...after.map((r) => `+ ${quote(r)}`)];
  return [...lines, 'rules, before -> after (- dropped, + added):', ...diffLines(ruleLines(old), after)];
}

/** The header fields of an in-qube request (`key base64-or-count` lines up to a blank one), and the bytes after. */
function inQubeRequest(payload: Buffer): { fields: [string, string][]; body: number } | null {
  const end = payload.indexOf('\n\n');
  if (end < 0) return null;
  const [magic, ...rest] = payload.subarray(0, end).toString('latin1').split('\n');
  if (!magic?.startsWith('qmcp ')) return null;
  const fields = rest.map((l): [string, string] => {
    const sp = l.indexOf(' ');
    return sp < 0 ? [l, ''] : [l.slice(0, sp), l.slice(sp + 1)];
  });
  return { fields, body: payload.length - end - 2 };
}

function text(b64: string): string {
  return quote(Buffer.from(b64, 'base64').toString('utf8'));
}

async function inQube(ctx: DescribeContext, call: CallToDescribe): Promise<string[]> {
  const req = inQubeRequest(call.payload);
  if (!req) return generic(call);
  const where = await qube(ctx, call.target ?? '');
  const all = (key: string): string[] => req.fields.filter(([k]) => k === key).map(([, v]) => text(v));
  const one = (key: string): string => req.fields.find(([k]) => k === key)?.[1] ?? '';
  switch (call.operation) {
    case 'run':
    case 'job.start': {
      const argv = all('argv');
      const command = argv.length > 0 ? `argv [${argv.join(', ')}]` : `sh -c ${all('shell')[0] ?? '""'}`;
      const user = one('user');
      const as = user === '' ? "the qube's default user" : quote(user);
      const cwd = all('cwd');
      const env = all('env');
      return [
        call.operation === 'job.start' ? `starts a background job as ${as} in ${where}, running until it ends, is killed or the qube stops` : `runs as ${as} in ${where}`,
        `command: ${command}`,
        ...cwd.map((dir) => `in directory: ${dir}`),
        ...(env.length > 0 ? [`environment: ${env.join(', ')}`] : []),
        call.operation === 'job.start' ? `stdin: ${req.body} bytes` : `stdin: ${req.body} bytes; timeout: ${quote(one('timeout'))} s`,
      ];
    }
    case 'job.kill':
      return [`signals a background job in ${where}`, `job: ${quote(one('job'))}; signal: ${quote(one('signal'))}`];
    case 'file.write':
      return [`writes into ${where}`, `path: ${all('path')[0] ?? '""'} (mode ${quote(one('mode'))}), ${req.body} bytes`];
    case 'file.read':
      return [`reads out of ${where}`, `path: ${all('path')[0] ?? '""'}`];
    case 'dir.list':
      return [`lists a directory of ${where}`, `path: ${all('path')[0] ?? '""'}`];
    case 'file.stat':
      return [`stats a path in ${where}`, `path: ${all('path')[0] ?? '""'}`];
    case 'copy':
      return [`copies from ${where}`, `to: ${await qube(ctx, call.argument)}`, `paths: ${all('path').join(', ')}`];
    default:
      return generic(call);
  }
}

/** Whatever else: the argument and the payload, each quoted as one value. */
function generic(call: CallToDescribe): string[] {
  const shown = call.payload.subarray(0, SHOWN_BYTES).toString('utf8');
  const more = call.payload.length > SHOWN_BYTES ? ` (and ${call.payload.length - SHOWN_BYTES} more bytes)` : '';
  return [
    ...(call.target === undefined ? [] : [`qube: ${quote(call.target)}`]),
    `argument: ${quote(call.argument)}`,
    `payload (${call.payload.length} bytes): ${quote(shown)}${more}`,
  ];
}
