/** admin.vm.List, admin.vm.CurrentState, admin.vm.Remove, notes, vmclass and labels. */
import { err } from '../errors.js';
import { LABELS } from '../properties.js';
import type { VmState } from '../state.js';
import { KLASSES } from '../state.js';
import { callerIsAdmin, policyAllows } from './policy-filter.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

function line(vm: VmState): string {
  return `${vm.name} class=${vm.klass} state=${vm.power} uuid=${vm.uuid}\n`;
}

function vmList(ctx: CallContext): string {
  const all = ctx.dest.name === 'dom0' ? ctx.app.sorted() : [ctx.dest];
  const shown = callerIsAdmin(ctx) ? all : all.filter((vm) => policyAllows(ctx, 'admin.vm.List', '', vm.name));
  return shown.map(line).join('');
}

function currentState(ctx: CallContext): string {
  const vm = ctx.dest;
  const running = vm.power !== 'Halted';
  const mem = running ? Number(ctx.app.propValue(vm, 'memory') ?? 4096) * 1024 : 0;
  const maxmem = running ? Number(ctx.app.propValue(vm, 'maxmem') ?? 4000) * 1024 : 0;
  return `mem=${mem} mem_static_max=${maxmem} cputime=0 power_state=${vm.power}`;
}

export const vmMethods: MethodTable = {
  // qubesd also lists RemoteVM, a class the simulator has no qubes of
  'admin.vmclass.List': m(false, false, true, () => [...KLASSES, 'RemoteVM'].sort().map((k) => `${k}\n`).join('')),
  'admin.vm.List': m(false, false, null, vmList),
  'admin.vm.CurrentState': m(false, false, null, currentState),
  'admin.vm.Remove': m(false, false, null, async (ctx) => {
    await ctx.app.remove(ctx.dest);
    return null;
  }),
  'admin.vm.notes.Get': m(false, false, false, (ctx) => ctx.dest.notes),
  'admin.vm.notes.Set': m(false, true, false, (ctx) => {
    if (ctx.payload.length > 256000) {
      throw err.protocol(`Maximum note size is 256000 bytes (${ctx.payload.length} bytes received)`);
    }
    const text = new TextDecoder('utf-8', { fatal: true }).decode(ctx.payload);
    ctx.dest.notes = text.replace(/[^\t\n\P{C}]/gu, '_');
    ctx.app.save();
    return null;
  }),
  'admin.label.List': m(false, false, true, () => LABELS.map((l) => `${l.name}\n`).join('')),
  'admin.label.Get': m(true, false, true, (ctx) => {
    const l = LABELS.find((x) => x.name === ctx.arg);
    if (!l) throw err.labelNotFound(ctx.arg);
    return l.color;
  }),
  'admin.label.Index': m(true, false, true, (ctx) => {
    const l = LABELS.find((x) => x.name === ctx.arg);
    if (!l) throw err.labelNotFound(ctx.arg);
    return String(l.index);
  }),
};
