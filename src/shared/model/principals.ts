/**
 * Several principals on one machine (docs/principals.md): the settings list,
 * read fail-closed. Each principal has its own world, named by its own tags;
 * worlds are disjoint unless the operator shares something explicitly, and
 * every overlap the list could hold by mistake is fatal.
 */
import { createHash } from 'node:crypto';
import { settingsDigest } from './hash.js';
import { OWNER_PREFIX, TOMBSTONE_PREFIX, ownerTag } from './marks.js';
import type { Settings, SettingsProblem, TagNames } from './settings.js';
import { LIST_KEYS, SETTINGS_KEYS, isQubeName, isTagName, parseSettings, readJsonSettings } from './settings.js';

/** Keys that hold for the whole machine: at the top of a list-form file, never in an entry. */
export const MACHINE_KEYS: readonly string[] = ['qubeLimits', 'rate', 'auditRetention', 'model'];

/** The tag roles that put a qube in a principal's world (the incomplete tag is the machine's, one for all). */
export const WORLD_ROLES: readonly (keyof TagNames)[] = ['umbrella', 'exec', 'net', 'full', 'sink'];

/** The agents of FROM may push into those sinks of INTO that the operator tagged TAG; never the other way. */
export interface SinkShare {
  from: string;
  into: string;
  tag: string;
}

export interface Principals {
  /** In the file's order, which is the policy's. */
  list: Settings[];
  /** Egress qubes several principals may name. */
  sharedEgress: string[];
  sinkShares: SinkShare[];
}

export interface PrincipalsReading {
  principals: Principals;
  problems: SettingsProblem[];
}

export function onePrincipal(s: Settings): Principals {
  return { list: [s], sharedEgress: [], sinkShares: [] };
}

/** The tags that put a qube in S's world, its owner tag among them. */
export function worldTags(s: Settings): string[] {
  return [...WORLD_ROLES.map((r) => s.tags[r]), ownerTag(s.principal)];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The principals a settings file names. A file without `principals` is
 * today's single-principal file, read as a list of one; in the list form,
 * each entry holds one principal's settings and the top the machine's.
 */
export function parsePrincipals(json: unknown): PrincipalsReading {
  if (!isObject(json) || !LIST_KEYS.some((k) => k in json)) {
    const r = parseSettings(json);
    return { principals: onePrincipal(r.settings), problems: r.problems };
  }
  const problems: SettingsProblem[] = [];
  const fatal = (key: string, message: string): void => {
    problems.push({ key, message, fatal: true });
  };
  const machine: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    if (MACHINE_KEYS.includes(k)) machine[k] = v;
    else if (SETTINGS_KEYS.includes(k)) fatal(k, "a principal's setting: it belongs in each entry of principals");
    else if (!(LIST_KEYS as readonly string[]).includes(k)) problems.push({ key: k, message: 'unknown setting', fatal: false });
  }
  // the machine's own problems once, not once per entry
  problems.push(...parseSettings(machine).problems.filter((p) => MACHINE_KEYS.includes(p.key.split('.')[0] ?? '')));

  const list: Settings[] = [];
  const entries = json['principals'];
  if (!Array.isArray(entries) || entries.length === 0) fatal('principals', 'must be a non-empty list of principal settings');
  else {
    entries.forEach((entry, i) => {
      const at = `principals[${i}]`;
      if (!isObject(entry)) return fatal(at, 'must be an object');
      if (!('principal' in entry)) fatal(`${at}.principal`, 'absent: each entry names its principal qube');
      for (const k of Object.keys(entry)) if (MACHINE_KEYS.includes(k) || (LIST_KEYS as readonly string[]).includes(k)) fatal(`${at}.${k}`, "the machine's setting: it belongs at the top");
      const r = parseSettings({ ...entry, ...machine });
      for (const p of r.problems) if (!MACHINE_KEYS.includes(p.key.split('.')[0] ?? '')) problems.push({ ...p, key: `${at}.${p.key}` });
      list.push(r.settings);
    });
  }
  const shared = parseShared(json['shared'], fatal);
  problems.push(...crossCheck(list, shared));
  return { principals: { list, ...shared }, problems };
}

/** Reads a settings file of either form; a missing or unreadable file reads as `{}`, with a problem. */
export function readPrincipalsFile(path: string): PrincipalsReading {
  return readJsonSettings(path, parsePrincipals);
}

function parseShared(v: unknown, fatal: (key: string, message: string) => void): Pick<Principals, 'sharedEgress' | 'sinkShares'> {
  const none = { sharedEgress: [], sinkShares: [] };
  if (v === undefined) return none;
  if (!isObject(v) || Object.keys(v).some((k) => k !== 'egressQubes' && k !== 'sinks')) {
    fatal('shared', 'must be {egressQubes, sinks}');
    return none;
  }
  const egress = v['egressQubes'] ?? [];
  const sinks = v['sinks'] ?? [];
  if (!Array.isArray(egress) || !egress.every(isQubeName)) {
    fatal('shared.egressQubes', 'must be a list of qube names');
    return none;
  }
  // destructured, not indexed: the bundle check reads any `from` before a quote as an import
  const isShare = (x: unknown): x is SinkShare => {
    if (!isObject(x) || Object.keys(x).length !== 3) return false;
    const { from, into, tag } = x;
    return isQubeName(from) && isQubeName(into) && isTagName(tag);
  };
  if (!Array.isArray(sinks) || !sinks.every(isShare)) {
    fatal('shared.sinks', 'must be a list of {from, into, tag}: two principal qubes and a tag');
    return none;
  }
  return { sharedEgress: [...egress], sinkShares: sinks.map((x) => ({ from: x.from, into: x.into, tag: x.tag })) };
}

/** Every way two principals' settings could overlap without the operator saying so; each is fatal. */
function crossCheck(list: readonly Settings[], shared: Pick<Principals, 'sharedEgress' | 'sinkShares'>): SettingsProblem[] {
  const out: SettingsProblem[] = [];
  const fatal = (key: string, message: string): void => {
    out.push({ key, message, fatal: true });
  };
  const names = list.map((s) => s.principal);
  const shareTags = shared.sinkShares.map((x) => x.tag);
  for (const [i, a] of list.entries()) {
    const at = `principals[${i}]`;
    if (a.tags.incomplete !== list[0]?.tags.incomplete) fatal(`${at}.tags.incomplete`, 'differs from the first principal\'s: the machine has one incomplete tag');
    for (const [j, b] of list.entries()) {
      if (j <= i) continue;
      const pair = `${a.principal} and ${b.principal}`;
      if (a.principal === b.principal) fatal(`${at}.principal`, `${a.principal} is named twice`);
      else if (ownerTag(a.principal) === ownerTag(b.principal)) fatal(`${at}.principal`, `${pair} have the same owner tag ${ownerTag(a.principal)}`);
      const common = worldTags(a).filter((t) => worldTags(b).includes(t));
      if (common.length > 0) fatal(`${at}.tags`, `${pair} share ${common.join(', ')}: each world has its own tags`);
      if (a.namePrefix.startsWith(b.namePrefix) || b.namePrefix.startsWith(a.namePrefix)) fatal(`${at}.namePrefix`, `${pair} have overlapping name prefixes ${a.namePrefix} and ${b.namePrefix}`);
      if (a.egressQube !== null && a.egressQube === b.egressQube && !shared.sharedEgress.includes(a.egressQube)) {
        fatal(`${at}.egressQube`, `${pair} both name ${a.egressQube}; list it in shared.egressQubes to share it`);
      }
    }
    for (const [j, b] of list.entries()) {
      if (j === i) continue;
      // another's agent may create a qube of that name while it is absent, or act on the qube
      for (const [what, q] of [['principal', a.principal], ['egressQube', a.egressQube]] as const) {
        if (q !== null && q.startsWith(b.namePrefix)) fatal(`${at}.${what}`, `${q} starts with ${b.principal}'s name prefix ${b.namePrefix}`);
      }
      if (a.egressQube !== null && a.egressQube === b.principal) fatal(`${at}.egressQube`, `${a.egressQube} is ${b.principal}'s principal qube`);
      // a child would carry the tag into the other world
      for (const key of ['propagatingTags', 'restrictionTags'] as const) {
        const crossing = (a[key] ?? []).filter((t) => worldTags(b).includes(t));
        if (crossing.length > 0) fatal(`${at}.${key}`, `${crossing.join(', ')} would put ${a.principal}'s children in ${b.principal}'s world`);
      }
    }
    for (const key of ['propagatingTags', 'restrictionTags'] as const) {
      const crossing = (a[key] ?? []).filter((t) => shareTags.includes(t));
      if (crossing.length > 0) fatal(`${at}.${key}`, `${crossing.join(', ')} would make ${a.principal}'s children shared sinks`);
    }
  }
  for (const q of shared.sharedEgress) if (list.filter((s) => s.egressQube === q).length < 2) fatal('shared.egressQubes', `${q} is not the egress qube of two principals`);
  for (const [k, x] of shared.sinkShares.entries()) {
    const at = `shared.sinks[${k}]`;
    if (!names.includes(x.from) || !names.includes(x.into)) fatal(at, 'from and into must name principal qubes of this file');
    else if (x.from === x.into) fatal(at, 'from and into are the same principal');
    const owner = list.find((s) => worldTags(s).includes(x.tag) || s.tags.incomplete === x.tag);
    if (owner !== undefined) fatal(`${at}.tag`, `${x.tag} is one of ${owner.principal}'s tags: a share has a tag of its own`);
    if (x.tag.startsWith(OWNER_PREFIX) || x.tag.startsWith(TOMBSTONE_PREFIX)) fatal(`${at}.tag`, `${x.tag} is a mark dom0 stamps`);
    if (shared.sinkShares.some((y, m) => m !== k && y.tag === x.tag && y.into !== x.into)) fatal(`${at}.tag`, `${x.tag} shares sinks of two principals`);
  }
  return out;
}

/**
 * The digest the policy carries of the settings it was rendered from; a
 * list of one carries its one principal's, as a single-principal file did.
 */
export function principalsDigest(p: Principals): string {
  const [only] = p.list;
  if (only !== undefined && p.list.length === 1 && p.sharedEgress.length === 0 && p.sinkShares.length === 0) return settingsDigest(only);
  const body = JSON.stringify({ principals: p.list.map(settingsDigest), sharedEgress: p.sharedEgress, sinkShares: p.sinkShares.map((x) => [x.from, x.into, x.tag]) });
  return createHash('sha256').update(body).digest('hex');
}
