import { createHash } from 'node:crypto';
import { BACKGROUND_SERVICES, ESCALATIONS, OPERATIONS } from './capabilities.js';

/** Bumped whenever the renderer's output changes for the same table. */
export const RENDERER_VERSION = 1;

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 over the capability table and the renderer version. */
export function modelHash(): string {
  const body = canonical({ operations: OPERATIONS, escalations: ESCALATIONS, background: BACKGROUND_SERVICES, renderer: RENDERER_VERSION });
  return createHash('sha256').update(body).digest('hex');
}

export const MODEL_HEADER = '# qmcp-model: ';

/** The model hash a rendered policy carries, or null. */
export function policyModel(policyText: string): string | null {
  for (const line of policyText.split('\n')) {
    if (line.startsWith(MODEL_HEADER)) return line.slice(MODEL_HEADER.length).trim();
  }
  return null;
}

/**
 * Checks an installed policy and settings pair against this model; the dom0
 * services refuse when `problems` is not empty.
 */
export function checkInstalledModel(policyText: string, settingsModel: string | null): { ok: boolean; problems: string[] } {
  const current = modelHash();
  const problems: string[] = [];
  const p = policyModel(policyText);
  if (p === null) problems.push('installed policy carries no model hash');
  else if (p !== current) problems.push(`installed policy was rendered by model ${p.slice(0, 12)}, not ${current.slice(0, 12)}`);
  if (settingsModel === null) problems.push('installed settings carry no model hash');
  else if (settingsModel !== current) problems.push(`installed settings carry model ${settingsModel.slice(0, 12)}, not ${current.slice(0, 12)}`);
  return { ok: problems.length === 0, problems };
}
