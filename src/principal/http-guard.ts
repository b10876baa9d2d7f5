/**
 * The checks every HTTP request passes before the MCP handler sees it: Host
 * and Origin allowlists (against DNS rebinding) and the bearer token,
 * compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { openSync, fstatSync, readFileSync, closeSync } from 'node:fs';
import { QmcpError } from '../shared/errors.js';

/** A bearer token must carry at least this many bits. */
export const MIN_TOKEN_BITS = 128;

export class TokenFileError extends QmcpError {
  readonly code = 'ERR_QMCP_TOKEN_FILE';
}

/** Estimated bits of a token: 4 per character if it is hex, else 6 for the base64 alphabets. */
export function tokenBits(token: string): number {
  if (/^[0-9a-fA-F]+$/.test(token)) return token.length * 4;
  if (/^[A-Za-z0-9+/_=.~-]+$/.test(token)) return token.length * 6;
  return 0;
}

/** Reads the token file, refusing one that anyone but its owner can read or write. */
export function readTokenFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new TokenFileError('cannot open the token file');
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new TokenFileError('the token file is not a regular file');
    if ((st.mode & 0o077) !== 0) throw new TokenFileError('the token file must be readable by its owner only (chmod 600)');
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new TokenFileError('the token file must belong to the user running the server');
    const token = readFileSync(fd, 'utf8').trim();
    if (tokenBits(token) < MIN_TOKEN_BITS) throw new TokenFileError('the token must carry at least 128 bits (e.g. 32 hex digits; try: openssl rand -hex 32)');
    return token;
  } finally {
    closeSync(fd);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Compares a presented Authorization header with the token in constant time. */
export function bearerMatches(header: string | undefined, expectedDigest: Buffer): boolean {
  const presented = header !== undefined && /^Bearer [^\s]+$/.test(header) ? header.slice(7) : '';
  // compare digests so neither length nor content leaks through timing
  const ok = timingSafeEqual(digest(presented), expectedDigest);
  return ok && presented !== '';
}

export function tokenDigest(token: string): Buffer {
  return digest(token);
}

/** The Host header forms a loopback bind is reached by. */
export function defaultAllowedHosts(host: string, port: number): string[] {
  const hosts = [`${host}:${port}`];
  if (host === '127.0.0.1' || host === 'localhost') hosts.push(`127.0.0.1:${port}`, `localhost:${port}`);
  if (host === '::1' || host === '[::1]') hosts.push(`[::1]:${port}`, `localhost:${port}`);
  return [...new Set(hosts.map((h) => h.toLowerCase()))];
}
