import { createHash } from 'node:crypto';
import { BACKGROUND_SERVICES, ESCALATIONS, OPERATIONS, type Operation } from './capabilities.js';
import type { Settings } from './settings.js';

/** Bumped whenever the renderer's output changes for the same table. */
export const RENDERER_VERSION = 5;

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 over the capability table and the renderer version. */
export function modelHash(ops: readonly Operation[] = OPERATIONS): string {
  if (ops === OPERATIONS && ownHash !== null) return ownHash;
  const body = canonical({ operations: ops, escalations: ESCALATIONS, background: BACKGROUND_SERVICES, renderer: RENDERER_VERSION });
  const hash = createHash('sha256').update(body).digest('hex');
  if (ops === OPERATIONS) ownHash = hash;
  return hash;
}

/** This build's model hash, once computed: every call checks the installed policy against it, and the table is frozen. */
let ownHash: string | null = null;

export const MODEL_HEADER = '# qmcp-model: ';
export const SETTINGS_HEADER = '# qmcp-settings: ';

/**
 * sha256 over the settings a policy was rendered from (the model field
 * aside), so that a settings file changed without re-rendering the policy,
 * such as a half-done mode switch, is caught. The rate and the audit
 * retention are read by the services alone and never rendered, so changing
 * them needs no new policy.
 */
export function settingsDigest(settings: Settings): string {
  const { rate: _rate, auditRetention: _retention, ...rendered } = settings;
  return createHash('sha256').update(canonical({ ...rendered, model: null })).digest('hex');
}

/** The first line that starts with PREFIX, after it; found line by line without splitting the whole file (the headers are its first lines). */
function header(policyText: string, prefix: string): string | null {
  for (let at = 0; at <= policyText.length; ) {
    const end = policyText.indexOf('\n', at);
    const stop = end < 0 ? policyText.length : end;
    if (policyText.startsWith(prefix, at) && at + prefix.length <= stop) return policyText.slice(at + prefix.length, stop).trim();
    if (end < 0) break;
    at = end + 1;
  }
  return null;
}

/** The model hash a rendered policy carries, or null. */
export function policyModel(policyText: string): string | null {
  return header(policyText, MODEL_HEADER);
}

/**
 * Checks an installed policy and settings pair against this model and each
 * other; the dom0 services refuse when `problems` is not empty. DIGEST is
 * that of every principal's settings when the file holds several.
 */
export function checkInstalledModel(policyText: string, settings: Settings, digest: string = settingsDigest(settings)): { ok: boolean; problems: string[] } {
  const current = modelHash();
  const settingsModel = settings.model;
  const problems: string[] = [];
  if (header(policyText, SETTINGS_HEADER) !== digest) problems.push('installed policy was not rendered from the installed settings');
  const p = policyModel(policyText);
  if (p === null) problems.push('installed policy carries no model hash');
  else if (p !== current) problems.push(`installed policy was rendered by model ${p.slice(0, 12)}, not ${current.slice(0, 12)}`);
  if (settingsModel === null) problems.push('installed settings carry no model hash');
  else if (settingsModel !== current) problems.push(`installed settings carry model ${settingsModel.slice(0, 12)}, not ${current.slice(0, 12)}`);
  return { ok: problems.length === 0, problems };
}
