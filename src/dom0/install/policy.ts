/**
 * The policy and settings files install writes. Both come from the shared
 * model; the policy is checked with our policy engine before anything is
 * written, and both carry the model hash (the settings as a field, the
 * policy as a header) so that the services refuse a mismatched pair.
 */
import { DEFAULT_SETTINGS, POLICY_FILE, hasFatal, modelHash, parsePrincipals, parseSettings, renderPolicies, renderPolicy } from '../../shared/model/index.js';
import type { Principals, Settings, SettingsProblem } from '../../shared/model/index.js';
import { parsePolicy } from '../../shared/policy/index.js';
import { QmcpError } from '../../shared/errors.js';

export { POLICY_FILE, renderPolicies, renderPolicy };

/** Throws PolicySyntaxError when qrexec would not load the file. */
export function checkPolicy(text: string): void {
  parsePolicy([{ name: POLICY_FILE, text }]);
}

/** What a fresh install writes: the documented defaults, every fail-closed key explicit. */
export function defaultSettingsJson(): Record<string, unknown> {
  const { model: _model, ...rest } = DEFAULT_SETTINGS;
  // the file's form of a lease, not the parsed one
  return { ...structuredClone(rest), lease: { default: 'none', max: 'none' } };
}

export class SettingsError extends QmcpError {
  readonly code = 'ERR_QMCP_SETTINGS';
}

/** RAW with the current model hash, as the file's text, read back by PARSE; throws SettingsError on a fatal problem. */
function stamp<R extends { problems: SettingsProblem[] }>(raw: unknown, parse: (json: unknown) => R): { text: string; reading: R; warnings: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SettingsError('settings must be a JSON object');
  const text = JSON.stringify({ ...(raw as Record<string, unknown>), model: modelHash() }, null, 2) + '\n';
  const reading = parse(JSON.parse(text));
  const warnings = reading.problems.map((p) => `${p.key || 'settings'}: ${p.message}`);
  if (hasFatal(reading.problems)) throw new SettingsError(reading.problems.filter((p) => p.fatal).map((p) => `${p.key || 'settings'}: ${p.message}`).join('; '));
  return { text, reading, warnings };
}

/**
 * Stamps the current model hash into an operator's single-principal
 * settings object and reads it back as the services will. Throws
 * SettingsError on a fatal problem.
 */
export function stampSettings(raw: unknown): { text: string; settings: Settings; warnings: string[] } {
  const { text, reading, warnings } = stamp(raw, parseSettings);
  return { text, settings: reading.settings, warnings };
}

/** As stampSettings, for a settings object of either form (docs/principals.md): every principal it names. */
export function stampPrincipals(raw: unknown): { text: string; principals: Principals; warnings: string[] } {
  const { text, reading, warnings } = stamp(raw, parsePrincipals);
  return { text, principals: reading.principals, warnings };
}

/**
 * The settings file and the policy for RAW, of either form: the one writer
 * of the pair, so install, `qmcp dom0 mode` and `qmcp dom0 principal`
 * write the same bytes for the same settings. Throws SettingsError on a
 * fatal problem, PolicySyntaxError when qrexec would not load the policy.
 */
export function renderPair(raw: unknown): { text: string; principals: Principals; policy: string; warnings: string[] } {
  const { text, principals, warnings } = stampPrincipals(raw);
  const policy = renderPolicies(principals);
  checkPolicy(policy);
  return { text, principals, policy, warnings };
}
