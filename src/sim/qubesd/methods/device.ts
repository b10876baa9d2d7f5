/**
 * admin.deviceclass.List and admin.vm.device.CLASS.*: devices a backend
 * exposes (host state), manual attachments (while the frontend runs) and
 * persistent assignments, in the 4.2+ key='value' serialization.
 */
import { err, pyRepr, QubesError, SilentClose } from '../errors.js';
import type { DeviceAssignmentState, DeviceState, VmState } from '../state.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

export const DEVICE_CLASSES = ['block', 'mic', 'pci', 'usb'] as const;

const ALLOWED_PARAM = /^[0-9A-Za-z!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~ ]*$/;

/** DeviceSerializer.pack_property: key='value' with ' escaped. */
function pack(key: string, value: string): string {
  return `${key}='${value.replace(/'/g, "\\'")}'`;
}

function virtualDevice(cls: string, backend: string, port: string, devid: string): string {
  return [pack('device_id', devid), pack('port_id', port), pack('devclass', cls), pack('backend_domain', backend)].join(' ');
}

function exposed(ctx: CallContext, cls: string, backend: string): DeviceState[] {
  return ctx.app.devices[cls]?.[backend] ?? [];
}

function attachedTo(ctx: CallContext, cls: string, backend: string, port: string): string | undefined {
  for (const vm of ctx.app.vms.values()) {
    if ((vm.attached[cls] ?? []).some((a) => a.backend === backend && a.port === port)) return vm.name;
  }
  return undefined;
}

function serializeInfo(ctx: CallContext, cls: string, backend: string, d: DeviceState): string {
  const parts = [virtualDevice(cls, backend, d.port, d.devid)];
  if (d.description) parts.push(pack('name', d.description));
  const att = attachedTo(ctx, cls, backend, d.port);
  if (att) parts.push(pack('attachment', att));
  parts.push(pack('interfaces', d.interfaces));
  return parts.join(' ');
}

function serializeAssignment(cls: string, a: DeviceAssignmentState, frontend: string): string {
  const parts = [virtualDevice(cls, a.backend, a.port, a.devid), pack('mode', a.mode)];
  const named = a.frontend === undefined ? frontend : a.frontend;
  if (named !== null) parts.push(pack('frontend_domain', named));
  for (const [k, v] of Object.entries(a.options)) parts.push(pack(`_${k}`, v));
  return parts.join(' ');
}

/** `backend+port[:devid]` (or `+devid`, as a qrexec argument carries it). */
function parseArg(ctx: CallContext): { backend: VmState; port: string; devid: string } {
  const plus = ctx.arg.indexOf('+');
  if (plus < 0) throw new Error('not enough values to unpack');
  // qubesd looks the backend up unguarded: an unknown one is a KeyError, no reply
  const backend = ctx.app.vms.get(ctx.arg.slice(0, plus));
  if (!backend) throw new SilentClose(`no backend ${ctx.arg.slice(0, plus)}`);
  const rest = ctx.arg.slice(plus + 1);
  const sep = rest.search(/[:+]/);
  return sep < 0
    ? { backend, port: rest, devid: '*' }
    : { backend, port: rest.slice(0, sep), devid: rest.slice(sep + 1) };
}

/** A backend's devices as qubesd reads them from its QubesDB: none while it is halted. */
function visibleDevices(ctx: CallContext, cls: string, backend: VmState): DeviceState[] {
  return backend.power !== 'Halted' || backend.klass === 'AdminVM' ? exposed(ctx, cls, backend.name) : [];
}

/** The argument's device, with the identity the backend exposes when the port is known (load_device_info). */
function loadDevice(ctx: CallContext, cls: string): { backend: VmState; port: string; devid: string } {
  const dev = parseArg(ctx);
  if (dev.port === '*' || dev.devid === '*') return dev;
  const found = visibleDevices(ctx, cls, dev.backend).find((d) => d.port === dev.port);
  return found && found.devid === dev.devid ? { ...dev, devid: found.devid } : dev;
}

const KEY_CHARS = /^[0-9A-Za-z!#$%&()*+,\-./:;<>?@[\\\]^_{|}~]*$/;
const MODES = ['manual', 'ask-to-attach', 'auto-attach', 'required'];
/** The keyword arguments DeviceAssignment takes besides the device. */
const ASSIGNMENT_KEYS = new Set(['frontend_domain', 'options', 'mode']);

function checkChars(value: string, allowed: RegExp, what: string): string {
  if (allowed.test(value)) return value;
  const bad = [...new Set([...value].filter((c) => !allowed.test(c)))];
  throw err.protocol(`Invalid chars in property ${what}: {${bad.map(pyRepr).join(', ')}}`);
}

/**
 * An assignment payload read as DeviceAssignment.deserialize reads it:
 * key='value' pairs split on `='` and `' `, the device's own fields checked
 * against the argument, any other key refused as the constructor refuses it.
 */
function parseAssignment(
  payload: Buffer,
  cls: string,
  dev: { backend: VmState; port: string; devid: string },
): { mode: string; devid: string; options: Record<string, string>; frontend: string | null } {
  for (const b of payload) if (b > 0x7f) throw err.protocol(`'ascii' codec can't decode byte 0x${b.toString(16)}`);
  const text = payload.toString('latin1').trim();
  const props = new Map<string, string>();
  const options: Record<string, string> = {};
  if (text) {
    const keys: string[] = [];
    const values: string[] = [];
    let cut = text.indexOf("='");
    keys.push(checkChars((cut < 0 ? text : text.slice(0, cut)).trim(), KEY_CHARS, 'name'));
    let rest = cut < 0 ? '' : text.slice(cut + 2);
    while ((cut = rest.indexOf("='")) >= 0) {
      const valueKey = rest.slice(0, cut);
      rest = rest.slice(cut + 2);
      const sep = valueKey.lastIndexOf("' ");
      values.push(checkChars((sep < 0 ? '' : valueKey.slice(0, sep)).replace(/\\'/g, "'"), ALLOWED_PARAM, 'value'));
      keys.push(checkChars((sep < 0 ? valueKey : valueKey.slice(sep + 2)).trim(), KEY_CHARS, 'name'));
    }
    values.push(checkChars(rest.slice(0, -1).replace(/\\'/g, "'"), ALLOWED_PARAM, 'value'));
    keys.forEach((k, i) => {
      if (k.startsWith('_')) options[k.slice(1)] = values[i] ?? '';
      else props.set(k, values[i] ?? '');
    });
  }
  const expect = (key: string, want: string, text: (got: string) => string): void => {
    const got = props.get(key);
    if (got !== undefined && got !== want) throw err.protocol(text(got));
    props.delete(key);
  };
  expect('backend_domain', dev.backend.name, (got) => `Got device exposed by ${got}when expected devices from ${dev.backend.name}.`);
  expect('port_id', dev.port, (got) => `Got device from port: ${got} when expected port: ${dev.port}.`);
  expect('devclass', cls, (got) => `Got ${got} device when expected ${cls}.`);
  const devid = props.get('device_id') ?? dev.devid;
  if (dev.devid !== '*') expect('device_id', dev.devid, (got) => `Unrecognized device identity '${got}' expected '${dev.devid}'`);
  else props.delete('device_id');
  for (const k of props.keys()) {
    if (!ASSIGNMENT_KEYS.has(k)) throw err.protocol(`DeviceAssignment.__init__() got an unexpected keyword argument '${k}'`);
  }
  const mode = props.get('mode') ?? 'manual';
  if (!MODES.includes(mode)) throw err.protocol(`${pyRepr(mode)} is not a valid AssignmentMode`);
  return { mode, devid, options, frontend: props.get('frontend_domain') ?? null };
}

function pyDict(options: Record<string, string>): string {
  return `{${Object.entries(options)
    .map(([k, v]) => `'${k}': '${v}'`)
    .join(', ')}}`;
}

function classMethods(cls: string): MethodTable {
  const p = `admin.vm.device.${cls}`;
  const listing = (which: 'attached' | 'assigned') => (ctx: CallContext): string => {
    let list = ctx.dest[which][cls] ?? [];
    if (ctx.arg) {
      const plus = ctx.arg.indexOf('+');
      // qubesd unpacks arg.split('+', 1) unguarded: a ValueError, no reply
      if (plus < 0) throw new SilentClose('not enough values to unpack');
      const be = ctx.arg.slice(0, plus);
      const port = ctx.arg.slice(plus + 1);
      list = list.filter((a) => a.backend === be && a.port === port);
    }
    return list
      .map((a) => [`${a.backend}+${a.port}:${a.devid}`, serializeAssignment(cls, a, ctx.dest.name)] as const)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k} ${v}\n`)
      .join('');
  };
  return {
    [`${p}.Available`]: m(null, false, null, (ctx) => {
      // a backend's devices are read from its QubesDB: none while it is halted
      if (ctx.dest.power === 'Halted' && ctx.dest.klass !== 'AdminVM') return '';
      let devs = exposed(ctx, cls, ctx.dest.name);
      if (ctx.arg) devs = devs.filter((d) => d.port === ctx.arg);
      return devs
        .map((d) => [`${d.port}:${d.devid}`, serializeInfo(ctx, cls, ctx.dest.name, d)] as const)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k} ${v}\n`)
        .join('');
    }),
    [`${p}.Attached`]: m(null, false, null, listing('attached')),
    [`${p}.Assigned`]: m(null, false, null, listing('assigned')),
    [`${p}.Attach`]: m(true, null, null, (ctx) => {
      const { backend, port, devid } = loadDevice(ctx, cls);
      const { options } = parseAssignment(ctx.payload, cls, { backend, port, devid });
      if (ctx.dest.power === 'Halted') {
        throw new QubesError('QubesVMNotRunningError', 'VM not running, cannot attach device, do you mean `assign`?');
      }
      const dev = visibleDevices(ctx, cls, backend).find((d) => d.port === port && (devid === '*' || d.devid === devid));
      if (!dev) throw new QubesError('DeviceNotFound', `${cls} device ${backend.name}:${port} does not exist`);
      const denied = (ctx.dest.features['devices-denied'] ?? '').match(/.{7}/g) ?? [];
      if (denied.some((pat) => [...pat].every((c, i) => c === '*' || c === dev.interfaces[i]))) {
        throw err.permission('Device exposes a banned interface');
      }
      if (attachedTo(ctx, cls, backend.name, port)) throw new QubesError('DeviceAlreadyAttached', `device ${backend.name}:${port} of class ${cls} already attached to a qube`);
      const a: DeviceAssignmentState = { backend: backend.name, port, devid: dev.devid, mode: 'manual', options };
      const device = `${backend.name}:${port}:${dev.devid}`;
      const kw: [string, string][] = [
        ['device', device],
        ['options', pyDict(options)],
      ];
      ctx.app.fire(ctx.dest.name, `device-pre-attach:${cls}`, kw);
      (ctx.dest.attached[cls] ??= []).push(a);
      ctx.app.fire(ctx.dest.name, `device-attach:${cls}`, kw);
      ctx.app.save();
      return null;
    }),
    [`${p}.Detach`]: m(true, false, null, (ctx) => {
      const { backend, port } = loadDevice(ctx, cls);
      const list = ctx.dest.attached[cls] ?? [];
      const i = list.findIndex((a) => a.backend === backend.name && a.port === port);
      // DeviceNotAssigned is a KeyError: qubesd quotes its text
      if (i < 0) throw new QubesError('DeviceNotAssigned', pyRepr(`${cls} device ${port} not attached to ${ctx.dest.name}`));
      const kw: [string, string][] = [['port', `${backend.name}:${port}`]];
      ctx.app.fire(ctx.dest.name, `device-pre-detach:${cls}`, kw);
      list.splice(i, 1);
      ctx.app.fire(ctx.dest.name, `device-detach:${cls}`, kw);
      ctx.app.save();
      return null;
    }),
    [`${p}.Assign`]: m(true, true, null, (ctx) => {
      const dev = loadDevice(ctx, cls);
      const { mode, devid, options, frontend } = parseAssignment(ctx.payload, cls, dev);
      const { backend, port } = dev;
      const list = (ctx.dest.assigned[cls] ??= []);
      if (list.some((a) => a.backend === backend.name && a.port === port && a.devid === devid)) {
        throw new QubesError('DeviceAlreadyAssigned', pyRepr(`${cls} device ${backend.name}:${port}:${devid} already assigned to ${ctx.dest.name}`));
      }
      // qubesd's ValueError "Only auto-attachable devices can be assigned.": no reply
      if (mode === 'manual') throw new SilentClose('a manual assignment');
      const device = `${backend.name}:${port}:${devid}`;
      ctx.app.fire(ctx.dest.name, `device-pre-assign:${cls}`, [['device', device], ['options', pyDict(options)]]);
      list.push({ backend: backend.name, port, devid, mode, options, frontend });
      ctx.app.fire(ctx.dest.name, `device-assign:${cls}`, [['device', device], ['options', pyDict(options)]]);
      ctx.app.save();
      return null;
    }),
    [`${p}.Unassign`]: m(true, false, null, (ctx) => {
      const { backend, port, devid } = loadDevice(ctx, cls);
      const list = ctx.dest.assigned[cls] ?? [];
      const i = list.findIndex((a) => a.backend === backend.name && a.port === port && (devid === '*' || a.devid === devid));
      if (i < 0) throw new QubesError('DeviceNotAssigned', pyRepr(`${cls} device ${backend.name}:${port}:${devid} not assigned to ${ctx.dest.name}`));
      list.splice(i, 1);
      ctx.app.fire(ctx.dest.name, `device-unassign:${cls}`, [['device', `${backend.name}:${port}:${devid}`]]);
      ctx.app.save();
      return null;
    }),
  };
}

export const deviceMethods: MethodTable = Object.assign(
  { 'admin.deviceclass.List': m(false, false, true, () => DEVICE_CLASSES.map((c) => `${c}\n`).join('')) },
  ...DEVICE_CLASSES.map(classMethods),
);
