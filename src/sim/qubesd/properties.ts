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
  { name: 'appvm_default_bootmode', type: 'str', classes: ['TemplateVM'], def: () => 'default', help: 'Default bootmode for AppVMs based on this template' },
  { name: 'bootmode', type: 'str', classes: QUBE, def: () => 'default', help: 'Bootmode to use for this qube' },
  { name: 'devices_denied', type: 'str', classes: ALL, def: () => '', help: 'List of device interface codes that are denied for this qube' },
  {
    name: 'dns',
    type: 'str',
    classes: QUBE,
    readOnly: true,
    def: (vm, c) => (netvmOf(vm, c) !== null || c.vmProp(vm.name, 'provides_network') === true ? '10.139.1.1 10.139.1.2' : null),
    help: 'DNS servers set up for this domain.',
  },
  { name: 'gateway', type: 'str', classes: QUBE, readOnly: true, def: (vm, c) => gatewayOf(vm.name, c), help: 'Gateway for other domains that use this domain as netvm.' },
  { name: 'gateway6', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'Gateway (IPv6) for other domains that use this domain as netvm.' },
  { name: 'icon', type: 'str', classes: ALL, readOnly: true, def: vmIcon, help: 'freedesktop icon name, suitable for use in :py:meth:`PyQt4.QtGui.QIcon.fromTheme`' },
  { name: 'ip6', type: 'str', classes: QUBE, def: () => null, help: 'IPv6 address of this domain.' },
  { name: 'mac', type: 'str', classes: QUBE, def: () => '00:16:3e:5e:6c:00', help: 'MAC address of the NIC emulated inside VM' },
  { name: 'stubdom_mem', type: 'int', classes: QUBE, def: () => null, help: 'Memory amount allocated for the stubdom' },
  { name: 'stubdom_uuid', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'UUID of stub domain.' },
  {
    name: 'visible_gateway',
    type: 'str',
    classes: QUBE,
    readOnly: true,
    def: (vm, c) => c.vmFeature(vm.name, 'net.fake-gateway') ?? (netvmOf(vm, c) ? gatewayOf(netvmOf(vm, c) ?? '', c) : null),
    help: 'Default gateway of this domain as seen by the domain.',
  },
  { name: 'visible_gateway6', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'Default (IPv6) gateway of this domain as seen by the domain.' },
  { name: 'visible_ip', type: 'str', classes: QUBE, readOnly: true, def: (vm, c) => visibleIp(vm.name, c), help: 'IP address of this domain as seen by the domain.' },
  { name: 'visible_ip6', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'IPv6 address of this domain as seen by the domain.' },
  {
    name: 'visible_netmask',
    type: 'str',
    classes: QUBE,
    readOnly: true,
    def: (vm, c) => c.vmFeature(vm.name, 'net.fake-netmask') ?? (netvmOf(vm, c) ? '255.255.255.255' : null),
    help: 'Netmask as seen by the domain.',
  },
  { name: 'audiovm', type: 'vm', classes: QUBE, def: (_v, c) => c.globalProp('default_audiovm') ?? null, help: 'VM used for audio' },
  { name: 'auto_cleanup', type: 'bool', classes: ['DispVM'], def: () => false, help: 'automatically remove this VM upon shutdown' },
  { name: 'autostart', type: 'bool', classes: QUBE, def: () => false, help: 'Setting this to `True` means that VM should be autostarted on dom0 boot.' },
  { name: 'backup_timestamp', type: 'int', classes: QUBE, def: () => null, help: 'Time of last backup of the qube, in seconds since unix epoch' },
  { name: 'debug', type: 'bool', classes: QUBE, def: () => false, help: 'Turns on debugging features.' },
  {
    name: 'default_dispvm',
    type: 'vm',
    classes: ALL,
    def: (vm, c) => (vm.klass === 'DispVM' ? vm.template : (c.globalProp('default_dispvm') ?? null)),
    help: 'Default VM to be used as Disposable VM for service calls.',
  },
  { name: 'default_user', type: 'str', classes: QUBE, def: fromTemplate('default_user', 'user'), help: 'Default user to start applications as.' },
  { name: 'is_preload', type: 'bool', classes: ['DispVM'], readOnly: true, def: () => false, help: 'Whether this disposable was preloaded (never here).' },
  { name: 'dispid', type: 'int', classes: ['DispVM'], noDefaultFor: ['DispVM'], readOnly: true, def: (vm) => vm.dispid ?? undefined, help: 'Internal, persistent identifier of particular DispVM.' },
  { name: 'guivm', type: 'vm', classes: QUBE, def: (_v, c) => c.globalProp('default_guivm') ?? null, help: 'VM used for GUI' },
  {
    name: 'include_in_backups',
    type: 'bool',
    classes: ALL,
    def: (vm, c) => (vm.klass === 'DispVM' ? !c.vmProp(vm.name, 'auto_cleanup') : true),
    help: 'If this domain is to be included in default backup.',
  },
  { name: 'installed_by_rpm', type: 'bool', classes: QUBE, def: () => false, help: "If this domain's image was installed from package tracked by package manager." },
  { name: 'ip', type: 'str', classes: QUBE, def: ipFor, help: 'IP address of this domain.' },
  { name: 'kernel', type: 'str', classes: QUBE, def: (vm, c) => fromTemplate('kernel', c.globalProp('default_kernel') ?? null)(vm, c), help: 'Kernel used by this domain.' },
  {
    name: 'kernelopts',
    type: 'str',
    classes: QUBE,
    // no kernel, no options; else the template's, else qubesd's built-in ones (the kernel ships no default-kernelopts file here)
    def: (vm, c) => (c.vmProp(vm.name, 'kernel') ? fromTemplate('kernelopts', 'swiotlb=2048')(vm, c) : ''),
    help: 'Kernel command line passed to domain.' },
  { name: 'keyboard_layout', type: 'str', classes: ALL, def: () => 'us++', help: 'Keyboard layout for this VM' },
  { name: 'klass', type: 'str', classes: ALL, readOnly: true, def: (vm) => vm.klass, help: 'Class of the qube' },
  // dom0's label is set when Qubes is installed; 'black' stands for that in a state without it
  { name: 'label', type: 'label', classes: ALL, noDefaultFor: ALL, def: (vm) => (vm.klass === 'AdminVM' ? 'black' : undefined), help: 'Colourful label assigned to VM. This is where the colour of the padlock is set.' },
  { name: 'management_dispvm', type: 'vm', classes: QUBE, def: (_v, c) => c.globalProp('management_dispvm') ?? null, help: 'Default DVM template for Disposable VM for managing this VM.' },
  { name: 'maxmem', type: 'int', classes: QUBE, def: fromTemplate('maxmem', 4000), help: 'Maximum amount of memory available for this VM (for the purpose of the memory balancer).' },
  // dom0's is the host's, and read-only
  { name: 'maxmem', type: 'int', classes: ['AdminVM'], readOnly: true, def: () => hostMemoryMiB(), help: 'Maximum amount of memory available for this VM (for the purpose of the memory balancer).' },
  { name: 'memory', type: 'int', classes: QUBE, def: fromTemplate('memory', 400), help: 'Memory currently available for this VM.' },
  { name: 'name', type: 'str', classes: ALL, noDefaultFor: QUBE, readOnly: true, def: (vm) => vm.name, help: 'User-specified name of the domain.' },
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
    help: 'VM that provides network connection to this domain. When `None`, machine is disconnected.',
  },
  { name: 'provides_network', type: 'bool', classes: QUBE, def: () => false, help: 'If this domain can act as network provider (formerly known as NetVM or ProxyVM)' },
  { name: 'qid', type: 'int', classes: ALL, noDefaultFor: QUBE, readOnly: true, def: (vm) => vm.qid, help: 'Internal, persistent identificator of particular domain.' },
  { name: 'qrexec_timeout', type: 'int', classes: QUBE, def: (_v, c) => c.globalProp('default_qrexec_timeout') ?? 60, help: 'Time in seconds after which qrexec connection attempt is deemed failed.' },
  { name: 'shutdown_timeout', type: 'int', classes: QUBE, def: (_v, c) => c.globalProp('default_shutdown_timeout') ?? 60, help: 'Time in seconds for shutdown of the VM, after which VM may be forcefully powered off.' },
  { name: 'start_time', type: 'str', classes: QUBE, readOnly: true, def: () => null, help: 'Tells when machine was started.' },
  { name: 'stubdom_xid', type: 'int', classes: QUBE, readOnly: true, def: () => -1, help: 'Xen ID of stub domain.' },
  { name: 'template', type: 'vm', classes: ['AppVM', 'DispVM'], noDefaultFor: ['AppVM', 'DispVM'], def: () => undefined, help: 'Template, on which this AppVM is based.' },
  { name: 'template_for_dispvms', type: 'bool', classes: ['AppVM', 'StandaloneVM'], def: () => false, help: 'Should this VM be allowed to start as Disposable VM' },
  { name: 'updateable', type: 'bool', classes: ALL, readOnly: true, def: (vm) => vm.klass === 'TemplateVM' || vm.klass === 'StandaloneVM' || vm.klass === 'AdminVM', help: 'True if this machine may be updated on its own.' },
  { name: 'uuid', type: 'str', classes: ALL, noDefaultFor: QUBE, readOnly: true, def: (vm) => vm.uuid, help: 'UUID from libvirt.' },
  { name: 'vcpus', type: 'int', classes: QUBE, def: fromTemplate('vcpus', 2), help: 'Number of virtual CPUs for a qube' },
  { name: 'virt_mode', type: 'str', classes: QUBE, def: () => 'pvh', help: 'Virtualisation mode: full virtualisation ("HVM"), or paravirtualisation ("PV"), or hybrid ("PVH").' },
  { name: 'xid', type: 'int', classes: QUBE, readOnly: true, def: () => -1, help: 'Xen ID.' },
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
  { name: 'check_updates_vm', type: 'bool', def: () => true, help: 'Check for updates inside qubes' },
  { name: 'clockvm', type: 'vm', def: () => null, help: 'Which VM to use as NTP proxy for updating AdminVM' },
  { name: 'default_audiovm', type: 'vm', def: () => 'dom0', help: 'Default AudioVM for VMs.' },
  { name: 'default_dispvm', type: 'vm', def: () => null, help: 'Default DispVM base for service calls' },
  { name: 'default_guivm', type: 'vm', def: () => 'dom0', help: 'Default GuiVM for VMs.' },
  { name: 'default_kernel', type: 'str', noDefault: true, def: () => INSTALLED_KERNELS[0] ?? null, help: 'Which kernel to use when not overriden in VM' },
  { name: 'default_netvm', type: 'vm', def: () => null, help: 'Default NetVM for AppVMs.' },
  { name: 'default_pool', type: 'str', def: () => 'varlibqubes', help: 'Default storage pool' },
  // a fresh store sets it to linux-kernel explicitly; its default is the default pool
  { name: 'default_pool_kernel', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'Default storage pool for kernel volumes' },
  { name: 'default_pool_private', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'Default storage pool for private volumes' },
  { name: 'default_pool_root', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'Default storage pool for root volumes' },
  { name: 'default_pool_volatile', type: 'str', def: (_v, c) => c.globalProp('default_pool') ?? 'varlibqubes', help: 'Default storage pool for volatile volumes' },
  { name: 'default_qrexec_timeout', type: 'int', def: () => 60, help: 'Default time in seconds after which qrexec connection attempt is deemed failed' },
  { name: 'default_shutdown_timeout', type: 'int', def: () => 60, help: 'Default time in seconds for VM shutdown to complete' },
  { name: 'default_template', type: 'vm', noDefault: true, def: () => null, help: 'Default template for new AppVMs' },
  { name: 'management_dispvm', type: 'vm', def: () => null, help: 'Default DVM template for Disposable VM for managing other VMs.' },
  { name: 'maxmem', type: 'int', readOnly: true, def: () => hostMemoryMiB(), help: 'Total memory of the host, in MiB' },
  { name: 'no_cpus', type: 'int', readOnly: true, def: () => cpus().length, help: 'Number of CPUs of the host' },
  { name: 'stats_interval', type: 'int', def: () => 3, help: 'Interval in seconds for VM stats reporting (memory, CPU usage)' },
  { name: 'updatevm', type: 'vm', def: () => null, help: 'Which VM to use as `yum` proxy for updating AdminVM and TemplateVMs' },
];

export const globalPropDefs: ReadonlyMap<string, PropDef> = new Map(GLOBAL_DEFS.map((d) => [d.name, d]));

/** Python's str() of a value as qubesd renders it; None is ''. */
export function renderValue(v: PropValue): string {
  if (v === null) return '';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
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
