// One error taxonomy: every error class of ours derives from QmcpError and
// carries a stable code no other class has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sources } from './sources.js';
import { QubesdError } from '../../src/dom0/qubesd.js';
import { ServiceRefusal } from '../../src/dom0/service/refusal.js';
import { err as simErr } from '../../src/sim/qubesd/errors.js';
import { join, relative, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..', '..', '..');
const src = join(repo, 'src');
const BASE_FILE = 'src/shared/errors.ts';

interface ErrorClass {
  readonly file: string;
  readonly name: string;
  readonly base: string;
  readonly code: string | undefined;
  /** An abstract base (QmcpAnswerError): its concrete classes carry the codes. */
  readonly abstract?: boolean;
}

/** The classes a source text declares with an `extends`, with the first code literal in their body. */
export function errorClasses(file: string, text: string): ErrorClass[] {
  const out: ErrorClass[] = [];
  for (const m of text.matchAll(/(abstract )?class (\w+) extends (\w+) \{([\s\S]*?)\n\}/g)) {
    const code = /readonly code(?:: string)? = '([^']+)'/.exec(m[4] as string)?.[1];
    out.push({ file, name: m[2] as string, base: m[3] as string, code, ...(m[1] ? { abstract: true } : {}) });
  }
  return out;
}

/** What breaks the taxonomy, one line each. */
export function taxonomyProblems(classes: readonly ErrorClass[]): string[] {
  const problems: string[] = [];
  const byName = new Map(classes.map((c) => [c.name, c]));
  const isOurs = (c: ErrorClass): boolean => {
    for (let at: ErrorClass | undefined = c, hops = 0; at !== undefined && hops < 10; at = byName.get(at.base), hops++) {
      if (at.base === 'QmcpError') return true;
    }
    return false;
  };
  const codes = new Map<string, string>();
  const names = new Map<string, string>();
  for (const c of classes) {
    if (names.has(c.name)) problems.push(`${c.file}: ${c.name} is also a class in ${names.get(c.name)}; each error says what it is`);
    else names.set(c.name, c.file);
    if (c.base === 'Error' && c.file !== BASE_FILE) problems.push(`${c.file}: ${c.name} extends Error, not QmcpError`);
    if (!isOurs(c)) continue;
    if (c.code === undefined && c.abstract === true) continue;
    if (c.code === undefined) problems.push(`${c.file}: ${c.name} has no code of its own`);
    else if (!/^ERR_QMCP_[A-Z_]+$/.test(c.code)) problems.push(`${c.file}: ${c.name}'s code ${c.code} is not ERR_QMCP_*`);
    else if (codes.has(c.code)) problems.push(`${c.file}: ${c.name} shares the code ${c.code} with ${codes.get(c.code)}`);
    else codes.set(c.code, c.name);
  }
  return problems;
}

function repoClasses(): ErrorClass[] {
  return sources(src).flatMap((path) => errorClasses(relative(repo, path), readFileSync(path, 'utf8')));
}

test('every error class in src derives from QmcpError and has a code of its own', () => {
  const classes = repoClasses();
  assert.ok(classes.filter((c) => c.code !== undefined).length >= 25, 'the scan finds the error classes');
  assert.deepEqual(taxonomyProblems(classes), []);
});

test('the taxonomy check catches a class on Error, a class without a code, a shared code and a shared name', () => {
  const classes = repoClasses();
  const extra = [
    ...errorClasses('src/x.ts', "export class Stray extends Error {\n  readonly code = 'ERR_QMCP_STRAY';\n}"),
    ...errorClasses('src/y.ts', 'export class Silent extends QmcpError {\n  constructor() {\n    super();\n  }\n}'),
    ...errorClasses('src/z.ts', "export class Twin extends QmcpError {\n  readonly code = 'ERR_QMCP_USAGE';\n}"),
    ...errorClasses('src/w.ts', "export class UsageError extends QmcpError {\n  readonly code = 'ERR_QMCP_OTHER_USAGE';\n}"),
    ...errorClasses('src/v.ts', 'export abstract class Base extends QmcpError {\n  constructor() {\n    super();\n  }\n}'),
  ];
  const problems = taxonomyProblems([...classes, ...extra]);
  assert.ok(problems.some((p) => p.includes('Stray extends Error')), problems.join('\n'));
  assert.ok(problems.some((p) => p.includes('Silent has no code')), problems.join('\n'));
  assert.ok(problems.some((p) => p.includes('Twin shares the code ERR_QMCP_USAGE')), problems.join('\n'));
  assert.ok(problems.some((p) => p.includes('src/w.ts: UsageError is also a class in src/cli/command.ts')), problems.join('\n'));
  // an abstract base leaves the code to its concrete classes
  assert.ok(!problems.some((p) => p.includes('Base')), problems.join('\n'));
});

/** The frames an error's stack names. */
const frames = (e: Error): number => (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).length;

test("qubesd's exceptions, as dom0 reads them and as the simulator raises them, are answers: no stack, whatever the caller's depth", () => {
  const limit = Error.stackTraceLimit;
  const deep = (n: number, make: () => Error): Error => (n === 0 ? make() : deep(n - 1, make));
  for (const make of [() => new QubesdError('QubesVMNotFoundError', 'x'), () => simErr.vmNotFound('x')]) {
    const e = deep(20, make);
    assert.equal(frames(e), 0, e.stack);
    assert.match(e.stack ?? '', /^(QubesdError|QubesError): /);
  }
  // stacks are still taken elsewhere, and the limit is left as it was
  assert.ok(frames(deep(20, () => new ServiceRefusal('x'))) > 0);
  assert.equal(Error.stackTraceLimit, limit);
});
