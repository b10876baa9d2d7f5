// Reads the shared policy corpus (test/fixtures/policy-corpus): policies,
// queries and, where recorded, qrexec's own answers to them.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const repo = resolve(import.meta.dirname, '..', '..', '..');
export const corpusDir = join(repo, 'test', 'fixtures', 'policy-corpus');

export interface Query {
  source: string;
  target: string;
  service: string;
  arg: string;
}

/**
 * [allow, target, user, autostart, notify] | [ask, default, targets, user, autostart, notify] |
 * [deny, notify] | [error, EXCEPTION_CLASS] where qrexec's parser raised evaluating the query.
 */
export type Row = unknown[];

export interface Case {
  name: string;
  fleet: string;
  files: Record<string, string[]>;
  queries: Query[];
  /** For a case of the rendered qmcp policy: the settings it was rendered from, over DEFAULT_SETTINGS. */
  settings?: Record<string, unknown>;
  /** qrexec's answers, or the reason it refused the whole policy. */
  expect?: Row[] | string;
}

export function loadCases(): Case[] {
  return readdirSync(corpusDir)
    .filter((f) => f.endsWith('.case.json'))
    .sort()
    .map((f) => {
      const raw = JSON.parse(readFileSync(join(corpusDir, f), 'utf8')) as {
        fleet?: string;
        settings?: Record<string, unknown>;
        files: Record<string, string[]>;
        calls: [string, string][];
        sources: string[];
        targets: string[];
        expect?: Row[] | string;
      };
      const queries: Query[] = [];
      for (const [service, arg] of raw.calls) {
        for (const source of raw.sources) for (const target of raw.targets) queries.push({ source, target, service, arg });
      }
      return {
        name: f.replace(/\.case\.json$/, ''),
        fleet: join(corpusDir, raw.fleet ?? 'fleet.json'),
        files: raw.files,
        queries,
        ...(raw.settings !== undefined ? { settings: raw.settings } : {}),
        ...(raw.expect !== undefined ? { expect: raw.expect } : {}),
      };
    });
}

/** Writes a case's files under a fresh temporary dom0 root; the caller removes it. */
export function materialise(files: Record<string, string[]>): string {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-policy-'));
  mkdirSync(join(root, 'etc', 'qubes', 'policy.d'), { recursive: true });
  for (const [rel, lines] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
  }
  return root;
}

export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}
