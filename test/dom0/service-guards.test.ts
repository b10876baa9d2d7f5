import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBounded } from '../../src/dom0/service/bounded-input.js';
import { acquireSlot } from '../../src/dom0/service/slots.js';
import { readServiceCall } from '../../src/dom0/service/request.js';
import { answer, answerError, refuse } from '../../src/dom0/service/output.js';

test('bounded input: a payload within the limit is read whole', async () => {
  const s = new PassThrough();
  const p = readBounded(s, { maxBytes: 10, deadlineMs: 5000 });
  s.write('hello ');
  s.end('world'.slice(0, 4));
  assert.deepEqual(await p, Buffer.from('hello worl'));
});

test('bounded input: one byte over the limit is refused', async () => {
  const s = new PassThrough();
  const p = readBounded(s, { maxBytes: 10, deadlineMs: 5000 });
  s.end('01234567890');
  assert.equal(await p, null);
});

test('bounded input: a caller that never half-closes is cut off at the deadline', async () => {
  const s = new PassThrough();
  const p = readBounded(s, { maxBytes: 10, deadlineMs: 20 });
  s.write('x');
  assert.equal(await p, null);
  assert.equal(s.destroyed, true);
});

test('slots: at most N calls of one principal at once; a dead owner is reclaimed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-slots-'));
  try {
    const a = await acquireSlot(dir, 'mcp-control', 2);
    const b = await acquireSlot(dir, 'mcp-control', 2);
    assert.ok(a && b);
    assert.equal(await acquireSlot(dir, 'mcp-control', 2), null);
    assert.ok(await acquireSlot(dir, 'other', 2), 'slots are per principal');
    await a.release();
    const c = await acquireSlot(dir, 'mcp-control', 2);
    assert.ok(c);
    // A slot left by a process that no longer exists is taken over.
    await b.release();
    writeFileSync(join(dir, 'mcp-control.1'), `2147483646 ${'0'.repeat(32)}\n`);
    assert.ok(await acquireSlot(dir, 'mcp-control', 2));
    await c.release();
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('mcp-control')).length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('service call: read from the qrexec environment only', () => {
  assert.deepEqual(
    readServiceCall({ QREXEC_SERVICE_FULL_NAME: 'qmcp.Start+ai-x', QREXEC_REMOTE_DOMAIN: 'mcp-control', QREXEC_SERVICE_ARGUMENT: 'ai-x' }),
    { service: 'qmcp.Start', argument: 'ai-x', caller: 'mcp-control' },
  );
  assert.deepEqual(readServiceCall({ QREXEC_SERVICE_FULL_NAME: 'qmcp.List+', QREXEC_REMOTE_DOMAIN: 'mcp-control', QREXEC_SERVICE_ARGUMENT: '' }), {
    service: 'qmcp.List',
    argument: '',
    caller: 'mcp-control',
  });
  assert.equal(readServiceCall({ QREXEC_SERVICE_FULL_NAME: 'qmcp.List' }), null);
  assert.equal(readServiceCall({ QREXEC_REMOTE_DOMAIN: 'x' }), null);
  assert.equal(
    readServiceCall({ QREXEC_SERVICE_FULL_NAME: 'qmcp.Start+a', QREXEC_REMOTE_DOMAIN: 'x', QREXEC_SERVICE_ARGUMENT: 'b' }),
    null,
    'argument and full name disagree',
  );
});

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

test('outputs: refusal is exactly what qrexec prints for a denied call', async () => {
  const out = sink();
  const err = sink();
  assert.equal(await refuse({ stdout: out.stream, stderr: err.stream }), 126);
  assert.equal(out.text(), '');
  assert.equal(err.text(), 'Request refused\n');
  assert.equal(await answer({ stdout: out.stream, stderr: err.stream }, { a: 1 }), 0);
  assert.equal(await answerError({ stdout: out.stream, stderr: err.stream }, 'halted', 'qube is halted: start it first'), 1);
  assert.equal(out.text(), '{"a":1}\n{"error":{"code":"halted","message":"qube is halted: start it first"}}\n');
});
