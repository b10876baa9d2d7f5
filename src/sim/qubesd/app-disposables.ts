/**
 * Disposables: a DispVM takes what Qubes copies from its disposable
 * template and a dispid never handed out before; an auto-cleanup one is
 * removed once it stops, and any DispVM whose start failed is removed.
 */
import { randomInt } from 'node:crypto';
import { err } from './errors.js';
import { vmPropDefs } from './properties.js';
import type { Klass, PropValue, VmState } from './state.js';

export interface NewQube {
  name: string;
  klass: Klass;
  label: string;
  template?: string | null;
  dispid?: number;
}

/** How disposables are added to and removed from the collection. */
export interface DisposableHost {
  readonly vms: ReadonlyMap<string, VmState>;
  addVm(spec: NewQube, init?: (vm: VmState) => void): VmState;
  createOnDisk(vm: VmState): void;
  removeVm(vm: VmState): Promise<void>;
  isDispTemplate(vm: VmState): boolean;
  propValue(vm: VmState, prop: string): PropValue | undefined;
}

export class AppDisposables {
  private readonly recentDispids = new Set<number>();

  constructor(private readonly app: DisposableHost) {}

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

  createDispVM(name: string, label: string, tpl: VmState): VmState {
    if (!this.app.isDispTemplate(tpl)) {
      throw err.value(`template for disposable (${tpl.name}) needs to be an AppVM with template_for_dispvms=True`);
    }
    const vm = this.app.addVm({ name, klass: 'DispVM', label, template: tpl.name, dispid: this.newDispid() }, (v) => this.copyFromDispTemplate(v, tpl));
    if (label) vm.props['label'] = label;
    return vm;
  }

  newDispid(): number {
    const used = new Set([...this.app.vms.values()].map((v) => v.dispid).filter((d) => d !== undefined));
    for (;;) {
      const id = randomInt(0, 10000);
      if (!used.has(id) && !this.recentDispids.has(id) && !this.app.vms.has(`disp${id}`)) {
        this.recentDispids.add(id);
        return id;
      }
    }
  }

  /** admin.vm.CreateDisposable's creation: an auto-cleanup DispVM from `tpl`. */
  createDisposable(tpl: VmState | undefined): VmState {
    if (!tpl || !this.app.isDispTemplate(tpl)) {
      throw err.generic('Refusing to create disposable out of app qube which has template_for_dispvms=False');
    }
    const dispid = this.newDispid();
    const vm = this.app.addVm({ name: `disp${dispid}`, klass: 'DispVM', label: String(tpl.props['label'] ?? 'red'), template: tpl.name, dispid }, (v) =>
      this.copyFromDispTemplate(v, tpl),
    );
    vm.props['auto_cleanup'] = true;
    this.app.createOnDisk(vm);
    return vm;
  }

  /** A DispVM whose start failed is removed. */
  async afterStartFailed(vm: VmState): Promise<void> {
    if (vm.klass === 'DispVM') await this.app.removeVm(vm);
  }

  /** An auto-cleanup DispVM still in the collection is removed once it stopped. */
  async afterStop(vm: VmState): Promise<void> {
    if (vm.klass === 'DispVM' && this.app.propValue(vm, 'auto_cleanup') === true && this.app.vms.get(vm.name) === vm) await this.app.removeVm(vm);
  }
}
