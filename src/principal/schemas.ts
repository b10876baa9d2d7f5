/** Zod pieces shared by the tools, bounded like dom0's own checks. */
import * as z from 'zod';
import { isQubeName } from '../shared/names.js';
import { Failed } from './results.js';

export const QubeName = z
  .string()
  .min(1)
  .max(31)
  .regex(/^[a-zA-Z][a-zA-Z0-9_.-]{0,30}$/)
  .refine((v) => isQubeName(v), { message: 'not a valid qube name' })
  .describe('qube name');

export const Label = z.enum(['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black']);

export const Netvm = z.enum(['inherit', 'none']).describe("'inherit' (the default netvm) or 'none'");

/** Absolute path inside a qube; NUL bytes cannot be part of any path. */
export const QubePath = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\/[^\0]*$/, 'an absolute path without NUL bytes');

export const Encoding = z.enum(['utf8', 'base64']);

/** Bytes as text: UTF-8 when they decode losslessly, else base64. */
export function encodeBytes(bytes: Buffer): { text: string; encoding: 'utf8' | 'base64' } {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? { text, encoding: 'utf8' } : { text: bytes.toString('base64'), encoding: 'base64' };
}

export const MIB = 1024 * 1024;

/**
 * A dom0 service's reply object with some keys renamed to the tools' field
 * names (docs/mcp-server.md); the output schema then checks the rest.
 */
export function renamed(value: unknown, names: Readonly<Record<string, string>>): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Failed();
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [Object.hasOwn(names, k) ? names[k] : k, v]));
}
