/** admin.Events: a stream of every event, pre-events included, filtered as qubes/ext/admin.py does. */
import type { FiredEvent } from '../app.js';
import { callerIsAdmin, policyAllows } from './policy-filter.js';
import type { CallContext, MethodDef, MethodTable } from './types.js';

/** Events qubesd never forwards to API clients. */
function hidden(event: string): boolean {
  return (
    event.startsWith('admin-permission:') ||
    event.startsWith('device-get:') ||
    event.startsWith('device-list:') ||
    event.startsWith('device-list-attached:') ||
    event === 'domain-is-fully-usable'
  );
}

function policyTarget(ev: FiredEvent): string {
  if (ev.subject) return ev.subject;
  return ev.kwargs.find(([k]) => k === 'vm')?.[1] ?? '@adminvm';
}

async function events(ctx: CallContext): Promise<null> {
  const all = ctx.dest.name === 'dom0';
  const admin = callerIsAdmin(ctx);
  const unsubscribe = ctx.app.subscribe((ev) => {
    if (hidden(ev.event)) return;
    if (all ? ev.detached : ev.subject !== ctx.dest.name) return;
    if (!admin && !policyAllows(ctx, 'admin.Events', ev.event.replace(/:/g, '_'), policyTarget(ev))) return;
    ctx.sendEvent(ev);
  });
  ctx.sendEvent({ subject: '', event: 'connection-established', kwargs: [] });
  try {
    await ctx.closed;
  } finally {
    unsubscribe();
  }
  return null;
}

const def: MethodDef = { wantsArg: false, wantsPayload: false, destAdminvm: null, handler: events, streaming: true };

export const eventMethods: MethodTable = { 'admin.Events': def };
