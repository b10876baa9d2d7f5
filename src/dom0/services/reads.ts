/** Admin API reads the dom0 services share, parsed into plain values. */
import type { Qubesd } from '../qubesd.js';
import { QubesdError } from '../qubesd.js';

export interface PropertyValue {
  readonly type: string;
  /** The raw text after `type=T `, '' when None or unset. */
  readonly text: string;
}

/** `admin.vm.property.GetAll`: every property the qube's class has. */
export async function allProperties(qubesd: Qubesd, qube: string): Promise<Map<string, PropertyValue>> {
  const out = new Map<string, PropertyValue>();
  for (const line of (await qubesd.call('admin.vm.property.GetAll', qube)).split('\n')) {
    if (!line) continue;
    const m = /^(\S+) default=(?:True|False) type=(\S+) ?(.*)$/s.exec(line);
    if (!m) throw new QubesdError('ProtocolError', 'unexpected property listing');
    // GetAll escapes backslash and newline inside values
    const text = (m[3] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    out.set(m[1] as string, { type: m[2] as string, text });
  }
  return out;
}

/** `admin.vm.CurrentState`'s power_state. */
export async function powerState(qubesd: Qubesd, qube: string): Promise<string> {
  const text = await qubesd.call('admin.vm.CurrentState', qube);
  const m = /(?:^| )power_state=(\S+)/.exec(text);
  if (!m) throw new QubesdError('ProtocolError', 'unexpected CurrentState reply');
  return m[1] as string;
}

/** A volume's size in bytes from `admin.vm.volume.Info`; only a safe non-negative integer passes. */
export async function volumeSize(qubesd: Qubesd, qube: string, volume: string): Promise<number> {
  const text = await qubesd.call('admin.vm.volume.Info', qube, volume);
  const m = /^size=([0-9]{1,16})$/m.exec(text);
  const size = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(size)) throw new QubesdError('ProtocolError', `volume ${volume} size unreadable`);
  return size;
}

/** One line of `admin.vm.device.CLASS.Available`: `port:devid key='value' ...`. */
export function parseDeviceLine(line: string): Map<string, string> | null {
  const space = line.indexOf(' ');
  if (space < 0) return null;
  const fields = new Map<string, string>();
  const re = /([A-Za-z_][A-Za-z0-9_]*)='((?:\\.|[^'\\])*)'/gy;
  const rest = line.slice(space + 1);
  let pos = 0;
  while (pos < rest.length) {
    if (rest[pos] === ' ') {
      pos++;
      continue;
    }
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) return null;
    fields.set(m[1] as string, (m[2] as string).replace(/\\(.)/g, '$1'));
    pos = re.lastIndex;
  }
  return fields;
}

export async function availableDevices(qubesd: Qubesd, backend: string, cls: string): Promise<Map<string, string>[]> {
  const text = await qubesd.call(`admin.vm.device.${cls}.Available`, backend);
  const out: Map<string, string>[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = parseDeviceLine(line);
    if (!fields) throw new QubesdError('ProtocolError', 'unexpected device listing');
    out.push(fields);
  }
  return out;
}
