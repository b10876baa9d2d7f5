/**
 * Error codes: the principal passes dom0's code on and never makes one up,
 * a code reaches the client in structuredContent, the
 * refusal carries its own constant one, docs/mcp-server.md lists every
 * code of the table, and every kind raised in src has its code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { adminResult, dom0Result, inQubeResult } from '../../src/principal/calls.js';
import { Actionable, AgentRefusal, Failed, REFUSAL, REFUSAL_TEXT } from '../../src/principal/results.js';
import { runTool } from '../../src/principal/tool.js';
import type { ToolSpec } from '../../src/principal/tool.js';
import { ERROR_CODES, isErrorCode } from '../../src/shared/error-codes.js';
import { decodeReply } from '../../src/shared/inqube-protocol.js';
import * as z from 'zod';

const ROOT = join(import.meta.dirname, '..', '..', '..');

const dom0Error = (error: unknown): { status: number; stdout: Buffer } => ({ status: 1, stdout: Buffer.from(`${JSON.stringify({ error })}\n`) });

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

test('a dom0 service\'s code is passed on with its message; a code not in the table is a reply not understood', () => {
  const e = thrown(() => dom0Result(dom0Error({ code: 'name_prefix', message: 'the new name must start with ai- and go on after it' })));
  assert.ok(e instanceof Actionable);
  assert.equal(e.errorCode, 'name_prefix');
  assert.equal(e.message, 'The operation failed (name_prefix): the new name must start with ai- and go on after it');
  for (const code of ['halted', 'not-a-template', '', 7, null, '__proto__', 'constructor']) {
    assert.ok(thrown(() => dom0Result(dom0Error({ code, message: 'x' }))) instanceof Failed, String(code));
  }
});

test('Qubes exception classes: in-scope ones get their codes; free memory, which other qubes decide, is the refusal', () => {
  const reply = (cls: string): { status: number; stdout: Buffer } => ({ status: 0, stdout: Buffer.from(`2\0${cls}\0\0some text\0`) });
  const halted = thrown(() => adminResult(reply('QubesVMNotHaltedError')));
  assert.ok(halted instanceof Actionable);
  assert.equal(halted.errorCode, 'not_halted');
  const other = thrown(() => adminResult(reply('QubesSomethingElse')));
  assert.ok(other instanceof Actionable);
  assert.equal(other.errorCode, 'qubes_error');
  for (const cls of ['QubesMemoryError', 'PermissionDenied', 'QubesVMNotFoundError']) assert.ok(thrown(() => adminResult(reply(cls))) instanceof AgentRefusal, cls);
});

const spec = (run: () => Promise<unknown>): ToolSpec => ({ name: 't', title: 'T', operation: 'info', description: '', input: z.object({}), output: z.object({ x: z.number() }), run });
const ctx = { qrexec: {} as never, signal: new AbortController().signal };

test('an actionable result carries its code in structuredContent; the refusal its constant code; a failure `failed`', async () => {
  const act = await runTool(spec(() => Promise.reject(new Actionable('The qube is not running.', 'not_running'))), {}, ctx);
  assert.deepEqual(act, {
    content: [{ type: 'text', text: 'The qube is not running.' }],
    structuredContent: { error: { code: 'not_running', message: 'The qube is not running.' } },
    isError: true,
  });
  assert.equal(await runTool(spec(() => Promise.reject(new AgentRefusal())), {}, ctx), REFUSAL);
  assert.deepEqual(REFUSAL.structuredContent, { error: { code: 'refused', message: REFUSAL_TEXT } });
  const failed = await runTool(spec(() => Promise.reject(new Error('secret /path'))), {}, ctx);
  assert.equal((failed.structuredContent as { error: { code: string } }).error.code, 'failed');
  assert.doesNotMatch(JSON.stringify(failed), /secret/);
  const badShape = await runTool(spec(() => Promise.resolve({ x: 'no' })), {}, ctx);
  assert.equal((badShape.structuredContent as { error: { code: string } }).error.code, 'failed');
});

test('docs/mcp-server.md lists every code of the table, and no other', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'mcp-server.md'), 'utf8');
  const listed = [...doc.matchAll(/^\| `([a-z_]+)` \| (dom0|in-qube|qubesd|server) \|/gm)].map((m) => m[1]);
  assert.deepEqual(listed.sort(), Object.keys(ERROR_CODES).sort());
});

/** Every file under `dir` (the repo's src), with its text. */
function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(ROOT, path), readFileSync(path, 'utf8'));
  }
  return out;
}

type Raised = { readonly kind: string; readonly where: string; readonly by: 'dom0' | 'principal' | 'in-qube' };

/**
 * The error kinds written as literals where they are raised: a dom0
 * service's ActionableError (and the tuples of its maps of Qubes'
 * classes), the principal's Actionable, an in-qube service's `error KIND`.
 */
function raisedKinds(files: ReadonlyMap<string, string>): Raised[] {
  const out: Raised[] = [];
  const add = (by: Raised['by'], where: string, text: string, re: RegExp): void => {
    for (const m of text.matchAll(re)) out.push({ kind: m[1] ?? '', where, by });
  };
  for (const [where, text] of files) {
    if (where.startsWith(join('src', 'qube'))) {
      add('in-qube', where, text, /reply_error ([A-Za-z0-9_-]+)/g);
      add('in-qube', where, text, /status error\\nerror ([A-Za-z0-9_-]+)/g);
    } else if (where.startsWith(join('src', 'dom0')) && where.endsWith('.ts')) {
      add('dom0', where, text, /new ActionableError\(\s*'([^']*)'/g);
      if (text.includes('new ActionableError(known[0]')) add('dom0', where, text, /^\s+\w+: \['([^']*)', '/gm);
    } else if (where.startsWith(join('src', 'principal')) && where.endsWith('.ts')) {
      add('principal', where, text, /new Actionable\((?:[^()]|\([^()]*\))*?,\s*'([^']*)'\s*\)/g);
      if (text.includes('new Actionable(known[1], known[0])')) add('principal', where, text, /^\s+\w+: \['([^']*)', '/gm);
    }
  }
  return out;
}

/** In-qube kinds that are no code on purpose: the service's own fault (`failed`), and qrexec's refusal of its call (`refused`). */
const INQUBE_UNCODED: Readonly<Record<string, 'failed' | 'refused'>> = { internal: 'failed', refused: 'refused' };

/** What the principal answers to an in-qube service's `error KIND` reply: its code, `refused` or `failed`. */
function inQubeAnswer(kind: string): string {
  const reply = Buffer.from(`qmcp 1\nstatus error\nerror ${kind}\nmessage ${Buffer.from('m').toString('base64')}\n\n`);
  const e = thrown(() => inQubeResult({ status: 0, stdout: reply }, decodeReply));
  if (e instanceof Actionable) return e.errorCode;
  if (e instanceof AgentRefusal) return 'refused';
  return e instanceof Failed ? 'failed' : `threw ${String(e)}`;
}

/** A line per kind raised in `files` that reaches the agent without its own code of the table. */
function uncoded(files: ReadonlyMap<string, string>): string[] {
  return raisedKinds(files).flatMap(({ kind, where, by }) => {
    if (by === 'in-qube') {
      const got = inQubeAnswer(kind);
      const uncodedAs = INQUBE_UNCODED[kind];
      const right = uncodedAs !== undefined ? got === uncodedAs : got === kind && isErrorCode(kind) && ERROR_CODES[kind].from === 'in-qube';
      return right ? [] : [`${where}: in-qube ${kind} answers ${got}`];
    }
    if (!isErrorCode(kind)) return [`${where}: ${kind} has no code`];
    return by === 'dom0' && ERROR_CODES[kind].from !== 'dom0' ? [`${where}: ${kind} is not a dom0 code`] : [];
  });
}

test('every error kind raised in src, by dom0, the principal or an in-qube service, reaches the agent as its own code of the table', async () => {
  const files = new Map([...sources(join('src', 'dom0')), ...sources(join('src', 'principal')), ...sources(join('src', 'qube'))]);
  const raised = new Set(raisedKinds(files).map((r) => r.kind));
  // the scan sees each kind of raise: a dom0 service's, a map of Qubes' classes, the principal's, an in-qube reply
  for (const k of ['checkpoint_lost', 'not_running', 'unknown_cursor', 'value_rejected', 'no_job', 'copy_failed', 'internal']) assert.ok(raised.has(k), k);
  assert.deepEqual(uncoded(files), []);
  // weakened: a dom0 kind in another spelling, and an in-qube kind the principal has no text for, are caught
  const weak = new Map(files);
  const checkpoint = join('src', 'dom0', 'services', 'checkpoint.ts');
  weak.set(checkpoint, (files.get(checkpoint) ?? '').replace("'checkpoint_lost'", "'checkpoint-lost'"));
  const job = join('src', 'qube', 'qmcp.Job');
  weak.set(job, `${files.get(job) ?? ''}\nreply_error no_jobs 'x'\n`);
  assert.deepEqual(uncoded(weak), [`${checkpoint}: checkpoint-lost has no code`, `${job}: in-qube no_jobs answers failed`]);
});
