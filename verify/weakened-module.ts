/**
 * A weakened variant built from a compiled module: a copy of it with one
 * guard's text replaced, its relative imports pointed at the real modules
 * (or at the copies named in `swap`). src/ is never edited.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
let scratch: string | null = null;
let mutants = 0;

/** The compiled src module `rel` (e.g. 'dom0/service/gate-step') as its file path. */
export function compiled(rel: string): string {
  return join(here, '..', 'src', `${rel}.js`);
}

/**
 * A copy of compiled module `rel` with `guard` replaced by `weakened`, its
 * relative imports pointed at the real modules, except those named in
 * `swap` (module path -> the file to import instead). Returns its path.
 */
export function weakenedFile(rel: string, guard: string, weakened: string, swap: Readonly<Record<string, string>> = {}): string {
  return weakenedCopy(compiled(rel), guard, weakened, swap);
}

/** As weakenedFile, for any compiled module by its path (e.g. one under dist/verify). */
export function weakenedCopy(path: string, guard: string, weakened: string, swap: Readonly<Record<string, string>> = {}): string {
  const text = readFileSync(path, 'utf8');
  const name = relative(join(here, '..'), path).replace(/\.js$/, '');
  if (text.split(guard).length !== 2) throw new Error(`the guard ${JSON.stringify(guard)} is not in ${name}.js exactly once`);
  const mutated = text.replace(guard, weakened).replace(/from '(\.\.?\/[\w./-]+\.js)'/g, (_, f: string) => {
    const target = resolve(dirname(path), f);
    return `from '${pathToFileURL(swap[target] ?? target).href}'`;
  });
  scratch ??= mkdtempSync(join(tmpdir(), 'qmcp-mutant-'));
  const out = join(scratch, `${name.replace(/\//g, '-')}-${mutants++}.js`);
  writeFileSync(out, mutated);
  return out;
}

type RunService = (typeof import('../src/dom0/service/run.js'))['runService'];

/** runService from a runner that imports a gate step with `guard` replaced by `weakened`. */
export async function weakenedGateRunner(guard: string, weakened: string): Promise<RunService> {
  const step = weakenedFile('dom0/service/gate-step', guard, weakened);
  const run = weakenedFile('dom0/service/run', 'export async function runService', 'export async function runService', { [compiled('dom0/service/gate-step')]: step });
  return ((await import(pathToFileURL(run).href)) as { runService: RunService }).runService;
}

/** runService from a copy of the runner with `guard` replaced by `weakened`. */
export async function weakenedRunService(guard: string, weakened: string): Promise<RunService> {
  return ((await import(pathToFileURL(weakenedFile('dom0/service/run', guard, weakened)).href)) as { runService: RunService }).runService;
}
