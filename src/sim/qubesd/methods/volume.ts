/** admin.vm.volume.* reads and clone, admin.pool.* reads. */
import { randomBytes } from 'node:crypto';
import { err, QubesError, SilentClose } from '../errors.js';
import { INSTALLED_KERNELS } from '../properties.js';
import type { VmState } from '../state.js';
import { keepOf, listRevisions, savesOnStop, snapsOnStart } from '../revisions.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

// in the order qubesd lists them: as a fresh store sets them up
const POOLS: Record<string, Record<string, string>> = {
  varlibqubes: { dir_path: '/var/lib/qubes', driver: 'file-reflink', ephemeral_volatile: 'False', name: 'varlibqubes', revisions_to_keep: '1' },
  'linux-kernel': { dir_path: '/var/lib/qubes/vm-kernels', driver: 'linux-kernel', name: 'linux-kernel' },
};
/** The storage drivers qubes-core-admin registers, with their parameters. */
const DRIVERS = [
  'callback conf_id',
  'file revisions_to_keep dir_path ephemeral_volatile',
  'file-reflink revisions_to_keep dir_path setup_check ephemeral_volatile',
  'linux-kernel dir_path',
  'lvm_thin revisions_to_keep volume_group thin_pool ephemeral_volatile',
  'zfs revisions_to_keep container ephemeral_volatile snap_on_start_forensics',
];
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
  const snapOnStart = snapsOnStart(vm, name);
  const saveOnStop = savesOnStop(vm, name);
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
    // as set, else the pool's figure (file-reflink volumes report it even where nothing is committed); the kernel pool keeps none
    ['revisions_to_keep', String(vm.volumes[name]?.revisions_to_keep ?? (kernel ? 0 : 1))],
    ['ephemeral', 'False'],
    // every driver here answers it; only a snapshot of a changed source is outdated
    ['is_outdated', 'False'],
  ];
  return rows.map(([k, v]) => `${k}=${v}\n`).join('');
}

/** The characters qubesd allows in a revision name. */
const REVISION_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.';

function vidOf(vm: VmState, volume: string): string {
  return `${dirOf(vm)}/${vm.name}/${volume}`;
}

/** qubesd's validate_number: ASCII digits, at most 19, no leading zero; a leading minus where allowed. */
function validateNumber(raw: string, name: string, allowNegative = false): number {
  const negative = allowNegative && raw.startsWith('-');
  if (negative) raw = raw.slice(1);
  if (!/^[0-9]+$/.test(raw)) throw err.protocol(`${name} contains non ASCII digits`);
  if (raw.length >= 20) throw err.protocol(`${name} is bigger than 19 decimal digits`);
  if (raw.startsWith('0') && raw !== '0') throw err.protocol(`${name} contains spurious leading zeros`);
  return negative ? -Number(raw) : Number(raw);
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
  'admin.vm.volume.ListSnapshots': m(true, false, null, (ctx) => listRevisions(ctx.dest.volumes[volumeArg(ctx)]).map((id) => `${id}\n`).join('')),
  'admin.vm.volume.Revert': m(true, true, null, async (ctx) => {
    const volume = volumeArg(ctx);
    for (const b of ctx.payload) if (b > 0x7f) throw new SilentClose('revision is not ASCII');
    const revision = ctx.payload.toString('latin1').trim();
    if (![...revision].every((c) => /[A-Za-z0-9:_.-]/.test(c))) throw err.permission('Revision name must be in safe set: ' + REVISION_CHARS);
    const vm = ctx.dest;
    // a KeyError without arguments: its text is empty
    if (!listRevisions(vm.volumes[volume]).includes(revision)) throw new QubesError('QubesVolumeRevisionNotFoundError', '');
    if (vm.power !== 'Halted' && savesOnStop(vm, volume)) throw err.storage(`Cannot revert: ${vidOf(vm, volume)} is not cleanly stopped`);
    await ctx.app.revertVolume(vm, volume, revision);
    ctx.app.save();
    return null;
  }),
  'admin.vm.volume.Set.revisions_to_keep': m(true, true, null, (ctx) => {
    const volume = volumeArg(ctx);
    const value = validateNumber(ctx.payload.toString('latin1'), 'Revisions to keep', true);
    const vm = ctx.dest;
    if (value < -1) throw err.value('Invalid value for revisions_to_keep');
    const current = keepOf(vm, volume);
    const toggling = value !== current && (current === -1 || value === -1);
    if (toggling && vm.power !== 'Halted') throw err.notHalted(vm.name);
    const vol = vm.volumes[volume];
    if (vol) vol.revisions_to_keep = value;
    ctx.app.save();
    return null;
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
    // the kernel pool's volumes do not implement resize: a NotImplementedError, no reply
    if (volume === 'kernel') throw new SilentClose('kernel volumes do not resize');
    // file-reflink resizes either way (shrinking is refused by the client, qvm-volume)
    vol.size = size;
    ctx.app.save();
    return null;
  }),
  'admin.pool.List': m(false, false, true, () => Object.keys(POOLS).map((p) => `${p}\n`).join('')),
  'admin.pool.ListDrivers': m(false, false, true, () => DRIVERS.map((d) => `${d}\n`).join('')),
  'admin.pool.Info': m(true, false, true, (ctx) => {
    const p = poolArg(ctx);
    const config = Object.entries(p)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}\n`)
      .join('');
    // the kernel pool has no figures of its own: it lives inside varlibqubes
    if (ctx.arg === 'linux-kernel') return `${config}included_in=varlibqubes\n`;
    return `${config}size=${POOL_SIZE}\nusage=${poolUsage(ctx, ctx.arg)}\n`;
  }),
  'admin.pool.UsageDetails': m(true, false, true, (ctx) => {
    poolArg(ctx);
    if (ctx.arg === 'linux-kernel') return '';
    return `data_size=${POOL_SIZE}\ndata_usage=${poolUsage(ctx, ctx.arg)}\n`;
  }),
  'admin.pool.volume.List': m(true, false, true, (ctx) => {
    poolArg(ctx);
    // the kernel pool's volumes are the installed kernels
    if (ctx.arg === 'linux-kernel') return INSTALLED_KERNELS.map((k) => `${k}\n`).join('');
    const out: string[] = [];
    // in the order the pool took them: as the qubes were created
    for (const vm of ctx.app.vms.values()) {
      for (const n of Object.keys(vm.volumes)) {
        if (n === 'kernel') continue;
        out.push(`${dirOf(vm)}/${vm.name}/${n}\n`);
      }
    }
    return out.join('');
  }),
};
