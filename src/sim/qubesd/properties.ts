/** Qubes' qube and global properties: types, flags and (computed) defaults. */
import { cpus, totalmem } from 'node:os';
import type { Klass, PropValue } from './state.js';

function hostMemoryMiB(): number {
  return Math.floor(totalmem() / 1024 / 1024);
}

export type PropType = 'str' | 'int' | 'bool' | 'vm' | 'label';

/** What a default is computed from. */
export interface PropContext {
  /** A property of a qube by name (its effective value), or undefined when the qube does not exist. */
  vmProp(vm: string, prop: string): PropValue | undefined;
  globalProp(prop: string): PropValue | undefined;
  vmExists(name: string): boolean;
  vmKlass(name: string): Klass | undefined;
  vmFeature(name: string, feature: string): string | undefined;
}

/** The qube whose defaults are being computed. */
export interface PropSubject {
  readonly name: string;
  readonly klass: Klass;
  readonly qid: number;
  readonly uuid: string;
  readonly dispid?: number;
  /** Explicit template (AppVM, DispVM), if any. */
  readonly template: string | null;
}

export interface PropDef {
  readonly name: string;
  readonly type: PropType;
  readonly readOnly?: boolean;
  /** Undefined means no default: reading it fails as Python's AttributeError. */
  readonly def: (vm: PropSubject, ctx: PropContext) => PropValue | undefined;
  /**
   * Qubes declares no default: GetDefault answers nothing, and a value the
   * qube has was set explicitly. `def` then only stands for that value.
   */
  readonly noDefault?: boolean;
  readonly help: string;
}

const QUBE: readonly Klass[] = ['AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'];
const ALL: readonly Klass[] = ['AdminVM', ...QUBE];

interface ClassedDef extends PropDef {
  readonly classes: readonly Klass[];
  /** The classes for which Qubes declares no default (AdminVM gives dom0's identity one). */
  readonly noDefaultFor?: readonly Klass[];
}

function fromTemplate(prop: string, fallback: PropValue) {
  return (vm: PropSubject, ctx: PropContext): PropValue => {
    if (vm.template) {
      const v = ctx.vmProp(vm.template, prop);
      if (v !== undefined) return v;
    }
    return fallback;
  };
}

function ipFor(vm: PropSubject, ctx: PropContext): PropValue {
  // Qubes' is_networked(): a network provider, or a qube with a netvm
  if (ctx.vmProp(vm.name, 'provides_network') !== true && ctx.vmProp(vm.name, 'netvm') === null) return null;
  if (vm.klass === 'DispVM' && vm.dispid !== undefined) {
    return `10.138.${(vm.dispid >> 8) & 0xff}.${vm.dispid & 0xff}`;
  }
  return `10.137.${(vm.qid >> 8) & 0xff}.${vm.qid & 0xff}`;
}

function netvmOf(vm: PropSubject, ctx: PropContext): string | null {
  const n = ctx.vmProp(vm.name, 'netvm');
  return typeof n === 'string' ? n : null;
}

function visibleIp(name: string, ctx: PropContext): PropValue {
  const fake = ctx.vmFeature(name, 'net.fake-ip');
  return fake ?? ctx.vmProp(name, 'ip') ?? null;
}

/** What a network provider offers as gateway to its clients. */
function gatewayOf(name: string, ctx: PropContext): PropValue {
  return ctx.vmProp(name, 'provides_network') === true ? visibleIp(name, ctx) : null;
}

function vmIcon(vm: PropSubject, ctx: PropContext): string {
  if (vm.klass === 'AdminVM') return 'adminvm-black';
  const label = String(ctx.vmProp(vm.name, 'label') ?? 'red');
  if (vm.klass === 'TemplateVM') return `templatevm-${label}`;
  // AppVM's own icon: a disposable template shows as a template
  if (vm.klass === 'AppVM' && ctx.vmProp(vm.name, 'template_for_dispvms') === true) return `templatevm-${label}`;
  if (ctx.vmFeature(vm.name, 'servicevm')) return `servicevm-${label}`;
  if (vm.klass === 'DispVM') return `dispvm-${label}`;
  if (vm.klass === 'StandaloneVM') return `standalonevm-${label}`;
  return `appvm-${label}`;
}

const DEFS: readonly ClassedDef[] = [
  { name: 'appvm_default_bootmode', type: 'str', classes: ['TemplateVM'], def: () => 'default', help: 'The boot mode that qubes based on this template start in by default' },
  { name: 'bootmode', type: 'str', classes: QUBE, def: () => 'default', help: 'The boot mode this qube starts in' },
  { name: 'devices_denied', type: 'str', classes: ALL, def: () => '', help: 'Device interface codes this qube may not be given' },
  {
    name: 'dns',
    type: 'str',
    classes: QUBE,
    readOnly: true,
    def: (vm, c) => (netvmOf(vm, c) !== null || c.vmProp(vm.name, 'provides_network') === true ? '10.139.1.1 10.139.1.2' : null),
    help: 'The DNS servers this qube is told to use.',
  },
  { name: 'gateway', type: 'str', classes: QUBE, readOnly: true, def: (vm, c) => gatewayOf(vm.name, c), help: 'The gateway address this qube offers to the qubes it gives network to.' },
  { name: 'gateway6', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'The IPv6 gateway address this qube offers to the qubes it gives network to.' },
  { name: 'icon', type: 'str', classes: ALL, readOnly: true, def: vmIcon, help: 'The name of the icon theme entry that stands for this qube' },
  { name: 'ip6', type: 'str', classes: QUBE, def: () => null, help: "The qube's IPv6 address." },
  { name: 'mac', type: 'str', classes: QUBE, def: () => '00:16:3e:5e:6c:00', help: "The MAC address of the qube's virtual network card" },
  { name: 'stubdom_mem', type: 'int', classes: QUBE, def: () => null, help: "Memory given to the qube's stub domain" },
  { name: 'stubdom_uuid', type: 'str', classes: QUBE, readOnly: true, def: () => '', help: "The UUID of the qube's stub domain." },
  {
    name: 'visible_gateway',
    type: 'str',
    classes: QUBE,
    readOnly: true,
    def: (vm, c) => c.vmFeature(vm.name, 'net.fake-gateway') ?? (netvmOf(vm, c) ? gatewayOf(netvmOf(vm, c) ?? '', c) : null),
    help: 'The gateway the qube itself sees.',
  },
  { name: 'visible_gateway6', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'The IPv6 gateway the qube itself sees.' },
  { name: 'visible_ip', type: 'str', classes: QUBE, readOnly: true, def: (vm, c) => visibleIp(vm.name, c), help: 'The IP address the qube itself sees.' },
  { name: 'visible_ip6', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'The IPv6 address the qube itself sees.' },
  {
    name: 'visible_netmask',
    type: 'str',
    classes: QUBE,
    readOnly: true,
    // the netvm's netmask: only a networked netvm has one (is_networked)
    def: (vm, c) => {
      const n = netvmOf(vm, c);
      const networked = n !== null && (c.vmProp(n, 'provides_network') === true || typeof c.vmProp(n, 'netvm') === 'string');
      return c.vmFeature(vm.name, 'net.fake-netmask') ?? (networked ? '255.255.255.255' : null);
    },
    help: 'The netmask the qube itself sees.',
  },
  { name: 'audiovm', type: 'vm', classes: QUBE, def: (_v, c) => c.globalProp('default_audiovm') ?? null, help: "The qube that plays and records this qube's sound" },
  { name: 'auto_cleanup', type: 'bool', classes: ['DispVM'], def: () => false, help: 'whether the qube is removed when it shuts down' },
  { name: 'autostart', type: 'bool', classes: QUBE, def: () => false, help: 'Whether the qube starts when dom0 boots.' },
  { name: 'backup_timestamp', type: 'int', classes: QUBE, def: () => null, help: 'When the qube was last backed up, in seconds since 1970' },
  { name: 'debug', type: 'bool', classes: QUBE, def: () => false, help: 'Whether the qube starts with debugging aids on.' },
  {
    name: 'default_dispvm',
    type: 'vm',
    classes: ALL,
    def: (vm, c) => (vm.klass === 'DispVM' ? vm.template : (c.globalProp('default_dispvm') ?? null)),
    help: 'The disposable template used when a call from this qube asks for a disposable.',
  },
  { name: 'default_user', type: 'str', classes: QUBE, def: fromTemplate('default_user', 'user'), help: 'The user that commands and applications run as by default.' },
  { name: 'is_preload', type: 'bool', classes: ['DispVM'], readOnly: true, def: () => false, help: 'Whether this disposable was preloaded (never here).' },
  { name: 'dispid', type: 'int', classes: ['DispVM'], noDefaultFor: ['DispVM'], readOnly: true, def: (vm) => vm.dispid ?? undefined, help: 'The number that identifies this disposable.' },
  { name: 'guivm', type: 'vm', classes: QUBE, def: (_v, c) => c.globalProp('default_guivm') ?? null, help: "The qube that shows this qube's windows" },
  {
    name: 'include_in_backups',
    type: 'bool',
    classes: ALL,
    def: (vm, c) => (vm.klass === 'DispVM' ? !c.vmProp(vm.name, 'auto_cleanup') : true),
    help: 'Whether a default backup includes the qube.',
  },
  { name: 'installed_by_rpm', type: 'bool', classes: QUBE, def: () => false, help: "Whether the qube's image came from a package the package manager tracks." },
  { name: 'ip', type: 'str', classes: QUBE, def: ipFor, help: "The qube's IP address." },
  { name: 'kernel', type: 'str', classes: QUBE, def: (vm, c) => fromTemplate('kernel', c.globalProp('default_kernel') ?? null)(vm, c), help: 'The kernel the qube boots.' },
  {
    name: 'kernelopts',
    type: 'str',
    classes: QUBE,
    // no kernel, no options; else the template's, else qubesd's built-in ones (the kernel ships no default-kernelopts file here)
    def: (vm, c) => (c.vmProp(vm.name, 'kernel') ? fromTemplate('kernelopts', 'swiotlb=2048')(vm, c) : ''),
    help: "Options on the kernel's command line." },
  { name: 'keyboard_layout', type: 'str', classes: ALL, def: () => 'us++', help: 'The keyboard layout the qube uses' },
  { name: 'klass', type: 'str', classes: ALL, readOnly: true, def: (vm) => vm.klass, help: "The qube's class" },
  // dom0's label is set when Qubes is installed; 'black' stands for that in a state without it
  { name: 'label', type: 'label', classes: ALL, noDefaultFor: ALL, def: (vm) => (vm.klass === 'AdminVM' ? 'black' : undefined), help: "The label whose colour marks the qube's windows." },
  { name: 'management_dispvm', type: 'vm', classes: QUBE, def: (_v, c) => c.globalProp('management_dispvm') ?? null, help: 'The disposable template used to manage this qube.' },
  { name: 'maxmem', type: 'int', classes: QUBE, def: fromTemplate('maxmem', 4000), help: 'The most memory the balancer may give the qube.' },
  // dom0's is the host's, and read-only
  { name: 'maxmem', type: 'int', classes: ['AdminVM'], readOnly: true, def: () => hostMemoryMiB(), help: 'The most memory the balancer may give the qube.' },
  { name: 'memory', type: 'int', classes: QUBE, def: fromTemplate('memory', 400), help: 'The memory the qube starts with.' },
  { name: 'name', type: 'str', classes: ALL, noDefaultFor: QUBE, readOnly: true, def: (vm) => vm.name, help: "The qube's name." },
  {
    name: 'netvm',
    type: 'vm',
    classes: QUBE,
    def: (vm, c) => {
      if (vm.klass === 'TemplateVM') return null;
      if (vm.klass === 'DispVM' && vm.template) return c.vmProp(vm.template, 'netvm') ?? null;
      const d = c.globalProp('default_netvm') ?? null;
      return d === vm.name ? null : d;
    },
    help: 'The qube that gives this one its network; none means no network.',
  },
  { name: 'provides_network', type: 'bool', classes: QUBE, def: () => false, help: 'Whether the qube can give network to other qubes' },
  { name: 'qid', type: 'int', classes: ALL, noDefaultFor: QUBE, readOnly: true, def: (vm) => vm.qid, help: 'The number that identifies the qube.' },
  { name: 'qrexec_timeout', type: 'int', classes: QUBE, def: (_v, c) => c.globalProp('default_qrexec_timeout') ?? 60, help: 'Seconds a qrexec connection to the qube may take before it counts as failed.' },
  { name: 'shutdown_timeout', type: 'int', classes: QUBE, def: (_v, c) => c.globalProp('default_shutdown_timeout') ?? 60, help: 'Seconds a shutdown may take before the qube may be powered off.' },
  { name: 'start_time', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'When the qube started.' },
  { name: 'stubdom_xid', type: 'int', classes: QUBE, readOnly: true, def: () => -1, help: "The Xen domain ID of the qube's stub domain." },
  { name: 'template', type: 'vm', classes: ['AppVM', 'DispVM'], noDefaultFor: ['AppVM', 'DispVM'], def: () => undefined, help: 'The template the qube is based on.' },
  { name: 'template_for_dispvms', type: 'bool', classes: ['AppVM', 'StandaloneVM'], def: () => false, help: 'Whether disposables may be made from this qube' },
  { name: 'updateable', type: 'bool', classes: ALL, readOnly: true, def: (vm) => vm.klass === 'TemplateVM' || vm.klass === 'StandaloneVM' || vm.klass === 'AdminVM', help: 'Whether the qube keeps its own root filesystem and can be updated by itself.' },
  { name: 'uuid', type: 'str', classes: ALL, noDefaultFor: QUBE, readOnly: true, def: (vm) => vm.uuid, help: "The qube's UUID." },
  { name: 'vcpus', type: 'int', classes: QUBE, def: fromTemplate('vcpus', 2), help: 'How many virtual CPUs the qube gets' },
  { name: 'virt_mode', type: 'str', classes: QUBE, def: () => 'pvh', help: 'How the qube is virtualised: HVM, PV or PVH.' },
  { name: 'xid', type: 'int', classes: QUBE, readOnly: true, def: () => -1, help: "The qube's Xen domain ID." },
];

function forClass(d: ClassedDef, k: Klass): PropDef {
  const { classes: _c, noDefaultFor, ...def } = d;
  return noDefaultFor?.includes(k) ? { ...def, noDefault: true } : def;
}

const BY_CLASS = new Map<Klass, ReadonlyMap<string, PropDef>>(
  ALL.map((k) => [k, new Map(DEFS.filter((d) => d.classes.includes(k)).map((d) => [d.name, forClass(d, k)]))]),
);

export function vmPropDefs(klass: Klass): ReadonlyMap<string, PropDef> {
  return BY_CLASS.get(klass) ?? new Map();
}

const GLOBAL_DEFS: readonly PropDef[] = [
  { name: 'check_updates_vm', type: 'bool', def: () => true, help: 'Whether qubes look for updates themselves' },
  { name: 'clockvm', type: 'vm', def: () => null, help: 'The qube dom0 takes the time from' },
  { name: 'default_audiovm', type: 'vm', def: () => 'dom0', help: 'The audio qube new qubes get.' },
  { name: 'default_dispvm', type: 'vm', def: () => null, help: 'The disposable template calls use unless a qube names its own' },
  { name: 'default_guivm', type: 'vm', def: () => 'dom0', help: 'The GUI qube new qubes get.' },
  { name: 'default_kernel', type: 'str', noDefault: true, def: () => INSTALLED_KERNELS[0] ?? null, help: 'The kernel qubes boot unless they name one' },
  { name: 'default_netvm', type: 'vm', def: () => null, help: 'The network qube new qubes get.' },
  { name: 'default_pool', type: 'str', def: () => 'varlibqubes', help: 'The pool new volumes go to' },
  // a fresh store sets it to linux-kernel explicitly; its default is the default pool
  { name: 'default_pool_kernel', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'The pool kernel volumes go to' },
  { name: 'default_pool_private', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'The pool private volumes go to' },
  { name: 'default_pool_root', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'The pool root volumes go to' },
  { name: 'default_pool_volatile', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'The pool volatile volumes go to' },
  { name: 'default_qrexec_timeout', type: 'int', def: () => 60, help: 'Seconds a qrexec connection may take before it counts as failed, unless a qube sets its own' },
  { name: 'default_shutdown_timeout', type: 'int', def: () => 60, help: 'Seconds a shutdown may take, unless a qube sets its own' },
  { name: 'default_template', type: 'vm', noDefault: true, def: () => null, help: 'The template new qubes are based on' },
  { name: 'management_dispvm', type: 'vm', def: () => null, help: 'The disposable template used to manage qubes that name none.' },
  { name: 'maxmem', type: 'int', readOnly: true, def: () => hostMemoryMiB(), help: "The host's memory, in MiB" },
  { name: 'no_cpus', type: 'int', readOnly: true, def: () => cpus().length, help: 'How many CPUs the host has' },
  { name: 'stats_interval', type: 'int', def: () => 3, help: "Seconds between reports of the qubes' memory and CPU use" },
  { name: 'updatevm', type: 'vm', def: () => null, help: 'The qube that fetches updates for dom0 and the templates' },
];

export const globalPropDefs: ReadonlyMap<string, PropDef> = new Map(GLOBAL_DEFS.map((d) => [d.name, d]));

/** Python's str() of a value as qubesd renders it; None is ''. */
export function renderValue(v: PropValue): string {
  if (v === null) return '';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

/** Qube properties qubesd loads last (references to qubes and what depends on the template); it lists them after the rest. */
const LATE_LOADED = new Set(['appvm_default_bootmode', 'bootmode', 'kernelopts']);

/** qubesd's listing order: a qube's properties by load stage, then name; the global ones by name. */
export function listed(defs: Iterable<PropDef>, byStage: boolean): PropDef[] {
  const stage = (d: PropDef): number => (byStage && (d.type === 'vm' || LATE_LOADED.has(d.name)) ? 1 : 0);
  return [...defs].sort((a, b) => stage(a) - stage(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The kernels installed in dom0's vm-kernels directory. */
export const INSTALLED_KERNELS: readonly string[] = ['6.6.63-1.fc37'];

/** The storage pools a fresh Qubes install has. */
export const POOL_NAMES: readonly string[] = ['varlibqubes', 'linux-kernel'];

export const LABELS: readonly { index: number; name: string; color: string }[] = [
  { index: 1, name: 'red', color: '0xcc0000' },
  { index: 2, name: 'orange', color: '0xf57900' },
  { index: 3, name: 'yellow', color: '0xedd400' },
  { index: 4, name: 'green', color: '0x73d216' },
  { index: 5, name: 'gray', color: '0x555555' },
  { index: 6, name: 'blue', color: '0x3465a4' },
  { index: 7, name: 'purple', color: '0x75507b' },
  { index: 8, name: 'black', color: '0x000000' },
];
