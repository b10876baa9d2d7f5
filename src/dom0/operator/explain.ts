/**
 * `qmcp dom0 explain`: what the agent can do over each qube, computed the
 * way a call is decided: the *installed* policy, evaluated with our engine
 * for the principal and each operation of the model, then, for dom0
 * services, the services' own rule (visible, and at least the operation's
 * tier in the installed mode).
 */
import { gateOf, gatedByLayer, OPERATIONS } from '../../shared/model/index.js';
import type { CapabilityClass, Operation, Settings, Tier } from '../../shared/model/index.js';
import { denyAllPolicy, loadPolicyFromRoot, PolicySyntaxError } from '../../shared/policy/index.js';
import type { DomainInfo, DomainType, Policy, SystemInfo } from '../../shared/policy/index.js';
import { loadDom0Config } from '../service/config.js';
import { DEFAULT_SETTINGS, readPrincipalsFile, settingsPath, worldTags } from '../../shared/model/index.js';
import { effectiveTier, inUmbrella } from './doctor.js';
import { isTombstoneMarker } from '../tombstones/markers.js';
import { readQubes } from './facts.js';
import type { QubeRecord } from './facts.js';

export type Cell = 'allow' | 'ask' | 'deny';
/** allowed, ask, partial or — (refused); the copy column may also read `out`, `in`, `in (ask)`, `out+in (ask)`. */
export type GroupCell = string;
export const GROUPS = ['see', 'exec', 'net', 'full', 'copy', 'sink'] as const;
export type Group = (typeof GROUPS)[number];

export interface ExplainRow {
  readonly qube: string;
  readonly klass: string;
  /** 'visible' (in the umbrella), 'sink' (push-only, unseen), 'tombstone' (removed by the agent, restorable), or 'not visible'. */
  readonly standing: 'visible' | 'sink' | 'tombstone' | 'not visible';
  /** The agent's tier over a visible qube. */
  readonly tier: Tier | null;
  readonly groups: Record<Group, GroupCell>;
  readonly operations: Record<string, Cell>;
}

export interface ExplainReport {
  readonly principal: string;
  readonly mode: Settings['mode'];
  /** Why the dom0 services refuse every call, when they do. */
  readonly servicesRefuse: string[];
  /** Why qrexec refuses every call, when the policy does not load. */
  readonly policyError: string | null;
  /** The operations the gate asks for: in Qubes' dialog (the policy says ask) or by the dom0 services. */
  readonly gate: { readonly dialog: string[]; readonly services: string[]; readonly malformed: boolean };
  readonly rows: ExplainRow[];
}

const RANK: Record<Tier, number> = { read: 0, exec: 1, net: 2, full: 3 };
const DOMAIN_TYPES: readonly string[] = ['AppVM', 'TemplateVM', 'StandaloneVM', 'DispVM'];

/** System info for the engine; every qube counted as running, so `autostart=no` hides no capability. */
function systemInfo(qubes: Map<string, QubeRecord>): SystemInfo {
  const domains: Record<string, DomainInfo> = {
    dom0: { tags: [], type: 'AdminVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', uuid: '00000000-0000-0000-0000-000000000000' },
  };
  for (const q of qubes.values()) {
    if (!DOMAIN_TYPES.includes(q.klass)) continue;
    domains[q.name] = { tags: [...q.tags], type: q.klass as DomainType, template_for_dispvms: q.templateForDispvms, default_dispvm: q.defaultDispvm, power_state: 'Running', uuid: '' };
  }
  return { domains };
}

function groupCell(cells: Cell[]): GroupCell {
  if (cells.length === 0 || cells.every((c) => c === 'deny')) return '—';
  if (cells.every((c) => c === 'allow')) return 'allowed';
  if (cells.every((c) => c !== 'deny')) return 'ask';
  return 'partial';
}

function copyCell(out: Cell, into: Cell): GroupCell {
  if (out === 'allow' && into === 'allow') return 'allowed';
  const parts = [out === 'deny' ? '' : out === 'ask' ? 'out (ask)' : 'out', into === 'deny' ? '' : into === 'ask' ? 'in (ask)' : 'in'].filter(Boolean);
  return parts.length ? parts.join('+') : '—';
}

function groupOf(op: Operation): CapabilityClass | 'copy' {
  return op.id === 'copy' ? 'copy' : op.capability;
}

/** PRINCIPAL: whose world, needed when the settings hold several. */
export async function explain(opts: { root: string; qubesdSocket: string; qube?: string; principal?: string }): Promise<ExplainReport> {
  const { root } = opts;
  const warnings: string[] = [];
  const reading = readPrincipalsFile(settingsPath(root));
  const config = loadDom0Config(root, (m) => warnings.push(m), reading, opts.principal);
  // unusable settings: explain with what they say (every service refuses), the principal's entry when there is one
  const settings: Settings = config?.settings ?? reading.principals.list.find((s) => s.principal === opts.principal) ?? reading.principals.list[0] ?? DEFAULT_SETTINGS;
  let policy: Policy;
  let policyError: string | null = null;
  try {
    policy = loadPolicyFromRoot(root);
  } catch (err) {
    if (!(err instanceof PolicySyntaxError)) throw err;
    policy = denyAllPolicy(err);
    policyError = err.message;
  }
  const qubes = await readQubes(opts.qubesdSocket);
  const system = systemInfo(qubes);
  const p = settings.principal;
  // a qube tagged into another world too is in neither
  const others = reading.principals.list.filter((s) => s.principal !== p).flatMap(worldTags);
  const inWorld = (q: QubeRecord): boolean => inUmbrella(q, settings) && !others.some((t) => q.tags.has(t));
  const evaluate = (service: string, argument: string, target: string, source = p): Cell => {
    try {
      return policy.evaluate({ service, argument, source, target }, system).action;
    } catch {
      return 'deny';
    }
  };

  const opCell = (op: Operation, q: QubeRecord): Cell => {
    if (op.target !== 'dom0-service') return evaluate(op.service, '', q.name);
    const allowed = evaluate(op.service, op.argumentIsQube ? q.name : '', '@adminvm');
    if (allowed === 'deny' || config === null) return 'deny';
    // the service's own rule: visible, and at least the operation's tier
    if (!inWorld(q) || RANK[effectiveTier(q.tags, settings)] < RANK[op.tier]) return 'deny';
    // the service itself waits for the operator's approval
    return gateOf(settings, op) === 'ask' ? 'ask' : allowed;
  };

  const names = [...qubes.keys()].filter((n) => n !== p || opts.qube === p);
  const rows: ExplainRow[] = [];
  const opsOf = new Map<string, Record<string, Cell>>();
  for (const name of names) {
    const q = qubes.get(name) as QubeRecord;
    opsOf.set(name, Object.fromEntries(OPERATIONS.map((op) => [op.id, opCell(op, q)])));
  }
  // copy sources: qubes the principal may start a copy from
  const sources = names.filter((n) => opsOf.get(n)?.['copy'] !== 'deny');
  for (const name of names) {
    if (opts.qube !== undefined && name !== opts.qube) continue;
    const q = qubes.get(name) as QubeRecord;
    const operations = opsOf.get(name) as Record<string, Cell>;
    const isSink = q.tags.has(settings.tags.sink) && !q.tags.has(settings.tags.umbrella);
    // a push into a sink is qmcp.SinkPush; a copy anywhere else qubes.Filecopy
    const copyService = isSink ? 'qmcp.SinkPush' : 'qubes.Filecopy';
    const into = sources.filter((s) => s !== name).map((s) => evaluate(copyService, '', name, s));
    const intoCell: Cell = into.includes('allow') ? 'allow' : into.includes('ask') ? 'ask' : 'deny';
    const visible = inWorld(q);
    const groups = Object.fromEntries(GROUPS.map((g) => [g, '—'])) as Record<Group, GroupCell>;
    for (const g of ['see', 'exec', 'net', 'full'] as const) {
      groups[g] = groupCell(OPERATIONS.filter((op) => groupOf(op) === g).map((op) => operations[op.id] as Cell));
    }
    // copy: out of this qube (qmcp.CopyTo in it) and into it from a qube the agent may copy from
    groups.copy = isSink ? '—' : copyCell(operations['copy'] as Cell, intoCell);
    groups.sink = isSink ? groupCell([intoCell]) : '—';
    const isTomb = !visible && [...q.tags].some(isTombstoneMarker);
    const standing = visible ? 'visible' : isSink ? 'sink' : isTomb ? 'tombstone' : 'not visible';
    rows.push({ qube: name, klass: q.klass, standing, tier: visible ? effectiveTier(q.tags, settings) : null, groups, operations });
  }
  const gate = { ...gatedByLayer(settings), malformed: settings.gate === null };
  return { principal: p, mode: settings.mode, servicesRefuse: config === null ? warnings : [], policyError, gate, rows };
}

/** The report as a table a person reads at a glance. */
export function formatExplain(r: ExplainReport, withOperations = false): string {
  const head = ['QUBE', 'CLASS', 'STANDING', ...GROUPS];
  const body = r.rows.map((row) => [row.qube, row.klass, row.tier ? `visible, ${row.tier}` : row.standing, ...GROUPS.map((g) => row.groups[g])]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cols: string[]): string => cols.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  const out = [`principal ${r.principal}, mode ${r.mode}`];
  if (r.policyError) out.push(`the installed policy does not load, qrexec refuses every call: ${r.policyError}`);
  for (const w of r.servicesRefuse) out.push(`the dom0 services refuse every call: ${w}`);
  out.push(line(head), ...body.map(line));
  if (withOperations) {
    for (const row of r.rows) {
      const by = (c: Cell): string[] => Object.entries(row.operations).filter(([, v]) => v === c).map(([k]) => k);
      out.push(`${row.qube}: allow ${by('allow').join(' ') || '-'}${by('ask').length ? `; ask ${by('ask').join(' ')}` : ''}`);
    }
  }
  const g = r.gate;
  out.push(`the operator is asked for: ${g.dialog.join(' ') || '-'} (Qubes' dialog); ${g.services.join(' ') || '-'} (qmcp dom0 approvals)${g.malformed ? '; the gate setting is malformed, so everything that can be gated asks' : ''}`);
  out.push('cells: allowed, ask (the operator is asked), partial (some operations of the group), — (refused); copy: out of it, into it');
  if (r.rows.some((row) => row.standing === 'tombstone')) out.push('tombstone: removed by the agent, kept for the retention period (qmcp dom0 tombstones list|restore)');
  return out.join('\n') + '\n';
}
