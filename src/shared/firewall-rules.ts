/**
 * Firewall rules in Qubes' own line syntax, the shape the agent may send:
 * `action=` first, known keys once each, `comment=` (which may hold spaces)
 * last, and every value as qubesd's parser (qubes/firewall.py) accepts it.
 * The principal checks it before a call leaves; qmcp.FirewallSet and a
 * plan's firewall step check it again in dom0, so nothing qubesd would
 * refuse reaches the operator's approval or qubesd.
 */
import { isIPv4, isIPv6 } from 'node:net';

const KEYS = new Set(['dst4', 'dst6', 'dsthost', 'proto', 'dstports', 'icmptype', 'specialtarget', 'expire']);
const VALUE = /^[A-Za-z0-9.:/_-]{1,255}$/;
/** What qubesd allows in a comment. */
const COMMENT = /^[A-Za-z0-9:;,./_[\] -]*$/;
/** The last second Python's datetime.fromtimestamp can represent, a day short of year 10000 for any time zone. */
const LAST_EXPIRE = 253_402_214_399;

/** At most this many rules in one replacement. */
export const MAX_RULES = 512;

/** A destination as qubesd reads it whichever of dst4, dst6 or dsthost names it: an address, a network or a host name. */
function isDestination(v: string): boolean {
  const parts = v.split('/');
  if (parts.length > 2) return false;
  const [host = '', prefix] = parts;
  if (prefix === undefined) return isIPv6(host) || isIPv4(host) || /^[a-z0-9._-]+$/.test(host);
  if (!/^[0-9]{1,3}$/.test(prefix)) return false;
  if (isIPv6(host)) return Number(prefix) <= 128;
  return isIPv4(host) && Number(prefix) <= 32;
}

function isPorts(v: string): boolean {
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(v);
  if (!m) return false;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return hi <= 65535 && lo <= hi;
}

const VALID: Readonly<Record<string, (v: string) => boolean>> = {
  dsthost: isDestination,
  proto: (v) => v === 'tcp' || v === 'udp' || v === 'icmp',
  dstports: isPorts,
  icmptype: (v) => /^[0-9]{1,3}$/.test(v) && Number(v) <= 255,
  specialtarget: (v) => v === 'dns',
  expire: (v) => /^[0-9]{1,12}$/.test(v) && Number(v) <= LAST_EXPIRE,
};

export function isRule(line: string): boolean {
  if (line.length > 1024 || [...line].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return false;
  const commentAt = line.indexOf(' comment=');
  const head = commentAt < 0 ? line : line.slice(0, commentAt);
  if (commentAt >= 0 && !COMMENT.test(line.slice(commentAt + ' comment='.length))) return false;
  const tokens = head.split(' ');
  if (!/^action=(accept|drop)$/.test(tokens[0] ?? '')) return false;
  const seen = new Map<string, string>();
  for (const token of tokens.slice(1)) {
    const eq = token.indexOf('=');
    const key = token.slice(0, eq);
    // qubesd keeps one destination, however it is named
    const slot = key === 'dst4' || key === 'dst6' ? 'dsthost' : key;
    const value = token.slice(eq + 1);
    if (eq < 1 || !KEYS.has(key) || seen.has(slot) || !VALUE.test(value) || !VALID[slot]?.(value)) return false;
    seen.set(slot, value);
  }
  // qubesd takes ports only with tcp or udp, an ICMP type only with icmp
  const proto = seen.get('proto');
  if (seen.has('dstports') && proto !== 'tcp' && proto !== 'udp') return false;
  return !seen.has('icmptype') || proto === 'icmp';
}

/** The payload of qmcp.FirewallSet and admin.vm.firewall.Set for RULES: each rule followed by a newline. */
export function encodeRules(rules: readonly string[]): Buffer {
  return Buffer.from(rules.map((r) => r + '\n').join(''), 'utf8');
}

/** Rules from admin.vm.firewall.Get: one per line. */
export function parseRules(data: Buffer): string[] {
  return data
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** The rules of a firewall.Set payload the agent may send, exactly as encodeRules writes them; null otherwise. */
export function decodeRules(payload: Buffer): string[] | null {
  const text = payload.toString('utf8');
  if (!text.endsWith('\n')) return null;
  const rules = text.slice(0, -1).split('\n');
  if (rules.length > MAX_RULES || !rules.every(isRule)) return null;
  return encodeRules(rules).equals(payload) ? rules : null;
}
