/** Shapes of the write services' JSON payloads (SPEC §4.15): exact keys, exact types. */
import { isQubeName } from '../../shared/names.js';
import { ActionableError } from '../service/refusal.js';

export const LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black'] as const;

/** A JSON object with only the allowed keys and every required one, else null. */
export function jsonObject(payload: Buffer, required: readonly string[], optional: readonly string[]): Record<string, unknown> | null {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const allowed = new Set([...required, ...optional]);
  if (Object.keys(o).some((k) => !allowed.has(k))) return null;
  if (required.some((k) => !(k in o))) return null;
  return o;
}

/** A name the agent may give a new qube: a qube name inside the reserved prefix. */
export function isNewName(v: unknown, prefix: string): v is string {
  return isQubeName(v) && v.startsWith(prefix) && v.length > prefix.length;
}

export function isLabel(v: unknown): v is (typeof LABELS)[number] {
  return typeof v === 'string' && (LABELS as readonly string[]).includes(v);
}

/** The agent may ask for the inherited netvm or for none, nothing else. */
export type NetvmChoice = 'inherit' | 'none';

export function netvmChoice(v: unknown): NetvmChoice | null {
  if (v === undefined || v === 'inherit') return 'inherit';
  return v === 'none' ? 'none' : null;
}

/** The common create payload: {name, label?, netvm?} plus extra keys. */
export interface NewQubeInput {
  readonly name: string;
  readonly label: string | null;
  readonly netvm: NetvmChoice;
}

/** The common payload; null when it is malformed, an ActionableError when a field the agent chose is wrong. */
export function parseNewQube(
  payload: Buffer,
  prefix: string,
  extraRequired: readonly string[] = [],
  extraOptional: readonly string[] = [],
): (NewQubeInput & { readonly extra: Record<string, unknown> }) | null {
  const o = parseMaybeNamed(payload, prefix, extraRequired, extraOptional);
  return o && o.name !== null ? { ...o, name: o.name } : null;
}

/** As parseNewQube, with the name optional (null when absent: dom0 chooses it). */
export function parseMaybeNamed(
  payload: Buffer,
  prefix: string,
  extraRequired: readonly string[] = [],
  extraOptional: readonly string[] = [],
): (Omit<NewQubeInput, 'name'> & { readonly name: string | null; readonly extra: Record<string, unknown> }) | null {
  const o = jsonObject(payload, extraRequired, ['name', 'label', 'netvm', ...extraOptional]);
  if (!o) return null;
  // mistakes in the agent's own words, told before any lookup (SPEC §4.8)
  if (o['name'] !== undefined) {
    if (!isQubeName(o['name'])) throw new ActionableError('name_invalid', 'the new name is not a valid qube name');
    if (!isNewName(o['name'], prefix)) throw new ActionableError('name_prefix', `the new name must start with ${prefix} and go on after it`);
  }
  if (o['label'] !== undefined && !isLabel(o['label'])) throw new ActionableError('unknown_label', `the label must be one of ${LABELS.join(', ')}`);
  const netvm = netvmChoice(o['netvm']);
  if (!netvm) throw new ActionableError('bad_netvm', 'netvm must be inherit or none');
  return { name: (o['name'] as string | undefined) ?? null, label: (o['label'] as string | undefined) ?? null, netvm, extra: o };
}
