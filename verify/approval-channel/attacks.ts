/**
 * What the approval-channel check throws at the approval store while live
 * requests wait: every qrexec service name the policy or dom0 could answer
 * (the installed dom0 services, the names in the policy, qubesd's admin.*
 * methods, and qmcp names with approval-like words and suffixes), with
 * arguments and payloads carrying the live requests' ids, digests, nonces
 * and forged answer documents; and, from inside sandbox qubes, reads and
 * writes of the store's paths (the dom0 path, the path dom0 has on a real
 * host, `../` escapes, /proc).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRequest } from '../../src/dom0/gate/store.js';
import { encodeExecRequest, encodeReadFileRequest, encodeWriteFileRequest } from '../../src/shared/inqube-protocol.js';
import { serviceDirs } from '../../src/sim/qrexec/dom0-services.js';
import { adminMethods } from '../../src/sim/qubesd/methods/index.js';
import { PRINCIPAL } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';

/** One call of the attack: from a seat, to a target, and what it carries itself (secrets in it are not a leak). */
export interface Attack {
  readonly seat: string;
  readonly target: string;
  /** `service` or `service+argument`. */
  readonly service: string;
  readonly payload: Buffer;
  readonly carried: string;
  /** A read or write of the store from inside a sandbox qube (through the agent's exec and file calls). */
  readonly inQube: boolean;
}

/** Words an approval channel could be named by, for qmcp names that no build installs. */
const APPROVAL_WORDS = ['Approval', 'Approvals', 'Approve', 'Allow', 'Deny', 'Answer', 'Answers', 'Request', 'Requests', 'Pending', 'Gate', 'Grant', 'Confirm', 'Consent', 'Ask', 'Asks', 'Decision', 'Operator', 'Notify', 'Watch', 'PlanApprove', 'ApprovalsList', 'ApprovalsAllow'] as const;
/** Suffixes tried on every installed qmcp service. */
const SUFFIXES = ['.Approve', 'Approval'] as const;
/** The targets a call names: dom0 by every name it has. */
const TARGETS = ['@adminvm', 'dom0', '@default'] as const;

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Every service name the policy or dom0 could answer, with the approval-like qmcp names: the installed dom0 services first. */
export function serviceNames(root: string): string[] {
  const installed = serviceDirs(root).flatMap(entries).map((n) => n.split('+')[0] as string);
  const policyDir = join(root, 'etc', 'qubes', 'policy.d');
  const inPolicy = entries(policyDir)
    .filter((f) => f.endsWith('.policy'))
    .flatMap((f) => readFileSync(join(policyDir, f), 'utf8').split('\n'))
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((s) => s !== '' && s !== '*' && !s.startsWith('#') && !s.startsWith('!'));
  const qmcp = [...installed, ...inPolicy].filter((s) => s.startsWith('qmcp.'));
  const approvalLike = [...APPROVAL_WORDS.map((w) => `qmcp.${w}`), ...qmcp.flatMap((s) => SUFFIXES.map((x) => `${s}${x}`))];
  const sorted = (xs: readonly string[]): string[] => [...xs].sort();
  return [...new Set([...sorted(installed), ...sorted(inPolicy), ...sorted(approvalLike), ...sorted(Object.keys(adminMethods))])];
}

/** An answer document for `r`, as the operator's CLI would write it, forged with everything the store holds. */
export function forgedAnswer(r: ApprovalRequest): string {
  return JSON.stringify({ id: r.id, nonce: r.nonce, digest: r.digest, decision: 'allow', by: 'root', how: 'cli', at: new Date(0).toISOString() });
}

/**
 * Per service: one call from the principal without an argument, `scale`
 * more with one (`scale - 1` for qubesd's methods), and one from a sandbox
 * seat (each seat above scale 1);
 * arguments and payloads rotate over the live requests' ids, digests,
 * nonces and forged answers.
 */
export function serviceAttacks(services: readonly string[], live: readonly ApprovalRequest[], seats: readonly string[], scale: number): Attack[] {
  const out: Attack[] = [];
  let n = 0;
  const one = (seat: string, service: string, bare = false): Attack => {
    const i = n++;
    const r = live[i % live.length] as ApprovalRequest;
    const args = [r.id, `${r.id}.answer.json`, r.digest, r.nonce];
    const payloads = [forgedAnswer(r), `${r.id} allow\n`, JSON.stringify({ id: r.id, decision: 'allow' }), ''];
    const arg = bare ? '' : (args[i % args.length] as string);
    const payload = payloads[Math.floor(i / args.length) % payloads.length] as string;
    const full = arg === '' ? service : `${service}+${arg}`;
    return { seat, target: TARGETS[i % TARGETS.length] as string, service: full, payload: Buffer.from(payload), carried: `${full} ${payload}`, inQube: false };
  };
  for (const [i, service] of services.entries()) {
    out.push(one(PRINCIPAL, service, true));
    // qubesd knows nothing of the store: at scale 1 its methods are called without an argument
    for (let v = 0; v < (service.startsWith('admin.') ? scale - 1 : scale); v++) out.push(one(PRINCIPAL, service));
    // at scale 1 each service from one sandbox seat, in turn; from every seat above
    for (const seat of scale > 1 ? seats : [seats[i % seats.length] as string]) out.push(one(seat, service));
  }
  return out;
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Reads and writes of the store from inside each sandbox qube, through the
 * principal's exec and file calls; the first command only shows the qube
 * answers at all.
 */
export function inQubeAttacks(qubes: readonly string[], live: readonly ApprovalRequest[], paths: { readonly store: string; readonly root: string; readonly host: string }): Attack[] {
  const r = live[0] as ApprovalRequest;
  const dom0Path = '/var/lib/qmcp/approvals';
  const forged = forgedAnswer(r);
  const shells = [
    'echo alive',
    `ls -la ${sq(paths.store)}`,
    `cat ${sq(`${paths.store}/${r.id}.json`)}`,
    `ls -la ${dom0Path}`,
    `cat ${dom0Path}/${r.id}.json`,
    `cd / && cat ${sq(`../../../..${paths.store}/${r.id}.json`)}`,
    `cat ${sq(`/proc/1/root${paths.store}/${r.id}.json`)}`,
    `ls -la ${sq(paths.host)} ${sq(paths.root)}`,
    `printf %s ${sq(forged)} > ${sq(`${paths.store}/${r.id}.answer.json`)}`,
    `mkdir -p ${dom0Path} && printf %s ${sq(forged)} > ${dom0Path}/${r.id}.answer.json`,
  ];
  const out: Attack[] = [];
  for (const qube of qubes) {
    const call = (service: string, payload: Buffer, carried: string): Attack => ({ seat: PRINCIPAL, target: qube, service, payload, carried, inQube: true });
    for (const shell of shells) out.push(call(qrexecService('run'), encodeExecRequest({ shell }), shell));
    for (const path of [`${paths.store}/${r.id}.json`, `${dom0Path}/${r.id}.json`]) out.push(call(qrexecService('file.read'), encodeReadFileRequest({ path }), path));
    for (const path of [`${paths.store}/${r.id}.answer.json`, `${dom0Path}/${r.id}.answer.json`]) {
      out.push(call(qrexecService('file.write'), encodeWriteFileRequest({ path, content: forged, createParents: true }), `${path} ${forged}`));
    }
  }
  return out;
}
