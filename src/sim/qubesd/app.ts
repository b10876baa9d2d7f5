/**
 * The simulated Qubes host: qubes, global properties, power states and the
 * events they fire, kept in one state file. Property values, power and
 * disposables are parts of their own; SimApp holds the collection and its
 * events, and composes them.
 */
import { randomUUID } from 'node:crypto';
import type { EventKwargs } from '../../shared/adminapi/wire.js';
import type { SystemInfo } from '../../shared/policy/index.js';
import { AppDisposables } from './app-disposables.js';
import type { NewQube } from './app-disposables.js';
import { AppPower } from './app-power.js';
import { revert } from './revisions.js';
import type { PowerHooks } from './app-power.js';
import { AppProperties, DOM0_UUID } from './app-properties.js';
import { err, pyRepr, SilentClose } from './errors.js';
import { DEFAULT_FIREWALL } from './firewall.js';
import type { PropDef } from './properties.js';
import { LABELS } from './properties.js';
import type { HostState, Klass, PropValue, VmState, VolumeState } from './state.js';
import { writeStateFile } from './state.js';

export type { PowerHooks } from './app-power.js';
export { DOM0_UUID } from './app-properties.js';

/** One event as fired; `subject` is '' for app-level events. */
export interface FiredEvent {
  readonly subject: string;
  readonly event: string;
  readonly kwargs: EventKwargs;
  /** Fired after the qube left the collection: only its own subscribers see it. */
  readonly detached?: boolean;
}

export type EventListener = (ev: FiredEvent) => void;

const GiB = 1024 ** 3;

/** Properties whose qube qubesd's extensions record as a tag on the client. */
const AUTO_TAGGED = ['guivm', 'audiovm'];

export class SimApp {
  readonly vms = new Map<string, VmState>();
  readonly props: Record<string, PropValue>;
  readonly devices: HostState['devices'];
  private readonly listeners = new Set<EventListener>();
  private readonly properties: AppProperties;
  private readonly disposables: AppDisposables;
  private readonly power: AppPower;

  constructor(
    state: HostState,
    private readonly statePath: string | null,
    private readonly hooks: PowerHooks = {},
    /** Whether a save waits for the disk (fsync); a throwaway machine need not. */
    private readonly durable = true,
    /** Whether changes reach the state file only at flush() (qubesd's close): a machine no one restarts while it runs. */
    private readonly atClose = false,
  ) {
    this.props = { ...state.props };
    this.devices = state.devices ?? {};
    for (const vm of state.vms) this.vms.set(vm.name, vm);
    this.properties = new AppProperties(this);
    this.disposables = new AppDisposables({
      vms: this.vms,
      addVm: (spec, init) => this.addVm(spec, init),
      createOnDisk: (vm) => this.createOnDisk(vm),
      removeVm: (vm) => this.removeVm(vm),
      isDispTemplate: (vm) => this.properties.isDispTemplate(vm),
      propValue: (vm, prop) => this.properties.propValue(vm, prop),
    });
    this.power = new AppPower({
      vms: this.vms,
      hooks,
      fire: (subject, event, kwargs) => this.fire(subject, event, kwargs),
      mustGet: (name) => this.mustGet(name),
      sorted: () => this.sorted(),
      save: () => this.save(),
      propValue: (vm, prop) => this.properties.propValue(vm, prop),
      afterStartFailed: (vm) => this.disposables.afterStartFailed(vm),
      afterStop: (vm) => this.disposables.afterStop(vm),
    });
    for (const vm of this.vms.values()) this.syncAutoTags(vm, false);
  }

  /** Reverts a cleanly stopped volume to one of its revisions, the storage behind it following. */
  async revertVolume(vm: VmState, volume: string, revision: string): Promise<void> {
    await revert(vm, volume, revision, new Date(), this.hooks);
  }

  /** Lets the storage behind a volume follow an admin.vm.volume.CloneTo. */
  async volumeCloned(source: string, target: string, volume: string): Promise<void> {
    await this.hooks.afterVolumeClone?.(source, target, volume);
  }

  static emptyState(): HostState {
    const dom0: VmState = {
      name: 'dom0',
      klass: 'AdminVM',
      qid: 0,
      uuid: DOM0_UUID,
      props: {},
      tags: [],
      features: {},
      firewall: [],
      notes: '',
      power: 'Running',
      volumes: {},
      assigned: {},
      attached: {},
    };
    // Qubes' empty store sets the kernel pool explicitly (Qubes.load_initial_values)
    return { version: 1, props: { default_pool_kernel: 'linux-kernel' }, vms: [dom0], devices: {} };
  }

  snapshot(): HostState {
    return { version: 1, props: this.props, vms: [...this.vms.values()], devices: this.devices };
  }

  private unsaved = false;

  save(): void {
    if (!this.statePath) return;
    if (this.atClose) this.unsaved = true;
    else writeStateFile(this.statePath, this.snapshot(), this.durable);
  }

  /** Writes the changes a machine saving at close holds. */
  flush(): void {
    if (!this.statePath || !this.unsaved) return;
    writeStateFile(this.statePath, this.snapshot(), this.durable);
    this.unsaved = false;
  }

  // ---- events

  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  fire(subject: string, event: string, kwargs: EventKwargs = [], detached = false): void {
    const ev: FiredEvent = { subject, event, kwargs, detached };
    for (const fn of [...this.listeners]) {
      try {
        fn(ev);
      } catch {
        // a broken subscriber must not break the operation that fired
      }
    }
  }

  // ---- lookup

  get(name: string): VmState | undefined {
    return this.vms.get(name);
  }

  byUuid(uuid: string): VmState | undefined {
    for (const vm of this.vms.values()) if (vm.uuid === uuid) return vm;
    return undefined;
  }

  /** The qubes in qubesd's order: dom0 first, then by name. */
  sorted(): VmState[] {
    return [...this.vms.values()].sort((a, b) => {
      if (a.klass === 'AdminVM' || b.klass === 'AdminVM') return a.klass === 'AdminVM' ? -1 : 1;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
  }

  mustGet(name: string): VmState {
    const vm = this.vms.get(name);
    if (!vm) throw err.vmNotFound(name);
    return vm;
  }

  // ---- properties

  propDefs(vm: VmState): ReadonlyMap<string, PropDef> {
    return this.properties.propDefs(vm);
  }

  /** A qube's Python repr, as some of qubesd's messages print it. */
  qubeRepr(vm: VmState): string {
    return this.properties.qubeRepr(vm);
  }

  /** The effective value; undefined when it has no value (Python's AttributeError). */
  propValue(vm: VmState, prop: string): PropValue | undefined {
    return this.properties.propValue(vm, prop);
  }

  isDefault(vm: VmState, prop: string): boolean {
    return this.properties.isDefault(vm, prop);
  }

  globalValue(prop: string): PropValue | undefined {
    return this.properties.globalValue(prop);
  }

  renderProp(vm: VmState, prop: string): string {
    return this.properties.renderProp(vm, prop);
  }

  /** Checks and converts a raw payload for a property, as qubes' property.sanitize and setters do. */
  sanitize(def: PropDef, payload: Buffer, holderClass: string): PropValue {
    return this.properties.sanitize(def, payload, holderClass);
  }

  setProp(vm: VmState, prop: string, value: PropValue): void {
    this.properties.setProp(vm, prop, value);
    if (AUTO_TAGGED.includes(prop)) this.syncAutoTags(vm, true);
    if (prop === 'provides_network') this.syncServicevm(vm);
  }

  resetProp(vm: VmState, prop: string): void {
    this.properties.resetProp(vm, prop);
    if (AUTO_TAGGED.includes(prop)) this.syncAutoTags(vm, true);
    if (prop === 'provides_network') this.syncServicevm(vm);
  }

  /** qubesd's core-features extension: `servicevm` follows provides_network (and with it the icon). */
  private syncServicevm(vm: VmState): void {
    if (this.properties.propValue(vm, 'provides_network') === true) this.setFeature(vm, 'servicevm', '1');
    else if ('servicevm' in vm.features) this.removeFeature(vm, 'servicevm');
  }

  setGlobal(prop: string, value: PropValue): void {
    const old = this.properties.globalValue(prop);
    this.properties.setGlobal(prop, value);
    if (prop === 'clockvm') this.moveClocksync(old, value);
    // qubesd takes dom0 as default_netvm (or moves away from it), then crashes
    // re-wiring the qubes that follow it (dom0 has no reload_connected_ips):
    // the value stays, no reply
    if (prop === 'default_netvm' && [old, value].some((v) => typeof v === 'string' && this.vms.get(v)?.klass === 'AdminVM')) {
      throw new SilentClose('default_netvm to or from dom0');
    }
    this.followDefault(prop);
  }

  /** qubesd's clockvm setter: the new clock qube syncs the clock, the old one stops. */
  private moveClocksync(old: PropValue | undefined, value: PropValue): void {
    const next = typeof value === 'string' ? this.vms.get(value) : undefined;
    if (next && !('service.clocksync' in next.features)) this.setFeature(next, 'service.clocksync', '1');
    const prev = typeof old === 'string' && old !== value ? this.vms.get(old) : undefined;
    if (prev?.features['service.clocksync']) this.removeFeature(prev, 'service.clocksync');
  }

  resetGlobal(prop: string): void {
    this.properties.resetGlobal(prop);
    this.followDefault(prop);
  }

  /** The qubes taking a default GUI or audio qube follow it (qubes/ext/gui.py, audio.py). */
  private followDefault(globalProp: string): void {
    const prop = AUTO_TAGGED.find((p) => globalProp === `default_${p}`);
    if (!prop) return;
    for (const vm of this.sorted()) {
      if (vm.klass !== 'AdminVM' && this.properties.isDefault(vm, prop)) this.syncAutoTags(vm, true);
    }
  }

  /**
   * qubesd's GUI and audio extensions tag each qube with the qube serving it
   * (`guivm-dom0`, `audiovm-dom0`), and drop a stale one. On creation and
   * load the tag is added without events, as in the qube's constructor.
   */
  private syncAutoTags(vm: VmState, withEvents: boolean): void {
    for (const prop of AUTO_TAGGED) {
      if (!this.propDefs(vm).has(prop)) continue;
      const server = this.properties.propValue(vm, prop);
      const want = typeof server === 'string' && server !== '' ? `${prop}-${server}` : null;
      for (const t of vm.tags.filter((x) => x.startsWith(`${prop}-`) && x !== want)) {
        if (withEvents) this.removeTag(vm, t);
        else vm.tags.splice(vm.tags.indexOf(t), 1);
      }
      if (want && !vm.tags.includes(want)) {
        if (withEvents) this.addTag(vm, want);
        else vm.tags.push(want);
      }
    }
  }

  /** Qubes' DVMTemplateMixin: an AppVM or StandaloneVM with template_for_dispvms. */
  isDispTemplate(vm: VmState): boolean {
    return this.properties.isDispTemplate(vm);
  }

  // ---- power

  /** Whether a qube up the running qube's template chain stopped since it started. */
  hasOutdatedVolumes(vm: VmState): boolean {
    return this.power.hasOutdatedVolumes(vm);
  }

  start(vm: VmState): Promise<void> {
    return this.power.start(vm);
  }

  shutdown(vm: VmState, force: boolean): Promise<void> {
    return this.power.shutdown(vm, force);
  }

  kill(vm: VmState): Promise<void> {
    return this.power.kill(vm);
  }

  pause(vm: VmState): void {
    this.power.pause(vm);
  }

  unpause(vm: VmState): void {
    this.power.unpause(vm);
  }

  // ---- disposables

  createDispVM(name: string, label: string, tpl: VmState): VmState {
    return this.disposables.createDispVM(name, label, tpl);
  }

  newDispid(): number {
    return this.disposables.newDispid();
  }

  /** admin.vm.CreateDisposable's creation: an auto-cleanup DispVM from `tpl`. */
  createDisposable(tpl: VmState | undefined): VmState {
    return this.disposables.createDisposable(tpl);
  }

  // ---- tags and features

  addTag(vm: VmState, tag: string): void {
    if (vm.tags.includes(tag)) return;
    vm.tags.push(tag);
    this.fire(vm.name, `domain-tag-add:${tag}`, [['tag', tag]]);
    const creator = /^created-by-(.+)$/.exec(tag)?.[1];
    if (creator) {
      const extra = this.vms.get(creator)?.features['tag-created-vm-with'];
      for (const t of (extra ?? '').split(' ').filter(Boolean)) this.addTag(vm, t);
    }
  }

  removeTag(vm: VmState, tag: string): void {
    const i = vm.tags.indexOf(tag);
    if (i < 0) throw err.tagNotFound(vm.name, tag);
    vm.tags.splice(i, 1);
    this.fire(vm.name, `domain-tag-delete:${tag}`, [['tag', tag]]);
  }

  setFeature(vm: VmState, f: string, value: string): void {
    const old = vm.features[f];
    const args: [string, string][] = [
      ['feature', f],
      ['value', value],
    ];
    if (old !== undefined) args.push(['oldvalue', old]);
    this.fire(vm.name, `domain-feature-pre-set:${f}`, args);
    vm.features[f] = value;
    this.fire(vm.name, `domain-feature-set:${f}`, args);
  }

  removeFeature(vm: VmState, f: string): void {
    if (!(f in vm.features)) throw err.featureNotFound(vm.name, f);
    this.fire(vm.name, `domain-feature-pre-delete:${f}`, [['feature', f]]);
    delete vm.features[f];
    this.fire(vm.name, `domain-feature-delete:${f}`, [['feature', f]]);
  }

  /** The feature on the qube, else on its template chain; undefined when none has it. */
  featureWithTemplate(vm: VmState, f: string): string | undefined {
    const seen = new Set<string>();
    let cur: VmState | undefined = vm;
    while (cur && !seen.has(cur.name)) {
      seen.add(cur.name);
      if (f in cur.features) return cur.features[f];
      const t: PropValue | undefined = cur.props['template'];
      cur = typeof t === 'string' ? this.vms.get(t) : undefined;
    }
    return undefined;
  }

  // ---- create and remove

  private lowestFreeQid(): number {
    const used = new Set([...this.vms.values()].map((v) => v.qid));
    let q = 1;
    while (used.has(q)) q++;
    return q;
  }

  defaultVolumes(klass: Klass): Record<string, VolumeState> {
    if (klass === 'AdminVM') return {};
    return {
      root: { size: 10 * GiB, usage: 0 },
      private: { size: 2 * GiB, usage: 0 },
      volatile: { size: 10 * GiB, usage: 0 },
      kernel: { size: 0, usage: 0 },
    };
  }

  /**
   * Adds a qube as app.add_new_vm does, firing domain-add; `init` runs before
   * that, as a DispVM's constructor copies its template's tags (no tag events).
   */
  addVm(spec: NewQube, init?: (vm: VmState) => void): VmState {
    if (this.vms.has(spec.name)) throw err.alreadyExists(spec.name);
    const vm: VmState = {
      name: spec.name,
      klass: spec.klass,
      qid: this.lowestFreeQid(),
      uuid: randomUUID(),
      props: { label: spec.label },
      tags: [],
      features: {},
      firewall: [...DEFAULT_FIREWALL],
      notes: '',
      power: 'Halted',
      volumes: this.defaultVolumes(spec.klass),
      assigned: {},
      attached: {},
    };
    if (spec.dispid !== undefined) vm.dispid = spec.dispid;
    if (spec.template) vm.props['template'] = spec.template;
    init?.(vm);
    this.vms.set(vm.name, vm);
    this.syncAutoTags(vm, false);
    this.fire('', 'domain-add', [['vm', vm.name]]);
    return vm;
  }

  createOnDisk(vm: VmState): void {
    this.fire(vm.name, 'domain-create-on-disk');
  }

  /** Who refers to this qube in a way that blocks removal. */
  usersOf(name: string): string[] {
    const out: string[] = [];
    for (const [k, v] of Object.entries(this.props)) if (v === name) out.push(`global ${k}`);
    for (const vm of this.sorted()) {
      if (vm.name === name) continue;
      for (const p of ['template', 'netvm', 'default_dispvm', 'management_dispvm', 'guivm', 'audiovm']) {
        if (this.propValue(vm, p) === name) out.push(`${vm.name}.${p}`);
      }
    }
    return out;
  }

  async remove(vm: VmState): Promise<void> {
    if (vm.klass === 'AdminVM') throw err.inUse(vm.name, "'dom0' cannot be removed");
    if (vm.power !== 'Halted') throw err.notHalted(vm.name);
    if (this.propValue(vm, 'installed_by_rpm') === true) {
      throw err.inUse(vm.name, `VM installed by package manager: ${vm.name}`);
    }
    if (this.usersOf(vm.name).length) {
      throw err.inUse(vm.name, `Domain is in use: ${pyRepr(vm.name)}; see /var/log/qubes/qubes.log in dom0 for details`);
    }
    await this.removeVm(vm);
  }

  private async removeVm(vm: VmState): Promise<void> {
    this.fire('', 'domain-pre-delete', [['vm', vm.name]]);
    this.vms.delete(vm.name);
    this.fire('', 'domain-delete', [['vm', vm.name]]);
    this.fire(vm.name, 'domain-remove-from-disk', [], true);
    try {
      await this.hooks.afterRemove?.(vm.name);
    } catch {
      // the record is gone either way
    }
    this.save();
  }

  // ---- policy view

  systemInfo(): SystemInfo {
    const domains: SystemInfo['domains'] = {};
    for (const vm of this.sorted()) {
      const label = String(this.propValue(vm, 'label') ?? 'black');
      const color = LABELS.find((l) => l.name === label)?.color ?? '0x000000';
      const guivm = this.propValue(vm, 'guivm');
      const dd = this.propValue(vm, 'default_dispvm');
      domains[vm.name] = {
        internal: vm.features['internal'] ?? null,
        tags: [...vm.tags],
        type: vm.klass,
        template_for_dispvms: this.propValue(vm, 'template_for_dispvms') === true,
        default_dispvm: typeof dd === 'string' ? dd : null,
        icon: `appvm-${label}`,
        label: color,
        guivm: typeof guivm === 'string' ? guivm : null,
        relayvm: null,
        transport_rpc: null,
        power_state: vm.power,
        uuid: vm.uuid,
      } as unknown as SystemInfo['domains'][string];
    }
    return { domains };
  }
}
