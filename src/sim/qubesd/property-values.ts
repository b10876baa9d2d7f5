/**
 * What qubesd makes of a property's new value before it is stored: the
 * payload's parse by type (qubes.property.sanitize) and each property's own
 * setter, with qubesd's exception classes and texts. A value Qubes refuses is
 * refused here too, so no test passes on a state a real machine cannot hold.
 */
import { isIPv6 } from 'node:net';
import { err, pyRepr, SilentClose } from './errors.js';
import type { PropDef } from './properties.js';
import { INSTALLED_KERNELS, POOL_NAMES } from './properties.js';
import type { PropValue } from './state.js';

/** Python's string.printable: what a str-typed property may contain. */
function printable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x20 && c < 0x7f) || (c >= 0x09 && c <= 0x0d))) return false;
  }
  return true;
}
const PY_INT = /^\s*[+-]?[0-9]+(_[0-9]+)*\s*$/;
const IPV4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const UUID_TEXT = /^(urn:uuid:)?\{?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?$/;
const USER_CHARS = /^[A-Za-z0-9_\-+,.]*$/;
const DENIED_CODE = /^([bump*][0-9a-f*]{6})*$/;

/** Properties whose value qubesd parses as a type of its own, not a str. */
const PARSED_AS: Readonly<Record<string, string>> = { ip: 'IPv4Address', ip6: 'IPv6Address', uuid: 'UUID' };

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => IPV4_OCTET.test(p) && Number(p) <= 255);
}

function parses(as: string, raw: string): boolean {
  if (as === 'IPv4Address') return isIPv4(raw);
  if (as === 'IPv6Address') return isIPv6(raw);
  return UUID_TEXT.test(raw);
}

/**
 * qubes.property.sanitize, then the read-only setter: `holderClass` is the
 * Python class qubesd names (AppVM, AdminVM, Qubes for the global ones).
 */
export function sanitizeValue(def: PropDef, payload: Buffer, holderClass: string, labels: readonly string[]): PropValue {
  for (const b of payload) if (b > 0x7f) throw err.value('Non-ASCII bytes in property value');
  const raw = payload.toString('latin1');
  let value: PropValue;
  switch (def.type) {
    case 'bool': {
      const l = raw.toLowerCase();
      if (['0', 'no', 'false', 'off'].includes(l)) value = false;
      else if (['1', 'yes', 'true', 'on'].includes(l)) value = true;
      else throw err.value(`Invalid literal for boolean property: ${pyRepr(raw)}`);
      break;
    }
    case 'int':
      if (!PY_INT.test(raw)) throw err.value('Failed to parse property value as int');
      value = Number.parseInt(raw.replace(/_/g, ''), 10);
      break;
    case 'label': {
      // a label is named, or given by its index
      const byIndex = /^[0-9]+$/.test(raw) ? labels[Number(raw) - 1] : undefined;
      if (!labels.includes(raw) && byIndex === undefined) throw err.labelNotFound(raw);
      value = byIndex ?? raw;
      break;
    }
    case 'vm':
      value = raw === '' ? null : raw;
      break;
    default: {
      // dom0's read-only identity is plain text: refused as read-only, not parsed
      const as = holderClass === 'AdminVM' && def.readOnly ? undefined : PARSED_AS[def.name];
      if (as !== undefined && !parses(as, raw)) throw err.value(`Failed to parse property value as ${as}`);
      if (as === undefined && !printable(raw)) throw err.value('Invalid characters in property value');
      value = raw;
    }
  }
  if (def.readOnly) {
    // name, qid and uuid have setters of their own, which fail outside Qubes' exceptions
    if (['name', 'qid', 'uuid'].includes(def.name) && holderClass !== 'AdminVM') throw new SilentClose(`${def.name} cannot be changed`);
    throw err.propertyValue(`property ${pyRepr(def.name)} on ${holderClass} instance cannot be set`);
  }
  return value;
}

function positive(prop: string, v: PropValue, orZero = false): void {
  if (typeof v !== 'number') return;
  if (orZero ? v < 0 : v <= 0) throw err.propertyValue(`${prop} must be positive${orZero ? ' or zero' : ''}`);
}

function keyboardLayout(v: string): void {
  const parts = v.split('+');
  if (parts.length !== 3) throw err.propertyValue('invalid number of keyboard layout parameters');
  const [layout = '', variant = '', options = ''] = parts;
  if (!/^[A-Za-z]+$/.test(layout)) throw err.propertyValue('Invalid keyboard layout provided');
  if (!/^[a-zA-Z0-9\-_]*$/.test(variant)) throw err.propertyValue('Invalid layout variant provided');
  if (!/^[a-zA-Z0-9\-_:,]*$/.test(options)) throw err.propertyValue('Invalid layout options provided');
}

/** Qubes' validate_kernel: '' means none; otherwise it must be installed in dom0. */
export function checkKernel(v: string): string {
  if (v === '') return '';
  if (v.includes('/')) throw err.propertyValue("Kernel name cannot contain '/'");
  if (!INSTALLED_KERNELS.includes(v)) throw err.propertyValue(`Kernel ${pyRepr(v)} not installed`);
  return v;
}

function deniedList(v: string): string {
  if (v === '') return '';
  if (v.length % 7 !== 0) {
    throw err.value(`Invalid length of interfaces=${pyRepr(v)} (is ${v.length}, expected multiple of 7)`);
  }
  const codes = new Set<string>();
  for (let i = 0; i < v.length; i += 7) codes.add(v.slice(i, i + 7));
  // qubesd stores the codes deduplicated and sorted
  const joined = [...codes].sort().join('');
  if (!DENIED_CODE.test(joined)) {
    throw err.propertyValue(
      'Interface code list should be in the form chhhhhhchhhhhh...,where c is one of "b", "u", "m", "p", "*" and h is a hexdigit or "*".',
    );
  }
  return joined;
}

/** A qube property's own setter (qubes/vm/qubesvm.py, mix/net.py): checks and normalises. */
export function setterValue(prop: string, value: PropValue): PropValue {
  switch (prop) {
    case 'memory':
    case 'vcpus':
    case 'qrexec_timeout':
    case 'shutdown_timeout':
    case 'stubdom_mem':
      positive(prop, value);
      return value;
    case 'maxmem':
      positive(prop, value, true);
      return value;
    case 'virt_mode': {
      const v = String(value).toLowerCase();
      if (!['hvm', 'pv', 'pvh'].includes(v)) throw err.propertyValue('Invalid virtualization mode, supported values: hvm, pv, pvh');
      return v;
    }
    case 'keyboard_layout':
      keyboardLayout(String(value));
      return value;
    case 'kernel':
      return checkKernel(String(value ?? ''));
    case 'default_user':
      if (!USER_CHARS.test(String(value))) {
        throw err.propertyValue('Username can contain only those characters: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+,.');
      }
      return value;
    case 'devices_denied':
      return deniedList(String(value ?? ''));
    case 'mac': {
      // a ValueError in qubesd: the connection closes without a reply
      const v = String(value).toLowerCase();
      if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(v)) throw new SilentClose('Invalid MAC address value');
      return v;
    }
    case 'kernelopts':
      if (String(value).length > 512) throw err.propertyValue('Kernelopts value too long (512 chars max)');
      return value;
    default:
      return value;
  }
}

/** A global property's own setter (qubes/app.py). */
export function globalSetterValue(prop: string, value: PropValue): PropValue {
  if (prop === 'default_kernel') return checkKernel(String(value ?? ''));
  if (prop.startsWith('default_pool')) {
    if (!POOL_NAMES.includes(String(value))) throw err.propertyValue('No such storage pool');
  }
  return value;
}
