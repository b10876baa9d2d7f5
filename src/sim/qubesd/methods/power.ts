/** admin.vm.Start, Shutdown, Kill, Pause, Unpause, Suspend, Resume. */
import { err } from '../errors.js';
import type { MethodTable } from './types.js';
import { m } from './types.js';

export const powerMethods: MethodTable = {
  'admin.vm.Start': m(false, false, null, async (ctx) => {
    await ctx.app.start(ctx.dest);
    return null;
  }),
  'admin.vm.Shutdown': m(null, false, null, async (ctx) => {
    const args = ctx.arg ? ctx.arg.split('+') : [];
    if (!args.every((a) => a === 'force' || a === 'wait')) throw err.protocol('Argument must match: force, wait');
    await ctx.app.shutdown(ctx.dest, args.includes('force'));
    return null;
  }),
  'admin.vm.Kill': m(false, false, null, async (ctx) => {
    await ctx.app.kill(ctx.dest);
    return null;
  }),
  'admin.vm.Pause': m(false, false, null, (ctx) => {
    ctx.app.pause(ctx.dest);
    return null;
  }),
  'admin.vm.Unpause': m(false, false, null, (ctx) => {
    ctx.app.unpause(ctx.dest);
    return null;
  }),
  'admin.vm.Suspend': m(false, false, null, (ctx) => {
    throw err.notRunning(ctx.dest.name);
  }),
  'admin.vm.Resume': m(false, false, null, (ctx) => {
    throw err.notSuspended(ctx.dest.name);
  }),
};
