/**
 * admin.deviceclass.List and admin.vm.device.CLASS.*: devices a backend
 * exposes (host state), manual attachments (while the frontend runs) and
 * persistent assignments, in the 4.2+ key='value' serialization.
 */
import { err, QubesError } from '../errors.js';
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
  const parts = [virtualDevice(cls, a.backend, a.port, a.devid), pack('mode', a.mode), pack('frontend_domain', frontend)];
  for (const [k, v] of Object.entries(a.options)) parts.push(pack(`_${k}`, v));
  return parts.join(' ');
}

/** `backend+port[:devid]` (or `+devid`, as a qrexec argument carries it). */
function parseArg(ctx: CallContext): { backend: VmState; port: string; devid: string } {
  const plus = ctx.arg.indexOf('+');
  if (plus < 0) throw new Error('not enough values to unpack');
  const backend = ctx.app.mustGet(ctx.arg.slice(0, plus));
  const rest = ctx.arg.slice(plus + 1);
  const sep = rest.search(/[:+]/);
  return sep < 0
    ? { backend, port: rest, devid: '*' }
    : { backend, port: rest.slice(0, sep), devid: rest.slice(sep + 1) };
}

/** Reads the key='value' pairs of an assignment payload. */
function parsePayload(payload: Buffer): Map<string, string> {
  for (const b of payload) if (b > 0x7f) throw err.protocol('Invalid chars in property value');
  const text = payload.toString('latin1');
  if (!ALLOWED_PARAM.test(text)) throw err.protocol('Invalid chars in property value');
  const out = new Map<string, string>();
  const re = /([^=\s]+)='((?:\\'|[^'])*)'/g;
  for (let mm = re.exec(text); mm; mm = re.exec(text)) out.set(mm[1] ?? '', (mm[2] ?? '').replace(/\\'/g, "'"));
  return out;
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
      const { backend, port, devid } = parseArg(ctx);
      const fields = parsePayload(ctx.payload);
      const visible = backend.power !== 'Halted' || backend.klass === 'AdminVM' ? exposed(ctx, cls, backend.name) : [];
      const dev = visible.find((d) => d.port === port && (devid === '*' || d.devid === devid));
      if (!dev) throw new QubesError('DeviceNotFound', `${cls} device ${backend.name}:${port} does not exist`);
      if (ctx.dest.power === 'Halted') throw err.notStarted(ctx.dest.name);
      const denied = (ctx.dest.features['devices-denied'] ?? '').match(/.{7}/g) ?? [];
      if (denied.some((pat) => [...pat].every((c, i) => c === '*' || c === dev.interfaces[i]))) {
        throw err.permission('Device exposes a banned interface');
      }
      if (attachedTo(ctx, cls, backend.name, port)) throw new QubesError('DeviceAlreadyAttached', `device ${backend.name}:${port} of class ${cls} already attached to a qube`);
      const options: Record<string, string> = {};
      for (const [k, v] of fields) if (k.startsWith('_')) options[k.slice(1)] = v;
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
      const { backend, port } = parseArg(ctx);
      const list = ctx.dest.attached[cls] ?? [];
      const i = list.findIndex((a) => a.backend === backend.name && a.port === port);
      if (i < 0) throw new QubesError('DeviceNotAssigned', `${cls} device ${backend.name}:${port} not attached to ${ctx.dest.name}`);
      const kw: [string, string][] = [['port', `${backend.name}:${port}`]];
      ctx.app.fire(ctx.dest.name, `device-pre-detach:${cls}`, kw);
      list.splice(i, 1);
      ctx.app.fire(ctx.dest.name, `device-detach:${cls}`, kw);
      ctx.app.save();
      return null;
    }),
    [`${p}.Assign`]: m(true, true, null, (ctx) => {
      const { backend, port, devid } = parseArg(ctx);
      const fields = parsePayload(ctx.payload);
      const mode = fields.get('mode') ?? 'auto-attach';
      if (!['required', 'auto-attach', 'ask-to-attach'].includes(mode)) throw err.protocol(`Invalid mode: ${mode}`);
      const list = (ctx.dest.assigned[cls] ??= []);
      if (list.some((a) => a.backend === backend.name && a.port === port && a.devid === devid)) {
        throw new QubesError('DeviceAlreadyAssigned', `${cls} device ${backend.name}:${port}:${devid} already assigned to ${ctx.dest.name}`);
      }
      const options: Record<string, string> = {};
      for (const [k, v] of fields) if (k.startsWith('_')) options[k.slice(1)] = v;
      const device = `${backend.name}:${port}:${devid}`;
      ctx.app.fire(ctx.dest.name, `device-pre-assign:${cls}`, [['device', device], ['options', pyDict(options)]]);
      list.push({ backend: backend.name, port, devid, mode, options });
      ctx.app.fire(ctx.dest.name, `device-assign:${cls}`, [['device', device], ['options', pyDict(options)]]);
      ctx.app.save();
      return null;
    }),
    [`${p}.Unassign`]: m(true, false, null, (ctx) => {
      const { backend, port, devid } = parseArg(ctx);
      const list = ctx.dest.assigned[cls] ?? [];
      const i = list.findIndex((a) => a.backend === backend.name && a.port === port && (devid === '*' || a.devid === devid));
      if (i < 0) throw new QubesError('DeviceNotAssigned', `${cls} device ${backend.name}:${port}:${devid} not assigned to ${ctx.dest.name}`);
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
