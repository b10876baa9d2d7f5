/**
 * What the caller of a dom0 service served by the resident process reads,
 * put back into what the per-call executable shows: the status from the
 * reply's trailer (shared/service-reply.ts), and the refusal's stderr. A
 * reply without a trailer is left as it came, so it fails any comparison.
 * Only for tests that compare with the executable's replies: a check of
 * what the principal observes compares the raw bytes.
 */
import { REFUSAL_EXIT_STATUS, REFUSAL_STDERR } from '../../dom0/service/refusal.js';
import { dom0Services } from '../../shared/model/capabilities.js';
import { decodeReply } from '../../shared/service-reply.js';

export interface RawReply {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

const DOM0_SERVICES: ReadonlySet<string> = new Set(dom0Services().map((s) => s.service));

/** Whether a call names one of the model's qmcp dom0 services (the only replies that carry a trailer). */
export function isDom0Service(target: string, service: string): boolean {
  const plus = service.indexOf('+');
  return (target === '@adminvm' || target === 'dom0') && DOM0_SERVICES.has(plus < 0 ? service : service.slice(0, plus));
}

/** A gated call's keepalive newlines, written while it waited for the operator, are all a refusal may follow. */
function onlyNewlines(b: Buffer): boolean {
  return b.every((c) => c === 0x0a);
}

export function asExecutableReply(r: RawReply): RawReply {
  if (r.status !== 0 || r.stderr.length > 0) return r;
  const d = decodeReply(r.stdout);
  if (d === null) return r;
  if (d.status !== REFUSAL_EXIT_STATUS) return { status: d.status, stdout: d.stdout, stderr: Buffer.alloc(0) };
  // only the one refusal reply reads as the executable's refusal; any other 126 stays as it came
  return onlyNewlines(d.stdout) ? { status: REFUSAL_EXIT_STATUS, stdout: d.stdout, stderr: Buffer.from(REFUSAL_STDERR) } : r;
}
