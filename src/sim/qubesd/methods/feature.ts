/** admin.vm.feature.* */
import { err } from '../errors.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

/** Features nobody may set or remove over the API, dom0 included (qubes/ext/admin.py). */
const GUARDED = new Set(['deferred-netvm-original', 'preload-dispvm', 'preload-dispvm-completed', 'preload-dispvm-in-progress']);

function get(ctx: CallContext): string {
  const v = ctx.dest.features[ctx.arg];
  if (v === undefined) throw err.featureNotFound(ctx.dest.name, ctx.arg);
  return v;
}

export const featureMethods: MethodTable = {
  'admin.vm.feature.List': m(false, false, null, (ctx) => Object.keys(ctx.dest.features).map((f) => `${f}\n`).join('')),
  'admin.vm.feature.Get': m(true, false, null, get),
  'admin.vm.feature.CheckWithTemplate': m(true, false, null, (ctx) => {
    const v = ctx.app.featureWithTemplate(ctx.dest, ctx.arg);
    if (v === undefined) throw err.featureNotFound(ctx.dest.name, ctx.arg);
    return v;
  }),
  'admin.vm.feature.CheckWithAdminVM': m(true, false, null, (ctx) => {
    const v = ctx.dest.features[ctx.arg] ?? ctx.app.get('dom0')?.features[ctx.arg];
    if (v === undefined) throw err.featureNotFound(ctx.dest.name, ctx.arg);
    return v;
  }),
  'admin.vm.feature.CheckWithTemplateAndAdminVM': m(true, false, null, (ctx) => {
    const v = ctx.app.featureWithTemplate(ctx.dest, ctx.arg) ?? ctx.app.get('dom0')?.features[ctx.arg];
    if (v === undefined) throw err.featureNotFound(ctx.dest.name, ctx.arg);
    return v;
  }),
  'admin.vm.feature.CheckWithNetvm': m(true, false, null, (ctx) => {
    const seen = new Set<string>();
    let cur = ctx.dest;
    for (;;) {
      const v = cur.features[ctx.arg];
      if (v !== undefined) return v;
      seen.add(cur.name);
      const net = ctx.app.propValue(cur, 'netvm');
      const next = typeof net === 'string' ? ctx.app.get(net) : undefined;
      if (!next || seen.has(next.name)) throw err.featureNotFound(ctx.dest.name, ctx.arg);
      cur = next;
    }
  }),
  'admin.vm.feature.Set': m(true, null, null, (ctx) => {
    for (const b of ctx.payload) if (b > 0x7f) throw err.protocol('Feature value contains non-ASCII characters');
    const value = ctx.payload.toString('latin1');
    if (!/^[a-zA-Z0-9_.-]+$/.test(ctx.arg)) throw err.protocol('feature name contains illegal characters');
    if (!/^[\x20-\x7e]*$/.test(value)) throw err.protocol(`${ctx.arg} value contains illegal characters`);
    if (GUARDED.has(ctx.arg)) throw err.permission('');
    ctx.app.setFeature(ctx.dest, ctx.arg, value);
    ctx.app.save();
    return null;
  }),
  'admin.vm.feature.Remove': m(true, false, null, (ctx) => {
    if (GUARDED.has(ctx.arg)) throw err.permission('');
    ctx.app.removeFeature(ctx.dest, ctx.arg);
    ctx.app.save();
    return null;
  }),
};
