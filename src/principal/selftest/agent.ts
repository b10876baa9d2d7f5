/**
 * The calls the scenarios make, with the bytes the MCP server's tools send:
 * dom0 services at `@adminvm` with the qube in the argument, tag-scoped
 * Admin API calls with the qube as the target and an empty argument. Each
 * names a model operation; the model names its service.
 */
import { encodeExecRequest } from '../../shared/inqube-protocol.js';
import { decodeReply } from '../../shared/service-reply.js';
import { serviceOf } from '../calls.js';
import { onlyKeepalive } from './caller.js';
import type { Caller, CallHooks, Reply } from './caller.js';

/** What qrexec-client-vm shows for every refusal, and what every dom0 service refusal copies. */
export const REFUSED_STATUS = 126;
export const REFUSED_STDERR = 'Request refused\n';

export function isRefusal(r: Reply): boolean {
  return r.status === REFUSED_STATUS && r.stdout.length === 0 && r.stderr.toString('latin1') === REFUSED_STDERR;
}

/** The refusal of a call that waited for the operator: its stdout holds only the keepalive newlines written before it. */
export function isRefusalAfterWait(r: Reply): boolean {
  return r.status === REFUSED_STATUS && (r.stdout.length === 0 || onlyKeepalive(r.stdout)) && r.stderr.toString('latin1') === REFUSED_STDERR;
}

/** Byte-identical: exit status, stdout and stderr. */
export function sameReply(a: Reply, b: Reply): boolean {
  return a.status === b.status && a.stdout.equals(b.stdout) && a.stderr.equals(b.stderr);
}

/** A reply in one short line, for a report. */
export function describe(r: Reply): string {
  if (r.status === null) return 'no answer (timeout or failure)';
  if (isRefusal(r)) return 'the refusal';
  const text = (b: Buffer): string => JSON.stringify(b.toString('latin1').slice(0, 60));
  return `exit ${r.status}, stdout ${text(r.stdout)}, stderr ${text(r.stderr)}`;
}

export type Json = Record<string, unknown>;

/** stdout of an exit-0 reply as a JSON object, else null. */
export function jsonOf(r: Reply): Json | null {
  if (r.status !== 0) return null;
  try {
    const v: unknown = JSON.parse(r.stdout.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
  } catch {
    return null;
  }
}

/** An Admin API reply through qrexec: exit 0 and `0\0` (ok) or `2\0` (a Qubes exception). */
export function adminAnswer(r: Reply): 'ok' | 'exception' | null {
  if (r.status !== 0) return null;
  if (r.stdout.subarray(0, 2).equals(Buffer.from('0\0', 'latin1'))) return 'ok';
  if (r.stdout.subarray(0, 2).equals(Buffer.from('2\0', 'latin1'))) return 'exception';
  return null;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');

/**
 * A dom0 service's reply as the per-call executable gives it. Served by the
 * resident process, a reply comes with exit 0 and ends with the status
 * (shared/service-reply.ts); its one refusal (the trailer alone, after any
 * keepalive newlines) reads as the executable's refusal, and any other
 * reply keeps its bytes, so two refusals that differ still differ here.
 */
export function asExecutable(r: Reply): Reply {
  if (r.status !== 0 || r.stderr.length > 0) return r;
  const d = decodeReply(r.stdout);
  if (d === null) return r;
  if (d.status !== REFUSED_STATUS) return { status: d.status, stdout: d.stdout, stderr: Buffer.alloc(0) };
  return d.stdout.every((b) => b === 0x0a) ? { status: REFUSED_STATUS, stdout: d.stdout, stderr: Buffer.from(REFUSED_STDERR, 'latin1') } : r;
}

/** The operations the scenarios use, each one qrexec call. */
export class Agent {
  constructor(readonly caller: Caller) {}

  private async dom0(operationId: string, argument: string, payload?: unknown, hooks?: CallHooks): Promise<Reply> {
    return asExecutable(await this.caller.call('@adminvm', serviceOf(operationId, 'dom0-service'), argument, payload === undefined ? undefined : json(payload), hooks));
  }

  list(): Promise<Reply> {
    return this.dom0('list', '');
  }
  info(qube: string): Promise<Reply> {
    return this.dom0('info', qube);
  }
  start(qube: string): Promise<Reply> {
    return this.dom0('start', qube);
  }
  remove(qube: string, hooks?: CallHooks): Promise<Reply> {
    return this.dom0('remove', qube, undefined, hooks);
  }
  shutdown(qube: string, hooks?: CallHooks): Promise<Reply> {
    return this.dom0('shutdown', qube, undefined, hooks);
  }
  kill(qube: string, hooks?: CallHooks): Promise<Reply> {
    return this.dom0('kill', qube, undefined, hooks);
  }
  setProperty(qube: string, name: string, value: unknown, hooks?: CallHooks): Promise<Reply> {
    return this.dom0('property.set', qube, { name, value }, hooks);
  }
  poolFigures(): Promise<Reply> {
    return this.dom0('pool.figures', '');
  }
  create(name: string, template: string): Promise<Reply> {
    return this.dom0('create', '', { name, template });
  }
  clone(source: string, name: string): Promise<Reply> {
    return this.dom0('clone', source, { name });
  }
  disposable(dvmt: string, name: string): Promise<Reply> {
    return this.dom0('disposable', dvmt, { name, autoCleanup: false });
  }
  /** A tag-scoped Admin API operation, e.g. `state`. */
  admin(qube: string, operationId: string): Promise<Reply> {
    return this.caller.call(qube, serviceOf(operationId, 'admin-api'), '');
  }
  /** `true` inside the qube, as the run tool sends it. */
  execTrue(qube: string): Promise<Reply> {
    const request = encodeExecRequest({ argv: ['true'], stdin: '', timeoutSeconds: 30, outputLimit: 4096 });
    return this.caller.call(qube, serviceOf('run', 'in-qube'), undefined, request);
  }
}

/** The services every out-of-world name is probed with; each refuses the same way for all of them. */
export const PROBES: readonly { readonly id: string; readonly call: (a: Agent, qube: string) => Promise<Reply> }[] = [
  { id: 'info', call: (a, q) => a.info(q) },
  { id: 'start', call: (a, q) => a.start(q) },
  { id: 'remove', call: (a, q) => a.remove(q) },
  // a harmless value: the call should never reach a qube at all
  { id: 'property.set', call: (a, q) => a.setProperty(q, 'autostart', false) },
  { id: 'CurrentState', call: (a, q) => a.admin(q, 'state') },
  { id: 'firewall.Get', call: (a, q) => a.admin(q, 'firewall.get') },
  { id: 'shutdown', call: (a, q) => a.shutdown(q) },
  { id: 'kill', call: (a, q) => a.kill(q) },
];
