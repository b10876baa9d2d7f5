/**
 * qmcp.DeviceAttach+FRONTEND: a manual block, usb or mic attachment between
 * two visible full-tier qubes, checked on one snapshot. Never PCI, never a
 * persistent or required assignment; options are allowlisted per class.
 */
import { isQubeName } from '../../shared/names.js';
import { jsonObject } from '../create/input.js';
import { QubesdError } from '../qubesd.js';
import { ActionableError } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';

/** The payload both device services take: {class, backend, port, device_id?, options?}. */
export type DeviceClass = 'block' | 'usb' | 'mic';

export interface DeviceRef {
  readonly frontend: string;
  readonly cls: DeviceClass;
  readonly backend: string;
  readonly port: string;
  /** '*' when the caller did not pin the device identity. */
  readonly deviceId: string;
  /** Option name to wire value, allowlisted. */
  readonly options: Readonly<Record<string, string>>;
}

const CLASSES: readonly DeviceClass[] = ['block', 'usb', 'mic'];
/** A port names a slot on its backend: no separator characters of the wire argument. */
const PORT = /^[A-Za-z0-9_.-]{1,64}$/;
const DEVICE_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Each class's settable options and their wire form; booleans only. */
const OPTIONS: Readonly<Record<DeviceClass, readonly string[]>> = {
  block: ['read-only'],
  usb: [],
  mic: [],
};

function options(cls: DeviceClass, raw: unknown): Record<string, string> | null {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!OPTIONS[cls].includes(k) || typeof v !== 'boolean') return null;
    out[k] = v ? 'yes' : 'no';
  }
  return out;
}

/** Parses the frontend argument and the payload; null for anything outside the allowlist. */
export function parseDeviceRef(argument: string, payload: Buffer, withOptions: boolean): DeviceRef | null {
  if (!isQubeName(argument)) return null;
  const o = jsonObject(payload, ['class', 'backend', 'port'], withOptions ? ['device_id', 'options'] : ['device_id']);
  if (!o) return null;
  const cls = o['class'];
  const backend = o['backend'];
  const port = o['port'];
  const deviceId = 'device_id' in o ? o['device_id'] : '*';
  if (typeof cls !== 'string' || !(CLASSES as readonly string[]).includes(cls)) return null;
  if (typeof backend !== 'string' || !isQubeName(backend) || backend === argument) return null;
  if (typeof port !== 'string' || !PORT.test(port)) return null;
  if (typeof deviceId !== 'string' || (deviceId !== '*' && !DEVICE_ID.test(deviceId))) return null;
  const opts = options(cls as DeviceClass, o['options']);
  if (!opts) return null;
  return { frontend: argument, cls: cls as DeviceClass, backend, port, deviceId, options: opts };
}

/** DeviceSerializer's key='value' form. */
function pack(key: string, value: string): string {
  return `${key}='${value.replace(/'/g, "\\'")}'`;
}

/** The 4.2+ assignment payload of a manual (never persistent, never required) attachment. */
export function attachPayload(d: DeviceRef): string {
  const parts = [
    pack('device_id', d.deviceId),
    pack('port_id', d.port),
    pack('devclass', d.cls),
    pack('backend_domain', d.backend),
    pack('mode', 'manual'),
    pack('frontend_domain', d.frontend),
  ];
  for (const [k, v] of Object.entries(d.options)) parts.push(pack(`_${k}`, v));
  return parts.join(' ');
}

/** Qubes failures worth telling the agent; both ends are visible, so they reveal nothing outside. */
const ACTIONABLE: Readonly<Record<string, [string, string]>> = {
  DeviceNotFound: ['device_not_found', 'the backend exposes no such device'],
  DeviceAlreadyAttached: ['device_in_use', 'the device is already attached'],
  // qubesd refuses a halted frontend with QubesVMNotRunningError ("do you mean `assign`?")
  QubesVMNotRunningError: ['not_running', 'the frontend qube is not running: start it first'],
  QubesVMNotStartedError: ['not_running', 'the frontend qube is not running: start it first'],
};

/** Maps the in-scope Qubes failures to errors the agent can act on; everything else stays a refusal. */
export function actionable(err: unknown): unknown {
  if (err instanceof QubesdError) {
    const known = ACTIONABLE[err.errorClass];
    if (known) return new ActionableError(known[0], known[1]);
  }
  return err;
}

export const deviceAttachService: ServiceSpec<DeviceRef> = {
  operation: 'device.attach',
  changesState: true,
  parse: (argument, payload) => parseDeviceRef(argument, payload, true),
  targets: (d) => [
    { name: d.frontend, tier: 'full' },
    { name: d.backend, tier: 'full' },
  ],
  keys: (d) => [d.cls],
  reads: 'named',
  async handle({ input: d, qubesd }): Promise<{ frontend: string; class: string; backend: string; port: string }> {
    const arg = `${d.backend}+${d.port}${d.deviceId === '*' ? '' : `:${d.deviceId}`}`;
    try {
      await qubesd.call(`admin.vm.device.${d.cls}.Attach`, d.frontend, arg, attachPayload(d));
    } catch (err) {
      throw actionable(err);
    }
    return { frontend: d.frontend, class: d.cls, backend: d.backend, port: d.port };
  },
};
