/**
 * Firewall rules in the Admin API's line syntax, validated as qubes/firewall.py
 * does. A bad rule raises SilentClose: qubesd fails with a plain ValueError.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SilentClose } from './errors.js';

interface Rule {
  action: string;
  expire?: number;
  dsthost?: { type: 'dst4' | 'dst6' | 'dsthost'; value: string };
  proto?: string;
  specialtarget?: string;
  dstports?: [number, number];
  icmptype?: number;
  comment?: string;
}

function bad(why: string): never {
  throw new SilentClose(`bad firewall rule: ${why}`);
}

const SAFE = /^[A-Za-z0-9:;,./\-_[\]]*$/;

function parseHost(v: string): NonNullable<Rule['dsthost']> {
  if (!SAFE.test(v)) bad('strange characters in rule');
  const slashes = v.split('/').length - 1;
  if (slashes > 1) bad('Too many /');
  if (slashes === 0) {
    if (isIPv6(v)) return { type: 'dst6', value: `${v}/128` };
    if (isIPv4(v)) return { type: 'dst4', value: `${v}/32` };
    if (!/^[a-z0-9._-]+$/.test(v)) bad('Invalid hostname');
    return { type: 'dsthost', value: v };
  }
  const [host = '', len = ''] = v.split('/');
  if (!/^[0-9]+$/.test(len)) bad('bad prefix length');
  const n = Number(len);
  if (isIPv6(host)) {
    if (n > 128) bad('netmask for IPv6 must be <= 128');
    return { type: 'dst6', value: v };
  }
  if (isIPv4(host)) {
    if (n > 32) bad('netmask for IPv4 must be <= 32');
    return { type: 'dst4', value: v };
  }
  return bad(`Invalid IP address: ${host}`);
}

function parsePorts(v: string): [number, number] {
  if (!SAFE.test(v)) bad('strange characters in rule');
  const parts = v.split('-');
  if (parts.length > 2) bad(v);
  const nums = parts.map((p) => {
    if (!/^\s*[+-]?[0-9]+\s*$/.test(p)) bad(`invalid literal for int(): ${p}`);
    return Number(p);
  });
  const lo = nums[0] ?? 0;
  const hi = nums[1] ?? lo;
  if ([lo, hi].some((p) => p < 0 || p >= 65536)) bad('Ports out of range');
  if (lo > hi) bad('Invalid port range');
  return [lo, hi];
}

function parseRule(line: string): Rule {
  const at = line.indexOf('comment=');
  const options = at < 0 ? line : line.slice(0, at);
  const comment = at < 0 ? '' : line.slice(at + 'comment='.length);
  const seen = new Set<string>();
  const r: Partial<Rule> = {};
  if (comment) {
    if (!/^[A-Za-z0-9:;,./\-_[\] ]*$/.test(comment)) bad('strange characters comment');
    r.comment = comment;
    seen.add('comment');
  }
  for (const opt of options.trim().split(' ')) {
    const eq = opt.indexOf('=');
    if (eq < 0) bad('option without =');
    const key = opt.slice(0, eq);
    const value = opt.slice(eq + 1);
    const slot = key === 'dst4' || key === 'dst6' || key === 'dstname' ? 'dsthost' : key;
    if (seen.has(slot)) bad(`Option '${slot}' already set`);
    seen.add(slot);
    switch (slot) {
      case 'action':
        if (value !== 'accept' && value !== 'drop') bad(value);
        r.action = value;
        break;
      case 'proto':
        if (value !== 'tcp' && value !== 'udp' && value !== 'icmp') bad(value);
        r.proto = value;
        break;
      case 'specialtarget':
        if (value !== 'dns') bad(value);
        r.specialtarget = value;
        break;
      case 'dsthost':
        r.dsthost = parseHost(value);
        break;
      case 'dstports':
        r.dstports = parsePorts(value);
        break;
      case 'icmptype':
        if (!/^[0-9]{1,3}$/.test(value) || Number(value) > 255) bad('bad ICMP type');
        r.icmptype = Number(value);
        break;
      case 'expire':
        if (!SAFE.test(value) || !/^[0-9]+$/.test(value)) bad('bad expiration time');
        r.expire = Number(value);
        break;
      default:
        bad('Unknown firewall option');
    }
  }
  if (r.dstports && r.proto !== 'tcp' && r.proto !== 'udp') bad("dstports valid only for 'tcp' and 'udp' protocols");
  if (r.icmptype !== undefined && r.proto !== 'icmp') bad("icmptype valid only for 'icmp' protocol");
  if (!r.action) bad('action is required');
  return r as Rule;
}

/** The rule as qubesd prints it, or null once it has expired. */
function apiRule(r: Rule, nowSeconds: number): string | null {
  if (r.expire !== undefined && r.expire < nowSeconds) return null;
  const out = [`action=${r.action}`];
  if (r.expire !== undefined) out.push(`expire=${r.expire}`);
  if (r.dsthost) out.push(`${r.dsthost.type}=${r.dsthost.value}`);
  if (r.proto) out.push(`proto=${r.proto}`);
  if (r.specialtarget) out.push(`specialtarget=${r.specialtarget}`);
  if (r.dstports) out.push(`dstports=${r.dstports[0]}-${r.dstports[1]}`);
  if (r.icmptype !== undefined) out.push(`icmptype=${r.icmptype}`);
  if (r.comment !== undefined) out.push(`comment=${r.comment}`);
  return out.join(' ');
}

// eslint-disable-next-line no-control-regex -- Python's splitlines() also breaks on these
const PY_LINE_BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e]/;

/** Parses an admin.vm.firewall.Set payload into normalized rule lines; throws SilentClose on a bad rule. */
export function parseFirewall(payload: Buffer): string[] {
  for (const b of payload) if (b > 0x7f) bad('non-ASCII');
  const text = payload.toString('latin1');
  // Python's str.splitlines(): no trailing empty line
  const lines = text.split(PY_LINE_BREAK);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => {
    const r = parseRule(l);
    return apiRule(r, 0) ?? '';
  });
}

/** admin.vm.firewall.Get's reply for stored rule lines. */
export function renderFirewall(rules: readonly string[], nowSeconds: number): string {
  return rules
    .map((l) => apiRule(parseRule(l), nowSeconds))
    .filter((l): l is string => l !== null)
    .map((l) => `${l}\n`)
    .join('');
}

export const DEFAULT_FIREWALL: readonly string[] = ['action=accept'];
