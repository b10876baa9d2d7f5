/** Policy filtering of listings and events for callers other than dom0 (qubes/ext/admin.py). */
import type { CallContext } from './types.js';

/** Whether qrexec policy allows `service+argument` from the caller to `target`; ask and errors count as deny. */
export function policyAllows(ctx: CallContext, service: string, argument: string, target: string): boolean {
  const policy = ctx.policy();
  if (!policy) return true;
  try {
    return policy.evaluate({ service, argument, source: ctx.src.name, target }, ctx.app.systemInfo()).action === 'allow';
  } catch {
    return false;
  }
}

export function callerIsAdmin(ctx: CallContext): boolean {
  return ctx.src.klass === 'AdminVM';
}
