/** admin.vm.tag.* */
import { err, QubesError } from '../errors.js';
import { callerIsAdmin } from './policy-filter.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

const TAG = /^[a-zA-Z0-9_-]+$/;

function checkTag(tag: string): void {
  if (!tag) throw new QubesError('QubesInvalidTagError', 'tag cannot be empty');
  if (!TAG.test(tag)) throw new QubesError('QubesInvalidTagError', 'disallowed characters');
}

/** qubes/ext/admin.py: created-by-* tags are dom0's alone. */
function guardCreatedBy(ctx: CallContext): void {
  if (ctx.arg.startsWith('created-by-') && !callerIsAdmin(ctx)) throw err.permission('');
}

export const tagMethods: MethodTable = {
  'admin.vm.tag.List': m(false, false, null, (ctx) => [...ctx.dest.tags].sort().map((t) => `${t}\n`).join('')),
  'admin.vm.tag.Get': m(true, false, null, (ctx) => {
    checkTag(ctx.arg);
    return ctx.dest.tags.includes(ctx.arg) ? '1' : '0';
  }),
  'admin.vm.tag.Set': m(true, false, null, (ctx) => {
    checkTag(ctx.arg);
    guardCreatedBy(ctx);
    ctx.app.addTag(ctx.dest, ctx.arg);
    ctx.app.save();
    return null;
  }),
  'admin.vm.tag.Remove': m(true, false, null, (ctx) => {
    checkTag(ctx.arg);
    guardCreatedBy(ctx);
    ctx.app.removeTag(ctx.dest, ctx.arg);
    ctx.app.save();
    return null;
  }),
};
