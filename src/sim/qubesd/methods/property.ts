/** admin.vm.property.* and admin.property.* (global). */
import { err } from '../errors.js';
import type { PropDef } from '../properties.js';
import { globalPropDefs, listed, renderValue } from '../properties.js';
import type { PropValue } from '../state.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

interface Holder {
  readonly label: string;
  /** The holder's Python class, as qubesd's messages name it. */
  readonly klass: string;
  /** Whether its properties are listed by load stage (a qube's) or by name alone (the global ones). */
  readonly byStage: boolean;
  defs(): ReadonlyMap<string, PropDef>;
  value(prop: string): PropValue | undefined;
  defaultValue(prop: string): PropValue | undefined;
  isDefault(prop: string): boolean;
  set(prop: string, v: PropValue): void;
  reset(prop: string): void;
}

function vmHolder(ctx: CallContext): Holder {
  const { app, dest } = ctx;
  return {
    label: dest.name,
    klass: dest.klass,
    byStage: true,
    defs: () => app.propDefs(dest),
    value: (p) => app.propValue(dest, p),
    defaultValue: (p) => withoutExplicit(dest.props, p, () => app.propValue(dest, p)),
    isDefault: (p) => app.isDefault(dest, p),
    set: (p, v) => app.setProp(dest, p, v),
    reset: (p) => app.resetProp(dest, p),
  };
}

function globalHolder(ctx: CallContext): Holder {
  const { app } = ctx;
  return {
    // qubesd names the app by its str()
    label: 'Qubes',
    klass: 'Qubes',
    byStage: false,
    defs: () => globalPropDefs,
    value: (p) => app.globalValue(p),
    defaultValue: (p) => withoutExplicit(app.props, p, () => app.globalValue(p)),
    // a property without a default holds a value set explicitly (at install)
    isDefault: (p) => !globalPropDefs.get(p)?.noDefault && !Object.prototype.hasOwnProperty.call(app.props, p),
    set: (p, v) => app.setGlobal(p, v),
    reset: (p) => app.resetGlobal(p),
  };
}

/** Evaluates `read` as if the property had never been set. */
function withoutExplicit(store: Record<string, PropValue>, prop: string, read: () => PropValue | undefined): PropValue | undefined {
  if (!Object.prototype.hasOwnProperty.call(store, prop)) return read();
  const saved = store[prop] as PropValue;
  delete store[prop];
  try {
    return read();
  } finally {
    store[prop] = saved;
  }
}

function mustDef(h: Holder, prop: string): PropDef {
  const def = h.defs().get(prop);
  if (!def) throw err.noSuchProperty(h.label, prop);
  return def;
}

function serialize(h: Holder, def: PropDef): string {
  const v = h.value(def.name);
  if (v === undefined) return `default=True type=${def.type} `;
  return `default=${h.isDefault(def.name) ? 'True' : 'False'} type=${def.type} ${renderValue(v)}`;
}

function family(prefix: string, destAdminvm: boolean | null, holder: (ctx: CallContext) => Holder): MethodTable {
  return {
    [`${prefix}.List`]: m(false, false, destAdminvm, (ctx) => {
      const h = holder(ctx);
      return listed(h.defs().values(), h.byStage)
        .map((d) => `${d.name}\n`)
        .join('');
    }),
    [`${prefix}.Get`]: m(true, false, destAdminvm, (ctx) => {
      const h = holder(ctx);
      return serialize(h, mustDef(h, ctx.arg));
    }),
    [`${prefix}.GetAll`]: m(false, false, destAdminvm, (ctx) => {
      const h = holder(ctx);
      return listed(h.defs().values(), h.byStage)
        .map((d) => `${d.name} ${serialize(h, d).replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`)
        .join('');
    }),
    [`${prefix}.GetDefault`]: m(true, false, destAdminvm, (ctx) => {
      const h = holder(ctx);
      const def = mustDef(h, ctx.arg);
      if (def.noDefault) return null;
      const v = h.defaultValue(def.name);
      return v === undefined ? null : `type=${def.type} ${renderValue(v)}`;
    }),
    [`${prefix}.Help`]: m(true, false, destAdminvm, (ctx) => {
      const h = holder(ctx);
      return mustDef(h, ctx.arg).help;
    }),
    [`${prefix}.Set`]: m(true, null, destAdminvm, (ctx) => {
      const h = holder(ctx);
      const def = mustDef(h, ctx.arg);
      const v = ctx.app.sanitize(def, ctx.payload, h.klass);
      h.set(def.name, v);
      ctx.app.save();
      return null;
    }),
    [`${prefix}.Reset`]: m(true, false, destAdminvm, (ctx) => {
      const h = holder(ctx);
      const def = mustDef(h, ctx.arg);
      h.reset(def.name);
      ctx.app.save();
      return null;
    }),
  };
}

export const propertyMethods: MethodTable = {
  ...family('admin.vm.property', null, vmHolder),
  ...family('admin.property', true, globalHolder),
};
