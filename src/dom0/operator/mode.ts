/**
 * `qmcp dom0 mode`: switches compat / least-privilege. The settings file and
 * the policy are rewritten together from one stamped settings object, with
 * the installer's own code, so the installed pair always matches; the
 * services refuse every call while a pair does not.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditLog } from '../audit/index.js';
import { LIST_KEYS } from '../../shared/model/settings.js';
import { settingsPath } from '../../shared/model/index.js';
import type { Mode } from '../../shared/model/index.js';
import { writeAtomic } from '../install/files.js';
import { POLICY_FILE, SettingsError, renderPair } from '../install/policy.js';
import { OperatorRefusal, pickPrincipal } from './tier.js';

export const MODES: readonly Mode[] = ['compat', 'least-privilege'];

export function isMode(v: unknown): v is Mode {
  return typeof v === 'string' && (MODES as readonly string[]).includes(v);
}

export interface ModeOps {
  readonly root: string;
  readonly audit: AuditLog;
  readonly operator?: string;
  /** The principal whose mode this is; needed when the settings hold several. */
  readonly principal?: string;
}

export interface ModeResult {
  readonly mode: Mode;
  readonly previous: string | null;
  readonly changed: boolean;
}

export function policyFilePath(root: string): string {
  return join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE);
}

export async function setMode(ops: ModeOps, mode: Mode): Promise<ModeResult> {
  const record = async (result: 'ok' | 'failed', detail: string): Promise<void> => {
    try {
      await ops.audit.operator({ principal: ops.operator ?? 'dom0', operation: 'mode', keys: [mode], result, detail });
    } catch (err) {
      // a refusal stands whether or not it could be logged (nothing is installed yet, say)
      if (result === 'ok') throw err;
    }
  };
  const path = settingsPath(ops.root);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const message = `settings at ${path} unreadable (${(err as Error).message}); run qmcp dom0 install first`;
    await record('failed', message);
    throw new OperatorRefusal(message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    await record('failed', 'settings are not a JSON object');
    throw new OperatorRefusal(`settings at ${path} are not a JSON object`);
  }
  const file = raw as Record<string, unknown>;
  let entry: Record<string, unknown>;
  try {
    entry = LIST_KEYS.some((k) => k in file) ? principalEntry(file, ops.principal) : file;
  } catch (err) {
    await record('failed', (err as Error).message);
    throw err;
  }
  const previous = typeof entry['mode'] === 'string' ? entry['mode'] : null;
  let stamped: { text: string; policy: string };
  try {
    // the installer's writer, for either form, so mode writes what install would for the same settings
    stamped = renderPair(entry === file ? { ...file, mode } : { ...file, principals: (file['principals'] as unknown[]).map((e) => (e === entry ? { ...entry, mode } : e)) });
  } catch (err) {
    const message = err instanceof SettingsError ? `settings unusable: ${err.message}` : `rendered policy does not parse: ${(err as Error).message}`;
    await record('failed', message);
    throw new OperatorRefusal(`${message}; nothing written`);
  }
  const policy = stamped.policy;
  const policyPath = policyFilePath(ops.root);
  const unchanged = readOr(path) === stamped.text && readOr(policyPath) === policy;
  if (!unchanged) {
    // policy first: between the two writes the pair mismatches, and the services refuse (fail closed)
    writeAtomic(policyPath, Buffer.from(policy), 0o644);
    writeAtomic(path, Buffer.from(stamped.text), 0o644);
  }
  await record('ok', `${entry === file ? '' : `${String(entry['principal'])}: `}${previous ?? 'unset'} -> ${mode}`);
  return { mode, previous, changed: !unchanged };
}

/** The entry of PRINCIPAL in a settings file of several principals. */
function principalEntry(file: Record<string, unknown>, principal: string | undefined): Record<string, unknown> {
  const list = Array.isArray(file['principals']) ? (file['principals'] as unknown[]) : [];
  const entries = list.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && !Array.isArray(e));
  return pickPrincipal(entries, (e) => e['principal'], principal);
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
