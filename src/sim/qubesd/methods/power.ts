/** admin.vm.Start, Shutdown, Kill, Pause, Unpause, Suspend, Resume. */
import type { VmState } from '../state.js';
import { SilentClose, err } from '../errors.js';
import type { MethodTable } from './types.js';
import { m } from './types.js';

/**
 * dom0 is qubesd's AdminVM (qubes/vm/adminvm.py). Its start, kill and suspend
 * raise about the "Dom0 fake domain" (in SimApp, and below for suspend). Its
 * shutdown takes no force or wait, which the API always passes, and it has no
 * pause, unpause or resume: qubesd's TypeError or AttributeError closes the
 * connection with no reply.
 */
function apiQuirkOnDom0(vm: VmState, call: 'shutdown' | 'pause' | 'unpause' | 'suspend' | 'resume'): void {
  if (vm.klass !== 'AdminVM') return;
  if (call === 'suspend') throw err.vm('Cannot suspend Dom0 fake domain!');
  throw new SilentClose(`AdminVM has no ${call} the API can call`);
}

export const powerMethods: MethodTable = {
  'admin.vm.Start': m(false, false, null, async (ctx) => {
    await ctx.app.start(ctx.dest);
    return null;
  }),
  'admin.vm.Shutdown': m(null, false, null, async (ctx) => {
    const args = ctx.arg ? ctx.arg.split('+') : [];
    if (!args.every((a) => a === 'force' || a === 'wait')) throw err.protocol('Argument must match: force, wait');
    apiQuirkOnDom0(ctx.dest, 'shutdown');
    await ctx.app.shutdown(ctx.dest, args.includes('force'));
    return null;
  }),
  'admin.vm.Kill': m(false, false, null, async (ctx) => {
    await ctx.app.kill(ctx.dest);
    return null;
  }),
  'admin.vm.Pause': m(false, false, null, (ctx) => {
    apiQuirkOnDom0(ctx.dest, 'pause');
    ctx.app.pause(ctx.dest);
    return null;
  }),
  'admin.vm.Unpause': m(false, false, null, (ctx) => {
    apiQuirkOnDom0(ctx.dest, 'unpause');
    ctx.app.unpause(ctx.dest);
    return null;
  }),
  'admin.vm.Suspend': m(false, false, null, (ctx) => {
    apiQuirkOnDom0(ctx.dest, 'suspend');
    throw err.notRunning(ctx.dest.name);
  }),
  // nothing is ever suspended here: qubesd's resume of a qube not suspended is an unpause
  'admin.vm.Resume': m(false, false, null, (ctx) => {
    apiQuirkOnDom0(ctx.dest, 'resume');
    ctx.app.unpause(ctx.dest);
    return null;
  }),
};
