/** admin.vm.volume.* reads and clone, admin.pool.* reads. */
import { randomBytes } from 'node:crypto';
import { err, QubesError } from '../errors.js';
import type { VmState } from '../state.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

// in the order qubesd lists them: as a fresh store sets them up
const POOLS: Record<string, Record<string, string>> = {
  varlibqubes: { dir_path: '/var/lib/qubes', driver: 'file-reflink', name: 'varlibqubes', revisions_to_keep: '1' },
  'linux-kernel': { dir_path: '/var/lib/qubes/vm-kernels', driver: 'linux-kernel', name: 'linux-kernel' },
};
const POOL_SIZE = 512 * 1024 ** 3;

/** Tokens from CloneFrom waiting for their CloneTo; they do not survive a restart, as in qubesd. */
const pendingClones = new Map<string, { vm: VmState; volume: string }>();

function dirOf(vm: VmState): string {
  return vm.klass === 'TemplateVM' ? 'vm-templates' : vm.klass === 'DispVM' ? 'appvms' : 'appvms';
}

function volumeArg(ctx: CallContext): string {
  if (!(ctx.arg in ctx.dest.volumes)) throw err.permission(`Argument not in '${ctx.dest.name} volumes'`);
  return ctx.arg;
}

function volumeInfo(ctx: CallContext, vm: VmState, name: string): string {
  const vol = vm.volumes[name] ?? { size: 0, usage: 0 };
  const template = ctx.app.propValue(vm, 'template');
  const tpl = typeof template === 'string' ? ctx.app.get(template) : undefined;
  const snapOnStart =
    (name === 'root' && (vm.klass === 'AppVM' || vm.klass === 'DispVM')) || (name === 'private' && vm.klass === 'DispVM');
  const saveOnStop = (name === 'private' && vm.klass !== 'DispVM') || (name === 'root' && (vm.klass === 'TemplateVM' || vm.klass === 'StandaloneVM'));
  const kernel = name === 'kernel';
  const pool = kernel ? 'linux-kernel' : 'varlibqubes';
  const kernelVersion = String(ctx.app.propValue(vm, 'kernel') ?? '');
  const vid = kernel ? kernelVersion : `${dirOf(vm)}/${vm.name}/${name}`;
  const source = snapOnStart && tpl ? `${dirOf(tpl)}/${tpl.name}/${name}` : '';
  const path = kernel ? `/var/lib/qubes/vm-kernels/${kernelVersion}` : `/var/lib/qubes/${vid}.img`;
  const rows: [string, string][] = [
    ['pool', pool],
    ['vid', vid],
    ['size', String(vol.size)],
    ['usage', String(vol.usage)],
    ['rw', kernel ? 'False' : 'True'],
    ['source', source],
    ['path', path],
    ['save_on_stop', saveOnStop ? 'True' : 'False'],
    ['snap_on_start', snapOnStart ? 'True' : 'False'],
    // a snapshot of its template's volume keeps no revisions
    ['revisions_to_keep', kernel || snapOnStart || name === 'volatile' ? '0' : '1'],
    ['ephemeral', 'False'],
    // every driver here answers it; only a snapshot of a changed source is outdated
    ['is_outdated', 'False'],
  ];
  return rows.map(([k, v]) => `${k}=${v}\n`).join('');
}

/** qubesd's validate_number: ASCII digits, at most 19, no leading zero. */
function validateNumber(raw: string, name: string): number {
  if (!/^[0-9]+$/.test(raw)) throw err.protocol(`${name} contains non ASCII digits`);
  if (raw.length >= 20) throw err.protocol(`${name} is bigger than 19 decimal digits`);
  if (raw.startsWith('0') && raw !== '0') throw err.protocol(`${name} contains spurious leading zeros`);
  return Number(raw);
}

function poolArg(ctx: CallContext): Record<string, string> {
  const p = POOLS[ctx.arg];
  if (!p) throw err.permission("Argument not in 'pools'");
  return p;
}

function poolUsage(ctx: CallContext, pool: string): number {
  let used = 0;
  for (const vm of ctx.app.vms.values()) {
    for (const [n, v] of Object.entries(vm.volumes)) if ((n === 'kernel') === (pool === 'linux-kernel')) used += v.usage;
  }
  return used;
}

export const volumeMethods: MethodTable = {
  'admin.vm.volume.List': m(false, false, null, (ctx) => Object.keys(ctx.dest.volumes).map((v) => `${v}\n`).join('')),
  'admin.vm.volume.Info': m(true, false, null, (ctx) => volumeInfo(ctx, ctx.dest, volumeArg(ctx))),
  'admin.vm.volume.ListSnapshots': m(true, false, null, (ctx) => {
    volumeArg(ctx);
    return '';
  }),
  'admin.vm.volume.CloneFrom': m(true, false, null, (ctx) => {
    const volume = volumeArg(ctx);
    const token = randomBytes(24).toString('base64url').slice(0, 32);
    pendingClones.set(token, { vm: ctx.dest, volume });
    return token;
  }),
  'admin.vm.volume.CloneTo': m(true, true, null, async (ctx) => {
    const volume = volumeArg(ctx);
    for (const b of ctx.payload) if (b > 0x7f) throw err.protocol('Token contains non-ASCII characters');
    const token = ctx.payload.toString('latin1').trim();
    const src = pendingClones.get(token);
    // a KeyError too: its text comes quoted
    if (!src) throw new QubesError('QubesVolumeCopyTokenNotFoundError', "'Token to clone volume of qube was not found'");
    pendingClones.delete(token);
    if (ctx.app.get(src.vm.name) !== src.vm) throw new QubesError('QubesVolumeNotFoundError', 'Volume not found');
    const from = src.vm.volumes[src.volume];
    const to = ctx.dest.volumes[volume];
    if (from && to) {
      to.size = Math.max(to.size, from.size);
      to.usage = from.usage;
    }
    ctx.app.save();
    await ctx.app.volumeCloned(src.vm.name, ctx.dest.name, volume);
    return null;
  }),
  'admin.vm.volume.Resize': m(true, true, null, (ctx) => {
    const volume = volumeArg(ctx);
    const size = validateNumber(ctx.payload.toString('latin1').trim(), 'Volume size');
    const vol = ctx.dest.volumes[volume];
    if (!vol) return null;
    if (size < vol.size) throw new QubesError('QubesValueError', `For your own safety, shrinking of ${volume} is disabled (${size} < ${vol.size}). If you really know what you are doing, use \`truncate\` on ${volume} manually.`);
    vol.size = size;
    ctx.app.save();
    return null;
  }),
  'admin.pool.List': m(false, false, true, () => Object.keys(POOLS).map((p) => `${p}\n`).join('')),
  'admin.pool.ListDrivers': m(false, false, true, () => 'file-reflink dir_path revisions_to_keep ephemeral_volatile\nlinux-kernel dir_path\n'),
  'admin.pool.Info': m(true, false, true, (ctx) => {
    const p = poolArg(ctx);
    const config = Object.entries(p)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}\n`)
      .join('');
    return `${config}size=${POOL_SIZE}\nusage=${poolUsage(ctx, ctx.arg)}\n`;
  }),
  'admin.pool.UsageDetails': m(true, false, true, (ctx) => {
    poolArg(ctx);
    return `data_size=${POOL_SIZE}\ndata_usage=${poolUsage(ctx, ctx.arg)}\n`;
  }),
  'admin.pool.volume.List': m(true, false, true, (ctx) => {
    poolArg(ctx);
    const out: string[] = [];
    for (const vm of ctx.app.sorted()) {
      for (const n of Object.keys(vm.volumes)) {
        if ((n === 'kernel') !== (ctx.arg === 'linux-kernel') || n === 'kernel') continue;
        out.push(`${dirOf(vm)}/${vm.name}/${n}\n`);
      }
    }
    return out.join('');
  }),
};
