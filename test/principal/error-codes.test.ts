/**
 * Error codes: the principal passes dom0's code on and never makes one up,
 * a code reaches the client in structuredContent, the
 * refusal carries its own constant one, and docs/mcp-server.md lists every
 * code of the table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminResult, dom0Result } from '../../src/principal/calls.js';
import { Actionable, AgentRefusal, Failed, REFUSAL, REFUSAL_TEXT } from '../../src/principal/results.js';
import { runTool } from '../../src/principal/tool.js';
import type { ToolSpec } from '../../src/principal/tool.js';
import { ERROR_CODES } from '../../src/shared/error-codes.js';
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
