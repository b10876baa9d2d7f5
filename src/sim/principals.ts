/**
 * A simulated host whose settings hold several principals
 * (docs/principals.md). The installer takes one principal's settings, so
 * the host installs the first (with the machine's keys), then writes the
 * whole list and the policy rendered from it over what it wrote, as an
 * operator would on a real machine.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InstallError } from '../dom0/install/index.js';
import { checkPolicy } from '../dom0/install/policy.js';
import { LIST_KEYS, MACHINE_KEYS, POLICY_FILE, hasFatal, modelHash, parsePrincipals, renderPolicies, settingsPath } from '../shared/model/index.js';

function isListForm(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && LIST_KEYS.some((k) => k in raw);
}

/**
 * The list-form settings this install is for (the given file, else the
 * installed one, else the initial ones), or null when they name one principal.
 */
export function listSettings(root: string, settingsFile: string | undefined, initial: Record<string, unknown> | undefined): Record<string, unknown> | null {
  const installed = settingsPath(root);
  const path = settingsFile ?? (existsSync(installed) ? installed : undefined);
  let raw: unknown = initial;
  if (path !== undefined) {
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      return null; // the installer says what is wrong with it
    }
  }
  return isListForm(raw) ? raw : null;
}

/** The first principal's settings as a single-principal file, for the installer; written into DIR. */
export function firstPrincipalFile(dir: string, list: Record<string, unknown>): string {
  const entries = list['principals'];
  const first: unknown = Array.isArray(entries) ? entries[0] : undefined;
  if (typeof first !== 'object' || first === null) throw new InstallError('settings: principals must be a non-empty list of principal settings; nothing written');
  const machine = Object.fromEntries(Object.entries(list).filter(([k]) => MACHINE_KEYS.includes(k)));
  const path = join(dir, 'first-principal.json');
  writeFileSync(path, JSON.stringify({ ...machine, ...first }));
  return path;
}

/** Writes LIST, stamped with the model hash, and the policy of every principal into ROOT. */
export function writePrincipals(root: string, list: Record<string, unknown>): void {
  const stamped = { ...list, model: modelHash() };
  const { principals, problems } = parsePrincipals(stamped);
  if (hasFatal(problems)) throw new InstallError(`settings: ${problems.filter((p) => p.fatal).map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  const policy = renderPolicies(principals);
  checkPolicy(policy);
  writeFileSync(settingsPath(root), JSON.stringify(stamped, null, 2) + '\n');
  writeFileSync(join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), policy);
}
