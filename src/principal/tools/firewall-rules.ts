/**
 * Firewall rules in Qubes' own line syntax, checked for shape before they
 * leave the principal: `action=` first, known keys once each, `comment=`
 * (which may hold spaces) last.
 */
import * as z from 'zod';

const KEYS = new Set(['dst4', 'dst6', 'dsthost', 'proto', 'dstports', 'icmptype', 'specialtarget', 'expire']);
const VALUE = /^[A-Za-z0-9.:/_-]{1,255}$/;

export function isRule(line: string): boolean {
  if (line.length > 1024 || [...line].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return false;
  const commentAt = line.indexOf(' comment=');
  const head = commentAt < 0 ? line : line.slice(0, commentAt);
  const tokens = head.split(' ');
  if (!/^action=(accept|drop)$/.test(tokens[0] ?? '')) return false;
  const seen = new Set<string>();
  for (const token of tokens.slice(1)) {
    const eq = token.indexOf('=');
    const key = token.slice(0, eq);
    if (eq < 1 || !KEYS.has(key) || seen.has(key) || !VALUE.test(token.slice(eq + 1))) return false;
    seen.add(key);
  }
  return true;
}

export const FirewallRule = z.string().max(1024).refine(isRule, { message: "not a firewall rule in Qubes' syntax" });

/** Rules from admin.vm.firewall.Get: one per line. */
export function parseRules(data: Buffer): string[] {
  return data
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
}
