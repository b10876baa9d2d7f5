/**
 * `qmcp dom0 principal`: adds, removes and lists the principals of the
 * settings file (docs/principals.md). Each edit is installed with the
 * installer's own code, which reads it through the same parser as the
 * services and writes nothing when it is refused; the manifest then lists
 * what the edit wrote, so uninstall still restores the tree.
 */
import { readFileSync } from 'node:fs';
import type { AuditLog } from '../audit/index.js';
import { DEFAULT_SETTINGS, MACHINE_KEYS, hasFatal, parsePrincipals, settingsPath } from '../../shared/model/index.js';
import type { Mode, Settings } from '../../shared/model/index.js';
import { SETTINGS_KEYS } from '../../shared/model/settings.js';
import { ownerTag } from '../../shared/model/marks.js';
import { InstallError, installDom0 } from '../install/index.js';
import { readManifest } from '../install/manifest.js';
import { defaultSettingsJson } from '../install/policy.js';
import { writeSettingsOf } from '../create/settings.js';
import { acquireBudgetLock } from '../create/lock.js';
import type { HeldLock } from '../create/lock.js';
import { entomb } from '../tombstones/entomb.js';
import { isTombstoneMarker } from '../tombstones/markers.js';
import { Qubesd } from '../qubesd.js';
import { QubesdUnreachable, readQubes } from './facts.js';
import type { QubeRecord } from './facts.js';
import { OperatorRefusal } from './tier.js';

type Json = Record<string, unknown>;

export interface PrincipalOps {
  readonly root: string;
  /** Test seam: takes the budget lock in place of the lock file (to watch it). */
  lock?(root: string): Promise<HeldLock | null>;
  /** qubesd's socket: the qubes each principal owns are read there. */
  readonly socket: string;
  readonly audit: AuditLog;
  readonly operator?: string;
  readonly now?: () => Date;
}

export interface PrincipalSpec {
  readonly name: string;
  /** Default `NAME-`. */
  readonly prefix?: string;
  /** Each role's tag is BASE-managed, -exec, -net, -full, -dump; default the prefix without its last `-`. */
  readonly tagBase?: string;
  readonly mode?: Mode;
  readonly egress?: string;
  /** List the egress qube in shared.egressQubes: another principal has it too. */
  readonly shareEgress?: boolean;
}

/** What remove does with the qubes the principal owns; 'refuse' while there are any. */
export type Disposal = 'refuse' | 'entomb' | 'release';

export interface PrincipalRow {
  readonly principal: string;
  readonly prefix: string;
  readonly umbrella: string;
  readonly mode: Mode;
  /** Qubes under its umbrella (hand-tagged or created by its agent); null when qubesd did not answer. */
  readonly world: number | null;
  /** Qubes carrying its sink tag; null when qubesd did not answer. */
  readonly sinks: number | null;
  /** Qubes with its owner tag (its agent created or removed them), tombstones included; null when qubesd did not answer. */
  readonly owned: number | null;
  readonly tombstones: number | null;
}

const PREFIX = /^[a-z][a-z0-9-]{0,15}$/;
/** As long as a create waits for the lock: one under way finishes first. */
const REMOVE_LOCK_WAIT_MS = 30_000;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The installed settings file as JSON and as read; refused when it is missing or has a fatal problem. */
function readInstalled(root: string): { raw: Json; list: Settings[] } {
  if (!readManifest(root)) throw new OperatorRefusal(`qmcp is not installed in ${root}: run qmcp dom0 install first`);
  const path = settingsPath(root);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new OperatorRefusal(`settings at ${path} unreadable (${(err as Error).message})`);
  }
  const { principals, problems } = parsePrincipals(raw);
  if (!isObject(raw) || hasFatal(problems)) {
    const why = problems.filter((p) => p.fatal).map((p) => `${p.key || 'settings'}: ${p.message}`);
    throw new OperatorRefusal(`settings at ${path} are unusable (${why.join('; ') || 'not a JSON object'}): fix them first`);
  }
  return { raw, list: principals.list };
}

/** Keys in the documented order, then any others as they came. */
function ordered(o: Json): Json {
  const out: Json = {};
  for (const k of SETTINGS_KEYS) if (k in o) out[k] = o[k];
  return { ...out, ...o };
}

/** The file's top (the machine's keys, the shares) and one entry per principal, in order. */
function split(raw: Json): { top: Json; entries: Json[] } {
  if (Array.isArray(raw['principals'])) {
    const { principals, ...top } = raw;
    return { top, entries: (principals as unknown[]).filter(isObject) };
  }
  const top: Json = {};
  const entry: Json = {};
  for (const [k, v] of Object.entries(raw)) (MACHINE_KEYS.includes(k) ? top : entry)[k] = v;
  return { top, entries: [entry] };
}

/** A file again: a list of one, sharing nothing, is the single-principal form. */
function joined(top: Json, entries: Json[]): Json {
  const [only] = entries;
  const { shared, ...rest } = top;
  if (only !== undefined && entries.length === 1 && shared === undefined) return ordered({ ...only, ...rest });
  return { ...rest, principals: entries, ...(shared === undefined ? {} : { shared }) };
}

function ownedBy(qubes: ReadonlyMap<string, QubeRecord>, s: Settings): QubeRecord[] {
  return [...qubes.values()].filter((q) => q.tags.has(ownerTag(s.principal)));
}

/** Installs SETTINGS over the present install, as it was installed (socket, node, service mode). */
async function installEdit(root: string, settings: Json, dryRun: boolean): Promise<void> {
  const manifest = readManifest(root);
  try {
    await installDom0({ root, settings, dryRun, ...(manifest ? { qubesdSocket: manifest.options.qubesdSocket, nodePath: manifest.options.node } : {}) });
  } catch (err) {
    if (err instanceof InstallError) throw new OperatorRefusal(err.message);
    throw err;
  }
}

/** Runs ACT as the operator's OPERATION on principal NAME, audited either way; QUBES are the qubes it changed. */
async function audited<T extends { qubes: string[] }>(ops: PrincipalOps, operation: string, name: string, act: () => Promise<T>): Promise<T> {
  const principal = ops.operator ?? 'dom0';
  try {
    const r = await act();
    await ops.audit.operator({ principal, operation, keys: [name], qubes: r.qubes, result: 'ok' });
    return r;
  } catch (err) {
    if (err instanceof OperatorRefusal) await ops.audit.operator({ principal, operation, keys: [name], result: 'failed', detail: err.message }).catch(() => undefined);
    throw err;
  }
}

/** The new principal's entry: its names from SPEC, the rest as a fresh install writes them. */
function newEntry(spec: PrincipalSpec, incomplete: string): Json {
  const prefix = spec.prefix ?? `${spec.name}-`;
  if (!PREFIX.test(prefix)) throw new OperatorRefusal(`${prefix} is not a name prefix (a lowercase letter, then lowercase letters, digits and -, at most 16): give --prefix`);
  const base = spec.tagBase ?? prefix.replace(/-$/, '');
  const defaults = defaultSettingsJson();
  for (const k of MACHINE_KEYS) delete defaults[k];
  return ordered({
    ...defaults,
    principal: spec.name,
    tags: { umbrella: `${base}-managed`, exec: `${base}-exec`, net: `${base}-net`, full: `${base}-full`, sink: `${base}-dump`, incomplete },
    mode: spec.mode ?? DEFAULT_SETTINGS.mode,
    namePrefix: prefix,
    egressQube: spec.egress ?? null,
  });
}

/**
 * Adds a principal to the settings and installs the policy for it. It
 * creates no qube: the operator creates the principal qube (and the egress
 * qube, if new). Refused, with nothing written, when the settings would
 * not read (an overlap with another principal's world, say).
 */
export async function addPrincipal(ops: PrincipalOps, spec: PrincipalSpec): Promise<{ entry: Json; qubes: string[] }> {
  return audited(ops, 'principal.add', spec.name, async () => {
    const { raw, list } = readInstalled(ops.root);
    if (list.some((s) => s.principal === spec.name)) throw new OperatorRefusal(`${spec.name} is a principal already`);
    if (spec.shareEgress && spec.egress === undefined) throw new OperatorRefusal('--share-egress needs --egress');
    const { top, entries } = split(raw);
    const entry = newEntry(spec, list[0]?.tags.incomplete ?? DEFAULT_SETTINGS.tags.incomplete);
    if (spec.shareEgress && spec.egress !== undefined) {
      const shared = isObject(top['shared']) ? top['shared'] : {};
      const egress = Array.isArray(shared['egressQubes']) ? shared['egressQubes'] : [];
      top['shared'] = { ...shared, egressQubes: egress.includes(spec.egress) ? egress : [...egress, spec.egress] };
    }
    await installEdit(ops.root, joined(top, [...entries, entry]), false);
    return { entry, qubes: [] };
  });
}

/** The shares that still hold without NAME (and its egress qube, unless two others still name it). */
function sharesWithout(shared: unknown, name: string, egress: string | null, rest: readonly Settings[]): Json | undefined {
  if (!isObject(shared)) return shared === undefined ? undefined : {};
  const out: Json = { ...shared };
  // destructured, not indexed: the bundle check reads any `from` before a quote as an import
  const keeps = (x: unknown): boolean => {
    if (!isObject(x)) return true;
    const { from, into } = x;
    return from !== name && into !== name;
  };
  if (Array.isArray(shared['sinks'])) out['sinks'] = shared['sinks'].filter(keeps);
  if (Array.isArray(shared['egressQubes'])) out['egressQubes'] = shared['egressQubes'].filter((q) => q !== egress || rest.filter((s) => s.egressQube === q).length >= 2);
  const empty = Object.values(out).every((v) => Array.isArray(v) && v.length === 0);
  return empty ? undefined : out;
}

/**
 * Removes principal NAME from the settings and installs the policy without
 * it. While it owns qubes (its owner tag, tombstones included) it is
 * refused unless DISPOSAL says what becomes of them: 'entomb' makes every
 * live one a tombstone (the operator restores or reaps them later),
 * 'release' takes its tags off every qube that carries one, so they are the
 * operator's own. The last principal is never removed.
 */
export async function removePrincipal(ops: PrincipalOps, name: string, disposal: Disposal): Promise<{ qubes: string[] }> {
  return audited(ops, 'principal.remove', name, async () => {
    // the creates' lock: none is under way while NAME's qubes are counted, and each after it finds NAME gone
    const lock = await (ops.lock ?? ((root) => acquireBudgetLock(root, REMOVE_LOCK_WAIT_MS)))(ops.root);
    if (!lock) throw new OperatorRefusal(`the budget lock stayed busy (a create, a restore or the reaper holds it): nothing changed; run it again`);
    try {
      return await removeLocked(ops, name, disposal);
    } finally {
      await lock.release();
    }
  });
}

/** removePrincipal's work, under the budget lock. */
async function removeLocked(ops: PrincipalOps, name: string, disposal: Disposal): Promise<{ qubes: string[] }> {
  const { raw, list } = readInstalled(ops.root);
  const s = list.find((x) => x.principal === name);
  if (s === undefined) throw new OperatorRefusal(`${name} is not a principal (the principals: ${list.map((x) => x.principal).join(', ')})`);
  if (list.length === 1) throw new OperatorRefusal(`${name} is the only principal: a machine keeps one (qmcp dom0 uninstall removes qmcp)`);
  const rest = list.filter((x) => x !== s);
  const { top, entries } = split(raw);
  const { shared: before, ...machine } = top;
  const shared = sharesWithout(before, name, s.egressQube, rest);
  const next = joined(shared === undefined ? machine : { ...machine, shared }, entries.filter((_, i) => list[i] !== s));
  // checked before any qube is touched: a refused edit leaves everything as it was
  await installEdit(ops.root, next, true);

  let qubes: Map<string, QubeRecord>;
  try {
    qubes = await readQubes(ops.socket, false);
  } catch (err) {
    if (!(err instanceof QubesdUnreachable)) throw err;
    throw new OperatorRefusal(`${err.message}: cannot tell which qubes ${name} owns`);
  }
  const owned = ownedBy(qubes, s);
  const disposed: string[] = [];
  if (owned.length > 0 && disposal === 'refuse') {
    throw new OperatorRefusal(`${name} still owns ${owned.length} qube(s), tombstones included: ${owned.map((q) => q.name).join(', ')}; --entomb makes the live ones tombstones, --release hands them to you`);
  }
  const qubesd = new Qubesd(ops.socket);
  if (disposal === 'entomb') {
    const now = (ops.now ?? (() => new Date()))();
    for (const q of owned.filter((x) => ![...x.tags].some(isTombstoneMarker))) {
      await entomb(qubesd, writeSettingsOf(s), name, q.name, now);
      disposed.push(q.name);
    }
  }
  if (disposal === 'release') {
    const tags = [ownerTag(name), s.tags.umbrella, s.tags.exec, s.tags.net, s.tags.full, s.tags.sink];
    for (const q of qubes.values()) {
      const carried = tags.filter((t) => q.tags.has(t));
      for (const t of carried) await qubesd.call('admin.vm.tag.Remove', q.name, t);
      if (carried.length > 0) disposed.push(q.name);
    }
  }
  await installEdit(ops.root, next, false);
  return { qubes: disposed };
}

/** Each principal in the file's order, with how many qubes are in its world and how many it owns. */
export async function listPrincipals(ops: Pick<PrincipalOps, 'root' | 'socket'>): Promise<{ rows: PrincipalRow[]; note: string | null }> {
  const { list } = readInstalled(ops.root);
  let qubes: Map<string, QubeRecord> | null = null;
  let note: string | null = null;
  try {
    qubes = await readQubes(ops.socket, false);
  } catch (err) {
    note = `${(err as Error).message}: the qubes each principal owns are not counted`;
  }
  const rows = list.map((s): PrincipalRow => {
    const owned = qubes === null ? null : ownedBy(qubes, s);
    const tagged = (tag: string): number | null => (qubes === null ? null : [...qubes.values()].filter((q) => q.tags.has(tag)).length);
    return {
      principal: s.principal,
      prefix: s.namePrefix,
      umbrella: s.tags.umbrella,
      mode: s.mode,
      world: tagged(s.tags.umbrella),
      sinks: tagged(s.tags.sink),
      owned: owned?.length ?? null,
      tombstones: owned?.filter((q) => [...q.tags].some(isTombstoneMarker)).length ?? null,
    };
  });
  return { rows, note };
}
