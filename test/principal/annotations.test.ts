/**
 * destructiveHint follows from what an operation can lose or expose, for
 * every tool as a client sees it: a client that auto-approves
 * non-destructive tools must never approve one that can lose the agent's
 * work or widen what a qube is exposed to.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { createServer } from '../../src/principal/server.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { COMPOSITIONS, effectsOf, type Effects } from '../../src/shared/model/compositions.js';

/** The rule: destructive exactly when it can lose something or widen exposure. */
const destructive = (fx: Effects): boolean => fx.loses !== null || fx.widens !== null;

test('every tool is annotated destructive exactly when its operation can lose something or widen exposure', async () => {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await createServer(new QrexecRunner({ client: '/nonexistent' })).connect(serverSide);
  const client = new Client({ name: 'test', version: '0' });
  await client.connect(clientSide);
  const { tools } = await client.listTools();
  await client.close();
  assert.equal(tools.length, TOOLS.length);
  const wrong: string[] = [];
  for (const tool of tools) {
    const spec = TOOLS.find((t) => t.name === tool.name);
    assert.ok(spec, tool.name);
    const fx = effectsOf(spec.operation);
    if (tool.annotations?.destructiveHint !== destructive(fx) || tool.annotations.readOnlyHint !== fx.readOnly) {
      wrong.push(`${tool.name} (destructiveHint ${String(tool.annotations?.destructiveHint)}): can lose ${fx.loses ?? 'nothing'}; widens ${fx.widens ?? 'nothing'}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('every operation and composition says why it is or is not destructive, and reads are neither', () => {
  for (const fx of [...OPERATIONS, ...COMPOSITIONS]) {
    assert.equal(fx.destructive, destructive(fx), fx.id);
    for (const text of [fx.loses, fx.widens]) assert.ok(text === null || /\w{3}/.test(text), `${fx.id}: a reason in words`);
    if (fx.readOnly) assert.deepEqual([fx.loses, fx.widens], [null, null], `${fx.id} is read-only`);
  }
});
