/**
 * The actionable errors' paths, exercised on both machines of every pair:
 * one probe per code a dom0 service answers with (shared/error-codes.ts),
 * a principal's raw call made to end in that code on the base fleet. The
 * pair compares their answers like any other call; what this adds is that
 * each probe must still reach its code, so a probe that drifts to another
 * answer fails instead of passing quietly. Some codes need the operator's
 * settings unset (the pairs that run with UNSET_SETTINGS), the others the
 * ordinary ones; the few no simulated machine can reach are listed with
 * why and the test that covers them.
 */
import { ERROR_CODES } from '../../src/shared/error-codes.js';
import type { Dom0Code } from '../../src/shared/error-codes.js';
import { PRINCIPAL } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import type { Call, Observation } from './calls.js';

/** The pair's settings a probe needs: the base ones, or those with the budget, the egress qube and the limits unset. */
export type ProbeSettings = 'set' | 'unset';

/**
 * What the unset pairs change of the base settings: each an operator's
 * choice the agent can only report. They also bound the lease: with the
 * budget unset no qube is born in them, so no answer carries an expiry
 * read from each machine's clock, and a lease asked past the default is
 * answered on both.
 */
export const UNSET_SETTINGS = { poolCapBytes: null, egressQube: null, qubeLimits: 'all', lease: { default: '1h', max: '1d' } } as const;

export interface Probe {
  readonly settings: ProbeSettings;
  /** The calls that set the stage (compared like any other), then the one that must end in the code. */
  readonly before?: readonly Call[];
  readonly call: Call;
}

const json = (o: unknown): string => JSON.stringify(o);

function dom0(id: string, argument: string, payload: unknown = ''): Call {
  return { seat: PRINCIPAL, target: '@adminvm', service: qrexecService(id, argument), payload: typeof payload === 'string' ? payload : json(payload), operation: id };
}

const set = (call: Call): Probe => ({ settings: 'set', call });
const unset = (call: Call): Probe => ({ settings: 'unset', call });

/**
 * By code: the probe, or why no pair can reach it and what covers it. The
 * base fleet is verify/noninterference/machines.ts's (ai-box running, as
 * every sequence starts it; ai-execbox halted; ai-big's private volume
 * over the per-qube cap, and the operator's hold on its start, so it stays
 * halted).
 */
export const PROBES: Readonly<Record<Dom0Code, Probe | { readonly unreachable: string }>> = {
  name_invalid: set(dom0('create', '', { name: '9box', template: 'ai-tpl' })),
  name_prefix: set(dom0('create', '', { name: 'work2', template: 'ai-tpl' })),
  unknown_label: set(dom0('clone', 'ai-box', { name: 'ai-new1', label: 'pink' })),
  bad_netvm: set(dom0('create', '', { name: 'ai-new1', template: 'ai-tpl', netvm: 'sys-firewall' })),
  bad_value: set(dom0('property.set', 'ai-box', { name: 'autostart', value: 'yes' })),
  out_of_range: set(dom0('property.set', 'ai-box', { name: 'vcpus', value: 64 })),
  limits_unset: unset(dom0('property.set', 'ai-box', { name: 'memory', value: 600 })),
  lease_unset: {
    unreachable:
      'a malformed lease setting refuses every create at its parse, so a pair holding it could not answer no_egress, which only a create reaches; a run at scale 1 has one unset pair, which bounds the lease instead; test/services-write/lease.test.ts',
  },
  lease_too_long: unset(dom0('create', '', { name: 'ai-new4', template: 'ai-tpl', leaseSeconds: 7200 })),
  budget_unset: unset(dom0('clone', 'ai-box', { name: 'ai-new2' })),
  no_egress: unset(dom0('create', '', { name: 'ai-new3', template: 'ai-tpl' })),
  exists: set(dom0('create', '', { name: 'ai-peer', template: 'ai-tpl' })),
  over_budget: set(dom0('clone', 'ai-big', { name: 'ai-new2' })),
  not_a_template: set(dom0('create', '', { name: 'ai-new3', template: 'ai-box' })),
  not_a_disposable_template: set(dom0('disposable', 'ai-box', { name: 'ai-disp1' })),
  not_clonable: { unreachable: 'needs a DispVM of the agent\'s at full tier, which a pair makes only by chance; test/services-write/actionable.test.ts' },
  in_use: set(dom0('remove', 'ai-tpl')),
  no_lease: set(dom0('renew', 'ai-box', {})),
  no_template: { unreachable: 'the simulated qubesd holds no AppVM without its template; test/services-write/actionable.test.ts' },
  start_failed: set(dom0('start', 'ai-big')),
  not_running: set(dom0('shutdown', 'ai-execbox')),
  device_not_found: set(dom0('device.attach', 'ai-box', { class: 'block', backend: 'ai-peer', port: 'sdz' })),
  device_in_use: {
    settings: 'set',
    before: [dom0('device.attach', 'ai-box', { class: 'block', backend: 'ai-peer', port: 'sda' })],
    call: dom0('device.attach', 'ai-box', { class: 'block', backend: 'ai-peer', port: 'sda' }),
  },
  not_attached: set(dom0('device.detach', 'ai-dvm', { class: 'block', backend: 'ai-peer', port: 'sda' })),
  not_halted: set(dom0('checkpoint', 'ai-box')),
  no_checkpoint: set(dom0('revert', 'ai-big')),
  unchanged: { settings: 'set', before: [dom0('checkpoint', 'ai-big')], call: dom0('revert', 'ai-big') },
  no_revisions: { unreachable: 'needs a DispVM of the agent\'s at full tier, which a pair makes only by chance; test/services-write/checkpoint.test.ts' },
  checkpoint_lost: { unreachable: 'needs more stops of the qube since its checkpoint than its volume keeps revisions, which no pair makes; test/services-write/checkpoint.test.ts' },
  no_free_name: { unreachable: 'needs every PREFIXdispN name within 31 characters taken, which no pair holds; test/services-write/disposable-name.test.ts' },
};

/**
 * Calls at the edge of a range, which succeed on both machines: a range
 * that took what the host has free (what other qubes, outside ones
 * included, leave) would answer them by machine.
 */
export const EDGE_PROBES: readonly Probe[] = [set(dom0('property.set', 'ai-box', { name: 'memory', value: 4096 }))];

/** Every dom0 code in the table has an entry; a line per one that lacks it, or an entry for no such code. */
export function probeGaps(probes: Readonly<Record<string, unknown>> = PROBES): string[] {
  const codes = Object.entries(ERROR_CODES)
    .filter(([, c]) => c.from === 'dom0')
    .map(([k]) => k);
  return [...codes.filter((c) => !Object.hasOwn(probes, c)).map((c) => `${c}: no actionable probe`), ...Object.keys(probes).filter((k) => !codes.includes(k)).map((k) => `${k}: a probe for no dom0 code`)];
}

/**
 * The calls of the probes a pair of these settings makes, each with the
 * code it must answer (null: success; undefined: a call that sets the
 * stage), keeping to `only` (a test of one weakened service).
 */
export function probesFor(settings: ProbeSettings, only?: readonly string[]): { code: Dom0Code | null | undefined; call: Call }[] {
  const coded = Object.entries(PROBES).flatMap(([code, p]) => ('call' in p ? [{ code: code as Dom0Code | null, ...p }] : []));
  const all = [...coded, ...EDGE_PROBES.map((p) => ({ code: null, ...p }))];
  return all
    .filter((p) => p.settings === settings && (!only || (p.call.operation !== undefined && only.includes(p.call.operation))))
    .flatMap(({ code, before, call }) => [...(before ?? []).map((c) => ({ code: undefined, call: c })), { code, call }]);
}

/** The code of an actionable answer (exit 1, `{"error":{"code":…}}`), else null. */
export function answeredCode(o: Observation): string | null {
  if (o.status !== 1) return null;
  try {
    const e = (JSON.parse(o.stdout.replace(/^\n+/, '')) as { error?: { code?: unknown } }).error;
    return typeof e?.code === 'string' ? e.code : null;
  } catch {
    return null;
  }
}
