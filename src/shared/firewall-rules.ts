/**
 * Firewall rules in Qubes' own line syntax, the shape the agent may send:
 * `action=` first, known keys once each, `comment=` (which may hold spaces)
 * last. The principal checks it before a call leaves; dom0 checks it for a
 * plan's firewall step, whose payload it holds.
 */

const KEYS = new Set(['dst4', 'dst6', 'dsthost', 'proto', 'dstports', 'icmptype', 'specialtarget', 'expire']);
const VALUE = /^[A-Za-z0-9.:/_-]{1,255}$/;

/** At most this many rules in one replacement. */
export const MAX_RULES = 512;

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

/** The payload of admin.vm.firewall.Set for RULES: each rule followed by a newline. */
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
