/**
 * `qmcp dom0 doctor`: every health check of SPEC §8, one line each. A
 * FAIL makes the install unhealthy; a note is a fact the operator should
 * know (an accepted residual, a deliberate fail-closed choice).
 */
import { accessSync, constants, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { auditLogPath, verifyAudit } from '../audit/index.js';
import type { AuditWitness } from '../audit/index.js';
import { readWriteSettings, MARKERS } from '../create/settings.js';
import { InstallError, renderInstall } from '../install/index.js';
import { pendingFileChanges, planInstall } from '../install/install-plan.js';
import { readInstallState } from '../install/root-state.js';
import { MANIFEST_PATH, readManifest } from '../install/manifest.js';
import { TIMER_LINK_TARGET, TIMER_WANTS_LINK } from '../install/systemd.js';
import { isTombstoneMarker, markerTime } from '../tombstones/markers.js';
import { orphanReason, veto } from '../tombstones/operator.js';
import { POLICY_FILE, checkInstalledModel, gatedByLayer, modelHash, ownerTag, principalsDigest, readPrincipalsFile, settingsPath, worldTags } from '../../shared/model/index.js';
import type { Settings, Tier } from '../../shared/model/index.js';
import { loadPolicyFromRoot } from '../../shared/policy/index.js';
import { QubesdUnreachable, dom0CreatorTags, guivmOf, readQubes } from './facts.js';
import { residentCheck } from './resident-check.js';
import type { QubeRecord } from './facts.js';

export type CheckStatus = 'ok' | 'FAIL' | 'note';

export interface Check {
  readonly check: string;
  readonly status: CheckStatus;
  readonly message: string;
}

export interface DoctorReport {
  readonly healthy: boolean;
  readonly checks: readonly Check[];
}

export interface DoctorOptions {
  readonly root: string;
  readonly qubesdSocket: string;
  /** Where the audit chain's head is witnessed; default as for the services. */
  readonly witness?: AuditWitness;
  readonly now?: Date;
}

const RANK: Record<Tier, number> = { read: 0, exec: 1, net: 2, full: 3 };

/** The agent's tier over an umbrella qube, as the policy and services decide it. */
export function effectiveTier(tags: ReadonlySet<string>, s: Settings): Tier {
  if (tags.has(s.tags.full)) return 'full';
  if (tags.has(s.tags.net)) return 'net';
  if (tags.has(s.tags.exec)) return 'exec';
  return s.mode === 'compat' ? 'full' : 'read';
}

/** In the agent's world as the services see it: umbrella, no sink, not held incomplete. */
export function inUmbrella(q: QubeRecord, s: Settings): boolean {
  return q.tags.has(s.tags.umbrella) && !q.tags.has(s.tags.sink) && !q.tags.has(s.tags.incomplete);
}

function list(names: string[], max = 8): string {
  return names.length > max ? `${names.slice(0, max).join(', ')} and ${names.length - max} more` : names.join(', ');
}

/** A file the dom0 user must read: o+r on it and o+x on every directory under ROOT leading to it. */
function readableByServiceUser(root: string, path: string): string | null {
  const rel = relative(root, path).split(sep);
  let dir = root;
  for (const part of rel.slice(0, -1)) {
    dir = join(dir, part);
    if ((statSync(dir).mode & 0o001) === 0) return `${relative(root, dir)}/ is not searchable by other users`;
  }
  if ((statSync(path).mode & 0o004) === 0) return `${relative(root, path)} is not readable by other users`;
  return null;
}

/** The installed principals, in the settings' order (one, the defaults', when the file is unreadable). */
function fileChecks(root: string, out: Check[]): Settings[] {
  const reading = readPrincipalsFile(settingsPath(root));
  const all = reading.principals.list;
  // what holds for the machine is alike in every entry
  const settings = all[0] as Settings;
  const add = (check: string, status: CheckStatus, message: string): void => {
    out.push({ check, status, message });
  };

  const manifest = readManifest(root);
  if (!manifest) add('install', 'FAIL', `no manifest at ${MANIFEST_PATH}: qmcp is not installed in this root`);
  else {
    const warnings: string[] = [];
    try {
      // the plan install would carry out now: nothing to do in the installed files is health
      const rendered = renderInstall(root, { root, qubesdSocket: manifest.options.qubesdSocket, nodePath: manifest.options.node }, warnings);
      const { differ, extra } = pendingFileChanges(planInstall(rendered, readInstallState(root, rendered.planned.map((f) => f.path))));
      if (differ.length === 0 && extra.length === 0) add('install', 'ok', `${rendered.planned.length} installed files match what this version renders`);
      if (differ.length > 0) add('install', 'FAIL', `differ from what this version renders (edited, or another version): ${list(differ)}; run qmcp dom0 install`);
      if (extra.length > 0) add('install', 'FAIL', `listed by the manifest but no longer rendered: ${list(extra)}; run qmcp dom0 install`);
    } catch (err) {
      if (!(err instanceof InstallError)) throw err;
      add('install', 'FAIL', `cannot render what should be installed: ${err.message}`);
    }
  }

  let policyText: string | null = null;
  try {
    policyText = readFileSync(join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), 'utf8');
  } catch (err) {
    add('model', 'FAIL', `policy ${POLICY_FILE} unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'}): the services refuse every call`);
  }
  if (policyText !== null) {
    const model = checkInstalledModel(policyText, settings, principalsDigest(reading.principals));
    if (model.ok) add('model', 'ok', `policy and settings carry this version's model hash ${modelHash().slice(0, 12)}`);
    else for (const p of model.problems) add('model', 'FAIL', `${p}: the services refuse every call`);
  }
  try {
    loadPolicyFromRoot(root);
    add('policy', 'ok', 'the policy directory parses (qrexec loads it)');
  } catch (err) {
    add('policy', 'FAIL', `qrexec would refuse every call: ${(err as Error).message}`);
  }

  if (reading.problems.length === 0) add('settings', 'ok', 'every setting valid');
  for (const p of reading.problems) {
    const absent = p.message.startsWith('absent');
    // a malformed gate fails closed (everything that can be gated asks) and leaves the install usable
    const warning = (absent && !p.fatal) || p.key === 'gate';
    add('settings', warning ? 'note' : 'FAIL', `${p.key || 'file'}: ${p.message}${p.fatal ? ' (fatal: services refuse every call)' : ''}`);
  }
  const { rate, auditRetention: keep } = settings;
  add('rate', 'ok', `each caller: ${rate.perSecond} calls/s, bursts of ${rate.burst}; more are refused without other work`);
  const bounds = [keep.keepBytes === null ? null : `${keep.keepBytes} bytes`, keep.keepDays === null ? null : `${keep.keepDays} days`].filter((b) => b !== null);
  add('audit-retention', bounds.length ? 'ok' : 'note', `audit log rotates at ${keep.fileBytes} bytes; ${bounds.length ? `rotated files kept up to ${bounds.join(' and ')}, each pruned one checkpointed` : 'every rotated file kept (no retention: the log grows without bound)'}`);
  for (const s of all) {
    const gate = gatedByLayer(s);
    add('gate', s.gate === null ? 'note' : 'ok', `${whose(s, all)}the operator is asked for: ${gate.dialog.join(', ') || 'nothing'} in Qubes' dialog (the policy says ask); ${gate.services.join(', ') || 'nothing'} by the dom0 services (qmcp dom0 approvals)`);
  }
  const mustRead = [settingsPath(root), join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), join(root, 'usr', 'lib', 'qmcp', 'dom0', 'service-main.js')];
  const unreadable: string[] = [];
  for (const p of mustRead) {
    try {
      const why = readableByServiceUser(root, p);
      if (why) unreadable.push(why);
    } catch (err) {
      unreadable.push(`${relative(root, p)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (unreadable.length === 0) add('readable', 'ok', 'settings, policy and services readable by the dom0 user');
  else add('readable', 'FAIL', `the dom0 user cannot read: ${unreadable.join('; ')}`);

  const log = auditLogPath(root);
  try {
    const st = lstatSync(log);
    if (!st.isFile()) add('audit-log', 'FAIL', 'var/log/qmcp/audit.log is not a regular file');
    else {
      accessSync(log, constants.W_OK);
      const rootOnly = root === '/' && st.uid === 0 && !((st.mode & 0o020) !== 0 && st.gid !== 0);
      if (rootOnly) add('audit-log', 'FAIL', 'audit log writable by root only: the services (the dom0 user) cannot append, so every call is refused');
      else add('audit-log', 'ok', 'audit log appendable');
    }
  } catch (err) {
    add('audit-log', 'FAIL', `audit log not appendable (${(err as NodeJS.ErrnoException).code ?? 'error'}): every call is refused`);
  }

  let timer = false;
  try {
    timer = lstatSync(join(root, TIMER_WANTS_LINK)).isSymbolicLink() && readlinkSync(join(root, TIMER_WANTS_LINK)) === TIMER_LINK_TARGET;
  } catch {
    timer = false;
  }
  add('reaper', timer ? 'ok' : 'FAIL', timer ? 'reaper timer enabled' : `reaper timer not enabled (${TIMER_WANTS_LINK} missing): tombstones are never reaped`);

  let rollbackFiles: string[] = [];
  try {
    rollbackFiles = readdirSync(join(root, 'var', 'lib', 'qmcp', 'rollback-failed'));
  } catch {
    rollbackFiles = [];
  }
  if (rollbackFiles.length > 0) {
    add('rollback', 'FAIL', `failed create rollbacks recorded in var/lib/qmcp/rollback-failed: ${list(rollbackFiles)}; check each qube, remove it or its tags, then the file`);
  }
  return all;
}

/** With several principals, whose world a line is about. */
function whose(s: Settings, all: readonly Settings[]): string {
  return all.length > 1 ? `${s.principal}: ` : '';
}

/**
 * A qube tagged into two worlds is in neither (the policy denies each world
 * toward the other's tags first), which the operator did by hand: each
 * such qube, with the tags that put it in each world.
 */
export function hybridCheck(qubes: Map<string, QubeRecord>, all: readonly Settings[]): Check {
  const found: string[] = [];
  for (const q of qubes.values()) {
    const worlds = all.map((s) => ({ s, tags: worldTags(s).filter((t) => q.tags.has(t)) })).filter((w) => w.tags.length > 0);
    if (worlds.length > 1) found.push(`${q.name} (${worlds.map((w) => `${w.tags.join(', ')} of ${w.s.principal}`).join('; ')})`);
  }
  if (found.length === 0) return { check: 'hybrids', status: 'ok', message: `no qube is tagged into two principals' worlds` };
  return { check: 'hybrids', status: 'FAIL', message: `tagged into two principals' worlds, so in neither (no principal reaches them; remove the tags of the world each does not belong to): ${list(found, 5)}` };
}

/** Where Qubes shows its dialog for the policy's asks: in the caller's GUI qube, and nowhere without one. */
function dialogCheck(guivm: string | null, s: Settings): Check | null {
  const dialog = gatedByLayer(s).dialog;
  if (dialog.length === 0) return null;
  if (guivm === null) return { check: 'dialog', status: 'note', message: `${s.principal} has no GUI qube: Qubes refuses every call its policy asks about (${dialog.join(', ')})` };
  if (guivm !== 'dom0') return { check: 'dialog', status: 'note', message: `Qubes shows its dialog for ${dialog.join(', ')} in ${guivm}, the GUI qube of ${s.principal}, not in dom0` };
  return { check: 'dialog', status: 'ok', message: `Qubes shows its dialog for ${dialog.join(', ')} in dom0` };
}

/** The restore command for Q: with several principals it names the one whose owner tag Q carries (restore takes only that one's). */
function restoreHint(q: QubeRecord, s: Settings, all: readonly Settings[]): string {
  if (all.length === 1) return `qmcp dom0 tombstones restore ${q.name}`;
  const owner = all.find((p) => q.tags.has(ownerTag(p.principal)))?.principal ?? s.principal;
  return `qmcp dom0 tombstones restore ${q.name} --principal ${owner}`;
}

/** The tombstones in no principal's world: the reaper keeps them, so only the operator deals with them. */
function orphanCheck(qubes: Map<string, QubeRecord>, principals: readonly Settings[]): Check {
  const names = principals.map((p) => p.principal);
  const found: string[] = [];
  let first: string | null = null;
  for (const q of qubes.values()) {
    const why = [...q.tags].some(isTombstoneMarker) ? orphanReason([...q.tags], names) : null;
    if (why === null) continue;
    first ??= q.name;
    found.push(`${q.name} (${why})`);
  }
  if (first === null) return { check: 'orphans', status: 'ok', message: "every tombstone is in a principal's world" };
  const into = names.length > 1 ? ` --principal ${names[0] as string}` : '';
  return {
    check: 'orphans',
    status: 'note',
    message: `tombstones in no principal's world, which the reaper keeps (no retention governs them): ${list(found, 5)}; bring one back into a principal's world with qmcp dom0 tombstones restore ${first}${into}, or destroy it with qmcp dom0 tombstones reap ${first}`,
  };
}

function qubeChecks(qubes: Map<string, QubeRecord>, s: Settings, principals: readonly Settings[], root: string, now: Date, out: Check[]): void {
  const add = (check: string, status: CheckStatus, message: string): void => {
    out.push({ check, status, message: `${whose(s, principals)}${message}` });
  };
  const t = s.tags;
  const several = principals.length > 1;
  const all = [...qubes.values()];
  add('principal', qubes.has(s.principal) ? 'ok' : 'FAIL', qubes.has(s.principal) ? `principal qube ${s.principal} exists` : `principal qube ${s.principal} does not exist`);

  const hybrids = all.filter((q) => q.tags.has(t.umbrella) && q.tags.has(t.sink)).map((q) => q.name);
  add('hybrids', hybrids.length ? 'FAIL' : 'ok', hybrids.length ? `both ${t.umbrella} and ${t.sink} (seen as neither; remove one tag): ${list(hybrids)}` : `no qube is both ${t.umbrella} and ${t.sink}`);

  const elevations = [t.exec, t.net, t.full];
  const doubled = all.filter((q) => elevations.filter((e) => q.tags.has(e)).length > 1).map((q) => q.name);
  add('elevation', doubled.length ? 'FAIL' : 'ok', doubled.length ? `more than one elevation tag (treated as the highest; fix with qmcp dom0 tier): ${list(doubled)}` : 'no qube carries two elevation tags');
  // the policy's tier lines match the elevation tag alone: such a qube is outside the umbrella yet open to the agent
  const stray = all.filter((q) => !q.tags.has(t.umbrella) && elevations.some((e) => q.tags.has(e))).map((q) => q.name);
  if (stray.length) add('elevation', 'FAIL', `an elevation tag without ${t.umbrella} (the policy lets the agent reach these though it cannot see them; remove the tag, or qmcp dom0 tier QUBE TIER): ${list(stray)}`);

  const isTomb = (q: QubeRecord): boolean => [...q.tags].some(isTombstoneMarker);
  const squatters = all.filter((q) => q.name.startsWith(s.namePrefix) && !q.tags.has(t.umbrella) && !isTomb(q) && !q.tags.has(t.incomplete)).map((q) => q.name);
  if (squatters.length) add('prefix', 'note', `inside the reserved prefix ${s.namePrefix} but outside the umbrella (accepted residual: the agent's creates of these names are refused): ${list(squatters)}`);
  else add('prefix', 'ok', `no qube outside the umbrella holds a name in ${s.namePrefix}`);

  const inside = (name: string | null): boolean => {
    const q = name === null ? undefined : qubes.get(name);
    return q !== undefined && inUmbrella(q, s);
  };
  // the agent's own tombstones are part of its world (its budget counts them), and cannot run
  const ownTomb = (q: QubeRecord): boolean => isTomb(q) && q.tags.has(ownerTag(s.principal));
  const crossing: string[] = [];
  for (const q of all) {
    if (inUmbrella(q, s) || ownTomb(q)) continue;
    for (const [role, ref] of [['template', q.template], ['netvm', q.netvm], ['default_dispvm', q.defaultDispvm]] as const) {
      if (inside(ref)) crossing.push(`${q.name} uses ${ref} as ${role}`);
    }
  }
  const behind: string[] = [];
  for (const parent of all) {
    if (!inUmbrella(parent, s) || RANK[effectiveTier(parent.tags, s)] < RANK.exec) continue;
    for (const child of all) {
      if (child.template !== parent.name || ownTomb(child)) continue;
      const lower = !inUmbrella(child, s) ? 'outside' : RANK[effectiveTier(child.tags, s)] < RANK.exec ? 'read-only' : null;
      if (lower) behind.push(`${parent.name} (${effectiveTier(parent.tags, s)}) is the template of ${lower} ${child.name}`);
    }
  }
  if (crossing.length) add('boundary', 'FAIL', `outside qubes depend on umbrella qubes (the agent's remove of those fails): ${list(crossing, 5)}`);
  if (behind.length) add('boundary', 'FAIL', `the agent can run code in a template behind qubes it may not run code in: ${list(behind, 5)}`);
  if (!crossing.length && !behind.length) add('boundary', 'ok', 'no dependency crosses the boundary');

  const incomplete = all.filter((q) => q.tags.has(t.incomplete));
  for (const q of incomplete) {
    if (q.tags.has(MARKERS.rollbackFailed)) add('half-created', 'FAIL', `${q.name}: a create failed and its rollback failed too; check it and remove it, or remove ${t.incomplete} and ${MARKERS.rollbackFailed}`);
    else if (q.templateForDispvms && q.prohibitStart) add('half-created', 'FAIL', `${q.name}: disposable template held mid-create; check it, then remove the ${t.incomplete} tag and the prohibit-start feature`);
    else add('half-created', 'FAIL', `${q.name}: carries ${t.incomplete} (a create or a remove did not finish); check it, then remove it or the tag (a tombstone marker on it too: ${restoreHint(q, s, principals)})`);
  }
  const rollbackOnly = all.filter((q) => q.tags.has(MARKERS.rollbackFailed) && !q.tags.has(t.incomplete)).map((q) => q.name);
  if (rollbackOnly.length) add('half-created', 'FAIL', `marked ${MARKERS.rollbackFailed}: ${list(rollbackOnly)}; check each, then remove it or the tag`);
  if (!incomplete.length && !rollbackOnly.length) add('half-created', 'ok', 'no half-created qube');

  const settings = readWriteSettings(root, () => undefined, s.principal);
  // with several principals, each one's tombstones are those it removed, under its retention; an orphan is no one's
  const names = principals.map((p) => p.principal);
  const tombs = all.filter((q) => isTomb(q) && (several === false || q.tags.has(ownerTag(s.principal))) && orphanReason([...q.tags], names) === null);
  const due = tombs
    .filter((q) => veto({ name: q.name, klass: q.klass, state: q.state, since: markerTime(q.tags)?.toISOString() ?? null, tags: [...q.tags] }, settings, now) === null)
    .map((q) => q.name);
  if (due.length) add('tombstones', 'note', `past retention, due for reaping: ${list(due)} (the timer reaps them; or qmcp dom0 tombstones reap)`);
  else add('tombstones', 'ok', `${tombs.length} tombstone(s), none due`);
}

export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const checks: Check[] = [];
  const principals = fileChecks(opts.root, checks);
  const resident = await residentCheck(opts.root);
  if (resident) checks.push(resident);
  const audit = await verifyAudit({ root: opts.root, ...(opts.witness ? { witness: opts.witness } : {}) });
  const prunedNote = audit.pruned ? `; pruned through seq ${audit.pruned.through.seq} at ${audit.pruned.at}` : '';
  if (audit.valid) checks.push({ check: 'audit-chain', status: 'ok', message: `audit chain whole (${audit.entries} entries${prunedNote})` });
  else {
    const first = audit.problems.slice(0, 3).map((p) => `${p.line === null ? '' : `line ${p.line}: `}${p.what}`);
    checks.push({ check: 'audit-chain', status: 'FAIL', message: `audit chain broken: ${first.join('; ')}${audit.problems.length > 3 ? ` (${audit.problems.length} problems; qmcp dom0 audit verify)` : ''}` });
  }
  try {
    const qubes = await readQubes(opts.qubesdSocket);
    if (principals.length > 1) checks.push(hybridCheck(qubes, principals));
    if (principals.length > 0) checks.push(orphanCheck(qubes, principals));
    const creatorTags = await dom0CreatorTags(opts.qubesdSocket);
    for (const settings of principals) {
      qubeChecks(qubes, settings, principals, opts.root, opts.now ?? new Date(), checks);
      if (qubes.has(settings.principal)) {
        const dialog = dialogCheck(await guivmOf(opts.qubesdSocket, settings.principal), settings);
        if (dialog) checks.push(dialog);
      }
      const creator = creatorTags.filter((t) => t === settings.tags.umbrella || t === settings.tags.sink);
      const of = whose(settings, principals);
      if (creator.length) checks.push({ check: 'creator-tags', status: 'FAIL', message: `${of}dom0's tag-created-vm-with feature names ${creator.join(', ')}: every agent create is refused until you remove it` });
      else checks.push({ check: 'creator-tags', status: 'ok', message: `${of}dom0's tag-created-vm-with names neither ${settings.tags.umbrella} nor ${settings.tags.sink}` });
    }
  } catch (err) {
    if (!(err instanceof QubesdUnreachable)) throw err;
    checks.push({ check: 'qubes', status: 'FAIL', message: `${err.message}: the qube checks did not run` });
  }
  return { healthy: !checks.some((c) => c.status === 'FAIL'), checks };
}
