/**
 * Qube and global property values: effective values with their computed
 * defaults, checks on a new value, and the events a set or reset fires.
 */
import type { EventKwargs } from '../../shared/adminapi/wire.js';
import { err, pyRepr, SilentClose } from './errors.js';
import { globalSetterValue, sanitizeValue, setterValue } from './property-values.js';
import type { PropContext, PropDef, PropSubject } from './properties.js';
import { globalPropDefs, LABELS, listed, renderValue, vmPropDefs } from './properties.js';
import type { PropValue, VmState } from './state.js';

export const DOM0_UUID = '00000000-0000-0000-0000-000000000000';

/** What property values are read from and their events fired through. */
export interface PropertyHost {
  readonly vms: ReadonlyMap<string, VmState>;
  /** The global properties set explicitly, changed in place. */
  readonly props: Record<string, PropValue>;
  fire(subject: string, event: string, kwargs?: EventKwargs): void;
  mustGet(name: string): VmState;
  /** The qubes in qubesd's order. */
  sorted(): VmState[];
}

/** Event kwarg values as Python's str() renders them. */
function kw(v: PropValue | undefined): string {
  if (v === undefined || v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

export class AppProperties {
  constructor(private readonly app: PropertyHost) {}

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
      const vm = this.app.vms.get(name);
      return vm ? this.propValue(vm, prop) : undefined;
    },
    globalProp: (prop) => this.globalValue(prop),
    vmExists: (name) => this.app.vms.has(name),
    vmKlass: (name) => this.app.vms.get(name)?.klass,
    vmFeature: (name, f) => this.app.vms.get(name)?.features[f],
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
    if (Object.prototype.hasOwnProperty.call(this.app.props, prop)) return this.app.props[prop];
    return globalPropDefs.get(prop)?.def({ name: 'dom0', klass: 'AdminVM', qid: 0, uuid: DOM0_UUID, template: null }, this.ctx);
  }

  renderProp(vm: VmState, prop: string): string {
    const v = this.propValue(vm, prop);
    return v === undefined ? '' : renderValue(v);
  }

  /** Qubes' DVMTemplateMixin: an AppVM or StandaloneVM with template_for_dispvms. */
  isDispTemplate(vm: VmState): boolean {
    return this.propValue(vm, 'template_for_dispvms') === true;
  }

  /** Checks and converts a raw payload for a property, as qubes' property.sanitize does; `holderClass` names the holder's Python class. */
  sanitize(def: PropDef, payload: Buffer, holderClass: string): PropValue {
    const value = sanitizeValue(def, payload, holderClass, LABELS.map((l) => l.name));
    if (def.type === 'vm' && value !== null && !this.app.vms.has(String(value))) {
      throw err.propertyValue(`Can't set ${def.name} to non-existing qube ${String(value)}`);
    }
    return value;
  }

  /** Qubes' VMProperty with a vmclass: the qube named must be of that class. */
  private wantClass(value: PropValue, klass: string): VmState {
    const t = this.app.mustGet(String(value));
    // the setter names the value as given (a name); a create names the qube object (its repr)
    if (t.klass !== klass) throw err.propertyValue(`wrong VM class: domains[${pyRepr(t.name)}] is of type ${t.klass} and not ${klass}`);
    return t;
  }

  /**
   * A qube's Python repr, as some of qubesd's messages print it: class, an
   * address (any: the checks mask it), name, qid, then each property that
   * has a value, in listing order, None spelt out.
   */
  qubeRepr(vm: VmState): string {
    const props: string[] = [];
    for (const d of listed(vmPropDefs(vm.klass).values(), true)) {
      const v = d.name === 'name' || d.name === 'qid' ? undefined : this.propValue(vm, d.name);
      if (v !== undefined) props.push(`${d.name}=${v === null ? 'None' : renderValue(v)}`);
    }
    return `<${vm.klass} at 0x7f0000000000 name=${pyRepr(vm.name)} qid=${vm.qid} ${props.join(' ')}>`;
  }

  /** Qubes' validate_disposable_template (default_dispvm, management_dispvm). */
  private checkDispTemplate(holder: string, prop: string, value: PropValue): void {
    if (value === null) return;
    const t = this.app.mustGet(String(value));
    // qubesd asserts a QubesVM here: dom0 fails outside its exceptions
    if (t.klass === 'AdminVM') throw new SilentClose(`${prop} cannot be dom0`);
    if (!this.isDispTemplate(t)) {
      throw err.propertyValue(`Cannot set invalid property to ${holder}, ${prop} ${pyRepr(t.name)} has template_for_dispvms set to False`);
    }
  }

  /** The qubes whose network goes through `name`, directly or further down (get_vms_connected_to). */
  private connectedTo(name: string): Set<string> {
    const found = new Set<string>();
    const todo = [name];
    while (todo.length > 0) {
      const cur = todo.pop() as string;
      for (const v of this.app.vms.values()) {
        if (v.klass === 'AdminVM' || found.has(v.name)) continue;
        if (this.propValue(v, 'netvm') === cur) {
          found.add(v.name);
          todo.push(v.name);
        }
      }
    }
    return found;
  }

  private checkVmPropValue(vm: VmState, prop: string, value: PropValue): PropValue {
    if (prop === 'netvm' && value !== null) {
      const target = this.app.mustGet(String(value));
      // qubesd reads provides_network of dom0, which has none, outside its exceptions
      if (target.klass === 'AdminVM') throw new SilentClose('dom0 has no provides_network');
      if (!this.propValue(target, 'provides_network')) {
        throw err.value(`The ${target.name} qube does not provide network`);
      }
      if (target.name === vm.name || this.connectedTo(vm.name).has(target.name)) throw err.value('Loops in network are unsupported');
    }
    if (prop === 'default_dispvm' || prop === 'management_dispvm') this.checkDispTemplate(`qube ${pyRepr(vm.name)}`, prop, value);
    if (prop === 'template') {
      if (value === null) throw err.propertyValue(`Invalid value None for property 'template' of ${this.qubeRepr(vm)}`);
      // a disposable's template is any qube with template_for_dispvms (AppVM or StandaloneVM)
      if (vm.klass === 'DispVM') {
        if (!this.isDispTemplate(this.app.mustGet(String(value)))) {
          throw err.propertyValue('template for disposable must have template_for_dispvms=True');
        }
      } else {
        this.wantClass(value, 'TemplateVM');
      }
      if (vm.power !== 'Halted') throw err.notHalted(vm.name);
    }
    if (prop === 'template_for_dispvms' && value === false) this.checkDispTemplateUnused(vm);
    // qubesd's provides_network setter (a reset bypasses it)
    if (prop === 'provides_network' && value === false && [...this.app.vms.values()].some((v) => v !== vm && this.propValue(v, 'netvm') === vm.name)) {
      throw err.value("The qube is still used by other qubes, change theirs 'netvm' first");
    }
    return setterValue(prop, value);
  }

  /**
   * A disposable template stays one while the system or a qube names it
   * (qubes/vm/mix/dvmtemplate.py): the system by its value, a qube only by
   * a value set explicitly. qubesd's texts list every property it checks.
   */
  private checkDispTemplateUnused(vm: VmState): void {
    if (!this.isDispTemplate(vm)) return;
    if (['default_dispvm', 'management_dispvm'].some((p) => this.globalValue(p) === vm.name)) {
      throw err.inUse(vm.name, 'Cannot change template_for_dispvms to False while it is in use by the system by any of these properties: default_dispvm, management_dispvm');
    }
    const props = ['default_dispvm', 'management_dispvm', 'template'];
    for (const v of this.app.vms.values()) {
      if (v !== vm && props.some((p) => Object.prototype.hasOwnProperty.call(v.props, p) && v.props[p] === vm.name)) {
        throw err.inUse(
          vm.name,
          'Cannot change template_for_dispvms to False while it is the disposable template of a qube by any of these properties: default_dispvm, management_dispvm, template',
        );
      }
    }
  }

  setProp(vm: VmState, prop: string, newValue: PropValue): void {
    const value = this.checkVmPropValue(vm, prop, newValue);
    const had = this.propValue(vm, prop);
    const args: [string, string][] = [
      ['name', prop],
      ['newvalue', kw(value)],
    ];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.app.fire(vm.name, `property-pre-set:${prop}`, args);
    vm.props[prop] = value;
    this.app.fire(vm.name, `property-set:${prop}`, args);
  }

  resetProp(vm: VmState, prop: string): void {
    if (vmPropDefs(vm.klass).get(prop)?.readOnly) {
      // identity has no default: qubesd fails outside its exceptions; the rest have nothing to reset
      if (['name', 'qid', 'uuid'].includes(prop) && vm.klass !== 'AdminVM') throw new SilentClose(`${prop} has no default`);
      return;
    }
    if (prop === 'template') {
      const d = this.globalValue('default_template');
      throw err.value(`Cannot unset template${d ? `. You can set it to the current default (${String(d)}) instead` : ''}`);
    }
    if (prop === 'label') {
      throw err.propertyValue(`Property ${pyRepr(prop)} of ${vm.name} has no default`);
    }
    if (prop === 'template_for_dispvms') this.checkDispTemplateUnused(vm);
    // qubesd's pre-reset handler puts the default netvm through the setter's checks
    if (prop === 'netvm' && vm.klass !== 'AdminVM') {
      const d = this.globalValue('default_netvm');
      if (d !== null && d !== undefined) this.checkVmPropValue(vm, 'netvm', d);
    }
    const had = this.propValue(vm, prop);
    const args: [string, string][] = [['name', prop]];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.app.fire(vm.name, `property-pre-reset:${prop}`, args);
    this.app.fire(vm.name, `property-pre-del:${prop}`, args);
    delete vm.props[prop];
    this.app.fire(vm.name, `property-reset:${prop}`, args);
    this.app.fire(vm.name, `property-del:${prop}`, args);
  }

  setGlobal(prop: string, newValue: PropValue): void {
    const value = this.checkGlobalValue(prop, newValue);
    const had = this.globalValue(prop);
    const users = prop === 'default_netvm' ? this.app.sorted().filter((v) => v.klass !== 'AdminVM' && v.klass !== 'TemplateVM' && this.isDefault(v, 'netvm')) : [];
    const oldNet = new Map(users.map((v) => [v.name, this.propValue(v, 'netvm')]));
    const args: [string, string][] = [
      ['name', prop],
      ['newvalue', kw(value)],
    ];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.app.fire('', `property-pre-set:${prop}`, args);
    this.app.props[prop] = value;
    this.app.fire('', `property-set:${prop}`, args);
    for (const v of users) {
      this.app.fire(v.name, 'property-reset:netvm', [
        ['name', 'netvm'],
        ['oldvalue', kw(oldNet.get(v.name))],
      ]);
    }
  }

  private checkGlobalValue(prop: string, value: PropValue): PropValue {
    if (globalPropDefs.get(prop)?.type === 'vm' && value !== null) {
      this.app.mustGet(String(value));
      if (prop === 'default_template') this.wantClass(value, 'TemplateVM');
      if (prop === 'default_dispvm' || prop === 'management_dispvm') this.checkDispTemplate('system', prop, value);
    }
    if (prop === 'default_netvm' && value !== null) {
      // a qube taking the default network would reach itself (qubes/app.py _setter_default_netvm)
      for (const v of this.app.sorted()) {
        if (v.klass === 'AdminVM' || !this.isDefault(v, 'netvm')) continue;
        if (value === v.name || this.connectedTo(v.name).has(String(value))) {
          throw err.propertyValue(`Network loop on ${pyRepr(v.name)}`);
        }
      }
    }
    return globalSetterValue(prop, value);
  }

  resetGlobal(prop: string): void {
    if (globalPropDefs.get(prop)?.readOnly) return;
    const had = this.globalValue(prop);
    const args: [string, string][] = [['name', prop]];
    if (had !== undefined) args.push(['oldvalue', kw(had)]);
    this.app.fire('', `property-pre-reset:${prop}`, args);
    this.app.fire('', `property-pre-del:${prop}`, args);
    delete this.app.props[prop];
    this.app.fire('', `property-reset:${prop}`, args);
    this.app.fire('', `property-del:${prop}`, args);
  }
}
