/**
 * The simulated Qubes host: qubes, global properties, power states and the
 * events they fire, kept in one state file.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { EventKwargs } from '../../shared/adminapi/wire.js';
import type { SystemInfo } from '../../shared/policy/index.js';
import { err, pyRepr, QubesError } from './errors.js';
import { DEFAULT_FIREWALL } from './firewall.js';
import type { PropContext, PropDef, PropSubject } from './properties.js';
import { globalPropDefs, LABELS, renderValue, vmPropDefs } from './properties.js';
import type { HostState, Klass, PropValue, VmState, VolumeState } from './state.js';
import { writeStateFile } from './state.js';

/** Where the sandbox layer plugs into power changes; the default does nothing. */
export interface PowerHooks {
  /** Runs before a qube is marked running; throwing fails the start. */
  beforeStart?(vm: string): Promise<void> | void;
  /** Runs after a qube stopped (shutdown or kill). */
  afterStop?(vm: string): Promise<void> | void;
  /** Runs after a qube was removed. */
  afterRemove?(vm: string): Promise<void> | void;
  /** Runs after a volume's content was cloned into another qube's volume. */
  afterVolumeClone?(source: string, target: string, volume: string): Promise<void> | void;
}

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
export const DOM0_UUID = '00000000-0000-0000-0000-000000000000';

/** Event kwarg values as Python's str() renders them. */
function kw(v: PropValue | undefined): string {
  if (v === undefined || v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

export class SimApp {
  readonly vms = new Map<string, VmState>();
  readonly props: Record<string, PropValue>;
  readonly devices: HostState['devices'];
  private readonly listeners = new Set<EventListener>();
  private readonly recentDispids = new Set<number>();

  constructor(
    state: HostState,
    private readonly statePath: string | null,
    private readonly hooks: PowerHooks = {},
  ) {
    this.props = { ...state.props };
    this.devices = state.devices ?? {};
    for (const vm of state.vms) this.vms.set(vm.name, vm);
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
    return { version: 1, props: {}, vms: [dom0], devices: {} };
  }

  snapshot(): HostState {
    return { version: 1, props: this.props, vms: [...this.vms.values()], devices: this.devices };
  }

  save(): void {
    if (this.statePath) writeStateFile(this.statePath, this.snapshot());
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

  private subject(vm: VmState): PropSubject {
    const t = vm.props['template'];
    return {
      name: vm.name,
      klass: vm.klass,
      qid: vm.qid,
      uuid: vm.uuid,
      dispid: vm.dispid,
      template: typeof t === 'string' ? t : null,
    };
  }

  private readonly ctx: PropContext = {
    vmProp: (name, prop) => {
      const vm = this.vms.get(name);
      return vm ? this.propValue(vm, prop) : undefined;
    },
    globalProp: (prop) => this.globalValue(prop),
    vmExists: (name) => this.vms.has(name),
    vmKlass: (name) => this.vms.get(name)?.klass,
    vmFeature: (name, f) => this.vms.get(name)?.features[f],
  };

  propDefs(vm: VmState): ReadonlyMap<string, PropDef> {
    return vmPropDefs(vm.klass);
  }

  /** The effective value; undefined when it has no value (Python's AttributeError). */
  propValue(vm: VmState, prop: string): PropValue | undefined {
    if (Object.prototype.hasOwnProperty.call(vm.props, prop)) return vm.props[prop];
    const def = vmPropDefs(vm.klass).get(prop);
    if (!def) return undefined;
    if (prop === 'start_time' && vm.power !== 'Halted') return null;
    return def.def(this.subject(vm), this.ctx);
  }

  isDefault(vm: VmState, prop: string): boolean {
    // without a default, a value was set explicitly (identity once, at creation)
    if (vmPropDefs(vm.klass).get(prop)?.noDefault) return false;
    return !Object.prototype.hasOwnProperty.call(vm.props, prop);
  }

  globalValue(prop: string): PropValue | undefined {
    if (Object.prototype.hasOwnProperty.call(this.props, prop)) return this.props[prop];
    return globalPropDefs.get(prop)?.def({ name: 'dom0', klass: 'AdminVM', qid: 0, uuid: DOM0_UUID, template: null }, this.ctx);
  }

  /** Checks and converts a raw payload for a property, as qubes' property.sanitize and setters do. */
  sanitize(def: PropDef, payload: Buffer, holder: string): PropValue {
    for (const b of payload) if (b > 0x7f) throw err.value('');
    const raw = payload.toString('latin1');
    if (def.readOnly) throw err.propertyValue(`Property ${pyRepr(def.name)} of ${holder} is read-only`);
    switch (def.type) {
      case 'bool': {
        const l = raw.toLowerCase();
        if (['0', 'no', 'false', 'off'].includes(l)) return false;
        if (['1', 'yes', 'true', 'on'].includes(l)) return true;
        throw err.value(`Invalid literal for boolean property: ${pyRepr(raw)}`);
      }
      case 'int':
        if (!/^\s*[+-]?[0-9]+\s*$/.test(raw)) throw err.value('');
        return Number.parseInt(raw, 10);
      case 'label':
        if (!LABELS.some((l) => l.name === raw)) throw err.labelNotFound(raw);
        return raw;
      case 'vm': {
        if (raw === '') return null;
        if (!this.vms.has(raw)) {
          throw err.propertyValue(`Can't set ${def.name} to non-existing qube ${raw}`);
        }
        return raw;
      }
      default:
        return raw;
    }
  }

  private checkVmPropValue(vm: VmState, prop: string, value: PropValue): void {
    if (prop === 'netvm' && value !== null) {
      const target = this.mustGet(String(value));
      if (!this.propValue(target, 'provides_network')) {
        throw err.value(`The ${target.name} qube does not provide network`);
      }
      if (target.name === vm.name) throw err.value('Network loop on qube');
    }
    if (prop === 'template') {
      if (value === null) throw err.propertyValue(`Invalid value None for property 'template' of ${vm.name}`);
      const t = this.mustGet(String(value));
      // a disposable's template is any qube with template_for_dispvms (AppVM or StandaloneVM)
      if (vm.klass === 'DispVM') {
        if (!this.isDispTemplate(t)) throw err.propertyValue('template for disposable must have template_for_dispvms=True');
      } else if (t.klass !== 'TemplateVM') {
        throw err.value(`Cannot set template of ${vm.name} to ${t.name}: it is not a TemplateVM`);
      }
      if (vm.power !== 'Halted') throw err.notHalted(vm.name);
    }
    if ((prop === 'memory' || prop === 'vcpus') && typeof value === 'number' && value <= 0) {
      throw err.propertyValue(`Invalid value ${pyRepr(String(value))} for property ${pyRepr(prop)} of ${vm.name}`);
    }
  }

  setProp(vm: VmState, prop: string, value: PropValue): void {
    this.checkVmPropValue(vm, prop, value);
    const had = this.propValue(vm, prop);
    const args: [string, string][] = [
      ['name', prop],
      ['newvalue', kw(value)],
    ];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.fire(vm.name, `property-pre-set:${prop}`, args);
    vm.props[prop] = value;
    this.fire(vm.name, `property-set:${prop}`, args);
  }

  resetProp(vm: VmState, prop: string): void {
    if (vmPropDefs(vm.klass).get(prop)?.readOnly) {
      throw err.propertyValue(`Property ${pyRepr(prop)} of ${vm.name} is read-only`);
    }
    if (prop === 'template' || prop === 'label') {
      throw err.propertyValue(`Property ${pyRepr(prop)} of ${vm.name} has no default`);
    }
    const had = this.propValue(vm, prop);
    const args: [string, string][] = [['name', prop]];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.fire(vm.name, `property-pre-reset:${prop}`, args);
    this.fire(vm.name, `property-pre-del:${prop}`, args);
    delete vm.props[prop];
    this.fire(vm.name, `property-reset:${prop}`, args);
    this.fire(vm.name, `property-del:${prop}`, args);
  }

  setGlobal(prop: string, value: PropValue): void {
    if (prop === 'default_netvm') this.checkVmPropValueGlobalNetvm(value);
    const had = this.globalValue(prop);
    const users = prop === 'default_netvm' ? this.sorted().filter((v) => v.klass !== 'AdminVM' && v.klass !== 'TemplateVM' && this.isDefault(v, 'netvm')) : [];
    const oldNet = new Map(users.map((v) => [v.name, this.propValue(v, 'netvm')]));
    const args: [string, string][] = [
      ['name', prop],
      ['newvalue', kw(value)],
    ];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.fire('', `property-pre-set:${prop}`, args);
    this.props[prop] = value;
    this.fire('', `property-set:${prop}`, args);
    for (const v of users) {
      this.fire(v.name, 'property-reset:netvm', [
        ['name', 'netvm'],
        ['oldvalue', kw(oldNet.get(v.name))],
      ]);
    }
  }

  private checkVmPropValueGlobalNetvm(value: PropValue): void {
    if (value === null) return;
    const t = this.mustGet(String(value));
    if (!this.propValue(t, 'provides_network')) throw err.value(`The ${t.name} qube does not provide network`);
  }

  resetGlobal(prop: string): void {
    const had = this.globalValue(prop);
    const args: [string, string][] = [['name', prop]];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.fire('', `property-pre-reset:${prop}`, args);
    this.fire('', `property-pre-del:${prop}`, args);
    delete this.props[prop];
    this.fire('', `property-reset:${prop}`, args);
    this.fire('', `property-del:${prop}`, args);
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

  // ---- power

  /** Starts in flight, so a concurrent start waits for the first (qubesd's startup_lock). */
  private readonly starting = new Map<string, Promise<void>>();
  /** When each qube last started and stopped, in one sequence: which snapshots are outdated. */
  private powerSeq = 0;
  private readonly startedAt = new Map<string, number>();
  private readonly stoppedAt = new Map<string, number>();

  /**
   * Qubes' storage.outdated_volumes, non-empty: the running qube's volumes
   * snapshot a qube up its template chain that stopped (committing its
   * volumes) after this one started.
   */
  hasOutdatedVolumes(vm: VmState): boolean {
    const started = this.startedAt.get(vm.name);
    if (vm.power === 'Halted' || started === undefined) return false;
    const seen = new Set<string>([vm.name]);
    let t = this.propValue(vm, 'template');
    while (typeof t === 'string' && !seen.has(t)) {
      seen.add(t);
      if ((this.stoppedAt.get(t) ?? -1) > started) return true;
      const next = this.vms.get(t);
      t = next ? this.propValue(next, 'template') : undefined;
    }
    return false;
  }

  async start(vm: VmState): Promise<void> {
    // dom0 is qubesd's "fake domain": its power calls raise (qubes/vm/adminvm.py)
    if (vm.klass === 'AdminVM') throw err.notHalted(vm.name, 'Cannot start Dom0 fake domain!');
    const pending = this.starting.get(vm.name);
    if (pending) return pending;
    if (vm.power !== 'Halted') return;
    const run = this.startHalted(vm).finally(() => this.starting.delete(vm.name));
    this.starting.set(vm.name, run);
    return run;
  }

  private async startHalted(vm: VmState): Promise<void> {
    const prohibit = vm.features['prohibit-start'];
    if (prohibit) {
      const reason = `Qube start is prohibited. Rationale: ${prohibit}`;
      this.fire(vm.name, 'domain-start-failed', [['reason', reason]]);
      throw err.generic(reason);
    }
    const template = this.propValue(vm, 'template');
    if ((vm.klass === 'AppVM' || vm.klass === 'DispVM') && (typeof template !== 'string' || !this.vms.has(template))) {
      throw err.noTemplate(vm.name);
    }
    const guid = randomUUID();
    const memory = Number(this.propValue(vm, 'memory') ?? 400);
    this.fire(vm.name, 'domain-pre-start', [
      ['start_guid', guid],
      ['mem_required', String(memory * 1024 * 1024)],
    ]);
    const netvm = this.propValue(vm, 'netvm');
    try {
      if (typeof netvm === 'string') {
        const n = this.mustGet(netvm);
        if (n.power === 'Halted') await this.start(n);
      }
      vm.power = 'Transient';
      await this.hooks.beforeStart?.(vm.name);
    } catch (e) {
      vm.power = 'Halted';
      const reason = e instanceof Error ? e.message : String(e);
      this.fire(vm.name, 'domain-start-failed', [['reason', reason]]);
      if (vm.klass === 'DispVM') await this.removeVm(vm);
      throw e instanceof QubesError ? e : err.generic(`Start failed: ${reason}`);
    }
    this.fire(vm.name, 'domain-pre-spawn', [['start_guid', guid]]);
    for (const p of ['xid', 'stubdom_xid', 'start_time']) this.fire(vm.name, `property-reset:${p}`, [['name', p]]);
    this.fire(vm.name, 'domain-spawn', [['start_guid', guid]]);
    this.fire(vm.name, 'domain-pre-unpaused');
    vm.power = 'Running';
    this.startedAt.set(vm.name, ++this.powerSeq);
    this.fire(vm.name, 'domain-unpaused');
    this.fire(vm.name, 'domain-start', [['start_guid', guid]]);
    this.save();
  }

  async shutdown(vm: VmState, force: boolean): Promise<void> {
    if (vm.klass === 'AdminVM') throw err.vm('Cannot shutdown Dom0 fake domain!');
    if (vm.power === 'Halted') throw err.notStarted(vm.name);
    if (!force) {
      const users = this.sorted().filter((v) => v.power !== 'Halted' && this.propValue(v, 'netvm') === vm.name);
      if (users.length) {
        throw err.inUse(vm.name, `There are other VMs connected to this VM: ${users.map((v) => v.name).join(', ')}`);
      }
    }
    this.fire(vm.name, 'domain-pre-shutdown', [['force', force ? 'True' : 'False']]);
    await this.stopped(vm);
  }

  async kill(vm: VmState): Promise<void> {
    if (vm.klass === 'AdminVM') throw err.vm('Cannot kill Dom0 fake domain!');
    if (vm.power === 'Halted') throw err.notStarted(vm.name);
    await this.stopped(vm);
  }

  private async stopped(vm: VmState): Promise<void> {
    vm.power = 'Halted';
    this.stoppedAt.set(vm.name, ++this.powerSeq);
    try {
      await this.hooks.afterStop?.(vm.name);
    } catch {
      // the qube is down either way
    }
    this.fire(vm.name, 'domain-stopped');
    for (const p of ['xid', 'stubdom_xid', 'start_time']) this.fire(vm.name, `property-reset:${p}`, [['name', p]]);
    this.fire(vm.name, 'domain-shutdown');
    if (vm.klass === 'DispVM' && this.propValue(vm, 'auto_cleanup') === true && this.vms.get(vm.name) === vm) {
      await this.removeVm(vm);
    }
    this.save();
  }

  pause(vm: VmState): void {
    if (vm.klass === 'AdminVM' || vm.power !== 'Running') throw err.notRunning(vm.name);
    this.fire(vm.name, 'domain-pre-paused');
    vm.power = 'Paused';
    this.fire(vm.name, 'domain-paused');
    this.save();
  }

  unpause(vm: VmState): void {
    if (vm.power !== 'Paused') throw err.notPaused(vm.name);
    this.fire(vm.name, 'domain-pre-unpaused');
    vm.power = 'Running';
    this.fire(vm.name, 'domain-unpaused');
    this.save();
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
  addVm(spec: { name: string; klass: Klass; label: string; template?: string | null; dispid?: number }, init?: (vm: VmState) => void): VmState {
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
    this.fire('', 'domain-add', [['vm', vm.name]]);
    return vm;
  }

  createOnDisk(vm: VmState): void {
    this.fire(vm.name, 'domain-create-on-disk');
  }

  /** Copies what Qubes copies from a disposable template into a new DispVM. */
  private copyFromDispTemplate(vm: VmState, tpl: VmState): void {
    const defs = vmPropDefs('DispVM');
    const skip = new Set(['name', 'qid', 'uuid', 'template', 'klass', 'dispid', 'label']);
    for (const [k, v] of Object.entries(tpl.props)) {
      if (skip.has(k) || !defs.has(k) || defs.get(k)?.readOnly) continue;
      vm.props[k] = v;
    }
    vm.props['label'] = tpl.props['label'] ?? 'red';
    vm.firewall = [...tpl.firewall];
    for (const [k, v] of Object.entries(tpl.features)) if (!k.startsWith('preload-dispvm') || k === 'preload-dispvm-max') vm.features[k] = v;
    for (const t of tpl.tags) if (!vm.tags.includes(t)) vm.tags.push(t);
  }

  /** Qubes' DVMTemplateMixin: an AppVM or StandaloneVM with template_for_dispvms. */
  isDispTemplate(vm: VmState): boolean {
    return this.propValue(vm, 'template_for_dispvms') === true;
  }

  createDispVM(name: string, label: string, tpl: VmState): VmState {
    if (!this.isDispTemplate(tpl)) {
      throw err.value(`template for disposable (${tpl.name}) needs to be an AppVM with template_for_dispvms=True`);
    }
    const vm = this.addVm({ name, klass: 'DispVM', label, template: tpl.name, dispid: this.newDispid() }, (v) => this.copyFromDispTemplate(v, tpl));
    if (label) vm.props['label'] = label;
    return vm;
  }

  newDispid(): number {
    const used = new Set([...this.vms.values()].map((v) => v.dispid).filter((d) => d !== undefined));
    for (;;) {
      const id = randomInt(0, 10000);
      if (!used.has(id) && !this.recentDispids.has(id) && !this.vms.has(`disp${id}`)) {
        this.recentDispids.add(id);
        return id;
      }
    }
  }

  /** admin.vm.CreateDisposable's creation: an auto-cleanup DispVM from `tpl`. */
  createDisposable(tpl: VmState | undefined): VmState {
    if (!tpl || !this.isDispTemplate(tpl)) {
      throw err.generic('Refusing to create disposable out of app qube which has template_for_dispvms=False');
    }
    const dispid = this.newDispid();
    const vm = this.addVm({ name: `disp${dispid}`, klass: 'DispVM', label: String(tpl.props['label'] ?? 'red'), template: tpl.name, dispid }, (v) =>
      this.copyFromDispTemplate(v, tpl),
    );
    vm.props['auto_cleanup'] = true;
    this.createOnDisk(vm);
    return vm;
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

  renderProp(vm: VmState, prop: string): string {
    const v = this.propValue(vm, prop);
    return v === undefined ? '' : renderValue(v);
  }
}
