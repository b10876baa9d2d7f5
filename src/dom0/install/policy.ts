/**
 * The policy and settings files install writes. Both come from the shared
 * model; the policy is checked with our policy engine before anything is
 * written, and both carry the model hash (the settings as a field, the
 * policy as a header) so that the services refuse a mismatched pair.
 */
import { DEFAULT_SETTINGS, POLICY_FILE, hasFatal, modelHash, parseSettings, renderPolicy } from '../../shared/model/index.js';
import type { Settings } from '../../shared/model/index.js';
import { parsePolicy } from '../../shared/policy/index.js';
import { QmcpError } from '../../shared/errors.js';

export { POLICY_FILE, renderPolicy };

/** Throws PolicySyntaxError when qrexec would not load the file. */
export function checkPolicy(text: string): void {
  parsePolicy([{ name: POLICY_FILE, text }]);
}

/** What a fresh install writes: the documented defaults, every fail-closed key explicit. */
export function defaultSettingsJson(): Record<string, unknown> {
  const { model: _model, ...rest } = DEFAULT_SETTINGS;
  return { ...structuredClone(rest) };
}

export class SettingsError extends QmcpError {
  readonly code = 'ERR_QMCP_SETTINGS';
}

/**
 * Stamps the current model hash into an operator's settings object and reads
 * it back as the services will. Throws SettingsError on a fatal problem.
 */
export function stampSettings(raw: unknown): { text: string; settings: Settings; warnings: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SettingsError('settings must be a JSON object');
  const text = JSON.stringify({ ...(raw as Record<string, unknown>), model: modelHash() }, null, 2) + '\n';
  const { settings, problems } = parseSettings(JSON.parse(text));
  const warnings = problems.map((p) => `${p.key || 'settings'}: ${p.message}`);
  if (hasFatal(problems)) throw new SettingsError(warnings.join('; '));
  return { text, settings, warnings };
}
