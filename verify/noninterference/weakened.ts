/**
 * dom0 services with one guard replaced, for the noninterference check's
 * weakened variants. Each is built from the real row of the service table
 * and runs in a machine's dom0 in place of the real one: a socket of that
 * service's name, which qrexec finds before the installed service, served
 * through the resident front end in the check's process (machines.ts).
 * dom0's own code is not touched.
 */
import { pathToFileURL } from 'node:url';
import { openAudit } from '../../src/dom0/audit/index.js';
import { processDeps } from '../../src/dom0/create/deps.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Dom0CallIo } from '../../src/dom0/service/compose.js';
import { runService as realRunService } from '../../src/dom0/service/run.js';
import { serviceTable } from '../../src/dom0/services/index.js';
import { readDeps } from '../../src/dom0/services/read-services.js';
import { loadDom0Config } from '../../src/dom0/service/config.js';
import type { Dom0Config } from '../../src/dom0/service/config.js';
import type { ServiceConfig } from '../../src/dom0/service/run.js';
import { readPrincipalsFile, settingsPath } from '../../src/shared/model/index.js';
import { ActionableError, ServiceRefusal } from '../../src/dom0/service/refusal.js';
import { isTombstoneMarker } from '../../src/dom0/tombstones/markers.js';
import { listTombstones, reinstate } from '../../src/dom0/tombstones/operator.js';
import { weakenedFile } from '../weakened-module.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import type { ScopeRules, Snapshot } from '../../src/dom0/service/snapshot.js';

type Weakening = (real: ServiceSpec<unknown>, scope: ScopeRules) => ServiceSpec<unknown>;

/** The outside qube the weakened event filter counts as the agent's: B's operator relabels it inside the event window. */
export const LEAKED_TO_EVENTS = 'ops-dvm';

/** The snapshot with one qube carrying the umbrella tag, as far as `any` tells. */
function withUmbrella(s: Snapshot, name: string, umbrella: string): Snapshot {
  const leaky = Object.create(s) as Snapshot;
  leaky.any = (n) => {
    const q = s.any(n);
    return q && n === name ? { ...q, tags: new Set([...q.tags, umbrella]) } : q;
  };
  return leaky;
}

/** The host of the weakened memory range. */
const HOST_MEMORY_MIB = 4096;

/** By operation id. */
export const WEAKENINGS = {
  /** Info finds its qube by existence (`Snapshot.any`) where the runner's guard asks visibility: an outside qube is answered as the agent's. */
  info: (real) => ({
    ...real,
    targets: () => [],
    refers: (input) => [(input as { name: string }).name],
    async handle(ctx) {
      const q = ctx.snapshot.any((ctx.input as { name: string }).name);
      if (!q) throw new ServiceRefusal('no such qube');
      return real.handle({ ...ctx, targets: [q] });
    },
  }),
  /** List names as sinks every qube outside the umbrella, as if the sink tag were not asked. */
  list: (real, scope) => ({
    ...real,
    async handle(ctx) {
      const out = (await real.handle(ctx)) as { qubes: unknown[] };
      const sinks = ctx.snapshot.allQubes().filter((q) => q.klass !== 'AdminVM' && !q.tags.has(scope.umbrella));
      return { ...out, sinks: sinks.map((q) => q.name) };
    },
  }),
  /** The agent's tombstone list built on the operator's: every tombstone, whoever removed it. */
  'tombstone.list': (real) => ({
    ...real,
    async handle({ qubesd }) {
      return { tombstones: (await listTombstones(qubesd)).map((t) => ({ name: t.name, klass: t.klass, removed: t.since, bytes: 0 })) };
    },
  }),
  /** A restore that asks only whether the name is a tombstone (the operator's check), not whose. */
  'tombstone.restore': (real) => ({
    ...real,
    admits: (input, snapshot) => ([...(snapshot.any((input as { name: string }).name)?.tags ?? [])].some(isTombstoneMarker) ? null : 'not a tombstone'),
    async handle({ input, qubesd }) {
      const name = (input as { name: string }).name;
      await reinstate(qubesd, processDeps().settings(), name, 'read');
      return { name, tier: 'read' };
    },
  }),
  /** The event window starts with one outside qube in its visible set, so its events pass the filter. */
  events: (real, scope) => ({
    ...real,
    handle: (ctx) => real.handle({ ...ctx, snapshot: withUmbrella(ctx.snapshot, LEAKED_TO_EVENTS, scope.umbrella) }),
  }),
  /**
   * Memory bounded by what the host has free, not by the operator's
   * limit: the free figure is what every running qube leaves, outside ones
   * included, and the error says it.
   */
  'property.set': (real) => ({
    ...real,
    async handle(ctx) {
      const { property, wire } = ctx.input as { property: string; wire: string };
      if (property === 'memory') {
        let used = 0;
        for (const [name, q] of await ctx.qubesd.list()) {
          if (name !== 'dom0' && q.state === 'Running') used += Number((await ctx.qubesd.property(name, 'memory')).value);
        }
        const free = HOST_MEMORY_MIB - used;
        if (Number(wire) > free) throw new ActionableError('out_of_range', `the value must be at most ${free} MiB, what the host has free`);
      }
      return real.handle(ctx);
    },
  }),
} satisfies Record<string, Weakening>;

export type WeakenedOperation = keyof typeof WEAKENINGS;

/**
 * The table with every row that has a weakening replaced. Only the services
 * whose wrappers a machine rewrote reach it, so those alone are weakened.
 */
export function weakenedTable(real: ReadonlyMap<string, ServiceSpec<unknown>>, scope: ScopeRules): ReadonlyMap<string, ServiceSpec<unknown>> {
  return new Map([...real].map(([key, spec]) => [key, Object.hasOwn(WEAKENINGS, spec.operation) ? WEAKENINGS[spec.operation as WeakenedOperation](spec, scope) : spec]));
}

let existenceRunner: string | null = null;

/**
 * The runner whose scope check before the gate asks only whether the named
 * qubes exist (the re-check after an approval is the real one): a qube
 * outside the agent's world makes a request and waits for the operator
 * before it is refused, an absent name is refused at once. Its compiled
 * file, made once.
 */
export function existenceGateRunner(): string {
  existenceRunner ??= weakenedFile(
    'dom0/service/run',
    'const checked = visibleTargets(snapshot, needs);',
    "const checked = needs.every((n) => snapshot.any(n.name)) ? needs.map((n) => snapshot.any(n.name)) : 'not visible';",
  );
  return existenceRunner;
}

/** What a weakened service serves every caller with of the first principal: its whole world and settings, or only its gate setting. */
export type Firsts = 'settings' | 'gate' | null;

/**
 * Whose settings a dom0 service serves CALLER with: the caller's own, or with
 * `firsts` the first principal's world and settings under the caller's name,
 * which the runner then admits, or the caller's own with the first's gate
 * setting. `reload` is what the gate reads again after an approval: the same.
 */
export function servedAs(root: string, log: (m: string) => void, caller: string | undefined, firsts: Firsts): { served: string | undefined; config: Dom0Config | null; reload: () => ServiceConfig | null } {
  const reload = (): ServiceConfig | null => servedAs(root, log, caller, firsts).config?.service ?? null;
  const list = firsts ? readPrincipalsFile(settingsPath(root)).principals.list : [];
  const first = firsts === 'settings' ? list[0]?.principal : undefined;
  const served = first ?? caller;
  const picked = loadDom0Config(root, log, undefined, served);
  if (picked && firsts === 'gate' && list[0] !== undefined) {
    const settings = { ...picked.settings, gate: list[0].gate };
    return { served, config: { settings, service: { ...picked.service, settings } }, reload };
  }
  const config = picked && first !== undefined && caller !== undefined ? { ...picked, service: { ...picked.service, principal: caller } } : picked;
  return { served, config, reload };
}

/** How one weakened service is served: the weakened runner's file (existenceGateRunner), and whether with the first principal's settings. */
export interface WeakenedServing {
  readonly runner?: string;
  readonly firsts?: Firsts;
}

/**
 * One call of a weakened service on the dom0 at ROOT: the real table with
 * the rows WEAKENINGS replaces, through the real runner or HOW's, with the
 * caller's settings or (firsts) the first principal's, or its gate setting.
 */
export async function serveWeakened(root: string, qubesdSocket: string, c: Dom0CallIo, how: WeakenedServing): Promise<number> {
  const log = (): void => undefined;
  const { served, config, reload } = servedAs(root, log, c.env['QREXEC_REMOTE_DOMAIN'], how.firsts ?? null);
  const real = serviceTable({ write: processDeps({ QMCP_ROOT: root, ...(served ? { QREXEC_REMOTE_DOMAIN: served } : {}) }, log), read: readDeps(config) });
  const table = config ? weakenedTable(real, config.service.scope) : real;
  const runService = how.runner ? ((await import(pathToFileURL(how.runner).href)) as { runService: typeof realRunService }).runService : realRunService;
  return runService(table, {
    env: c.env,
    stdin: c.stdin,
    io: c.io,
    qubesd: new Qubesd(qubesdSocket),
    audit: openAudit({ root }),
    config: config ? config.service : null,
    log,
    gate: { reload, onStop: c.onStop },
  });
}
