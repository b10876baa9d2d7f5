/**
 * The listened qubes of a 2026-07-28 session: what the SDK's entry
 * acknowledged, until the client cancels the listen or the entry ends it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUBSCRIPTION_ID_META_KEY, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { ListenWatch, MAX_LISTENED_PER_LISTEN } from '../../src/principal/listens.js';
import { weakened } from '../plans/helpers.js';

/** A wire that takes what is sent and lets the test play the client. */
function fakeWire(): Transport & { inbound(message: JSONRPCMessage): void } {
  const wire: Transport & { inbound(message: JSONRPCMessage): void } = {
    start: () => Promise.resolve(),
    send: () => Promise.resolve(),
    close: () => Promise.resolve(),
    inbound: (message) => wire.onmessage?.(message),
  };
  return wire;
}

const ack = (id: string | number, notifications: Record<string, unknown>): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/subscriptions/acknowledged',
  params: { notifications, _meta: { [SUBSCRIPTION_ID_META_KEY]: id } },
});

async function check(Watch: typeof ListenWatch): Promise<string[]> {
  const wire = fakeWire();
  const watch = new Watch(wire);
  await watch.start();
  let started = 0;
  watch.onListen(() => started++);
  await watch.send(ack(1, { resourceSubscriptions: ['qube://ai-a', 'file:///etc/passwd', 'qube://ai-b'] }));
  await watch.send(ack('two', { resourceSubscriptions: ['qube://ai-c'], resourcesListChanged: true }));
  await watch.send(ack(3, { toolsListChanged: true }));
  const failures: string[] = [];
  const expect = (want: string[], what: string): void => {
    if ([...watch.qubes()].sort().join() !== want.join()) failures.push(`${what}: ${[...watch.qubes()].sort().join()}`);
  };
  expect(['ai-a', 'ai-b', 'ai-c'], 'acknowledged');
  if (started !== 2) failures.push(`the feed started ${started} times`);
  wire.inbound({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
  expect(['ai-c'], 'after a cancel');
  await watch.send({ jsonrpc: '2.0', id: 'two', result: { resultType: 'complete' } });
  expect([], 'after the graceful close');
  await watch.send(ack(4, { resourceSubscriptions: Array.from({ length: MAX_LISTENED_PER_LISTEN + 5 }, (_, i) => `qube://ai-${i}`) }));
  if (watch.qubes().size !== MAX_LISTENED_PER_LISTEN) failures.push(`a long listen keeps ${watch.qubes().size}`);
  return failures;
}

test('a listen stands for its qubes until cancelled or closed, bounded', async () => {
  assert.deepEqual(await check(ListenWatch), []);
  // weakened: a cancelled listen is still told
  const deaf = (await import(weakened('principal/listens.js', 'this.listens.delete(id);', 'void id;'))) as { ListenWatch: typeof ListenWatch };
  assert.equal((await check(deaf.ListenWatch))[0], 'after a cancel: ai-a,ai-b,ai-c');
});
