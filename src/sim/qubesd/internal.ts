/** qubesd's internal socket: internal.GetSystemInfo for the qrexec policy daemon. */
import type { MethodTable } from './methods/types.js';
import { m } from './methods/types.js';

const PLAIN = /^[ !#-[\]-~]*$/;

/** JSON as Python's json.dumps writes it by default: ", " and ": " separators, ASCII only. */
export function pyJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    // printable ASCII without a quote or backslash is written as it is (most names and tags)
    if (PLAIN.test(v)) return `"${v}"`;
    return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  const entries = Object.entries(v as Record<string, unknown>);
  return `{${entries.map(([k, x]) => `${pyJson(k)}: ${pyJson(x)}`).join(', ')}}`;
}

export const internalMethods: MethodTable = {
  'internal.GetSystemInfo': m(false, false, true, (ctx) => pyJson(ctx.app.systemInfo())),
};
