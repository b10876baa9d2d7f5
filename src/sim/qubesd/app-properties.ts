/**
 * Qube and global property values: effective values with their computed
 * defaults, checks on a new value, and the events a set or reset fires.
 */
import type { EventKwargs } from '../../shared/adminapi/wire.js';
import { err, pyRepr } from './errors.js';
import type { PropContext, PropDef, PropSubject } from './properties.js';
import { globalPropDefs, LABELS, renderValue, vmPropDefs } from './properties.js';
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
        if (!this.app.vms.has(raw)) {
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
      const target = this.app.mustGet(String(value));
      if (!this.propValue(target, 'provides_network')) {
        throw err.value(`The ${target.name} qube does not provide network`);
      }
      if (target.name === vm.name) throw err.value('Network loop on qube');
    }
    if (prop === 'template') {
      if (value === null) throw err.propertyValue(`Invalid value None for property 'template' of ${vm.name}`);
      const t = this.app.mustGet(String(value));
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
    this.app.fire(vm.name, `property-pre-set:${prop}`, args);
    vm.props[prop] = value;
    this.app.fire(vm.name, `property-set:${prop}`, args);
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
    this.app.fire(vm.name, `property-pre-reset:${prop}`, args);
    this.app.fire(vm.name, `property-pre-del:${prop}`, args);
    delete vm.props[prop];
    this.app.fire(vm.name, `property-reset:${prop}`, args);
    this.app.fire(vm.name, `property-del:${prop}`, args);
  }

  setGlobal(prop: string, value: PropValue): void {
    if (prop === 'default_netvm') this.checkVmPropValueGlobalNetvm(value);
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

  private checkVmPropValueGlobalNetvm(value: PropValue): void {
    if (value === null) return;
    const t = this.app.mustGet(String(value));
    if (!this.propValue(t, 'provides_network')) throw err.value(`The ${t.name} qube does not provide network`);
  }

  resetGlobal(prop: string): void {
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
