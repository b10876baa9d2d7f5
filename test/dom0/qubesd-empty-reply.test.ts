/**
 * qubesd answers some calls with nothing at all: it closes the connection
 * when a handler fails outside Qubes' own exceptions (a netvm of dom0, a bad
 * mac, Shutdown of dom0). dom0's Admin API client must take that as the
 * failure it is, never as an empty success. Checked against a socket that
 * closes without a byte and against the simulated qubesd, then with a
 * weakened client that reads an empty reply as success, which the same
 * checks must catch.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Qubesd, type QubesdError } from '../../src/dom0/qubesd.js';
import { weakened } from '../plans/helpers.js';
import { startTestHost, type TestHost } from '../qubesd/helpers.js';

type QubesdClass = typeof Qubesd;

let dir: string;
let silent: Server;
let host: TestHost;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qmcp-empty-reply-'));
  // reads the whole request, then closes without a byte, as qubesd does on a crash
  silent = createServer((sock) => {
    sock.on('data', () => undefined);
    sock.on('end', () => sock.end());
  });
  await new Promise<void>((resolve) => silent.listen(join(dir, 'silent.sock'), resolve));
  host = await startTestHost();
});

after(async () => {
  await host.close();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

async function failsClosed(Client: QubesdClass, socketPath: string, dest: string, arg: string, payload: string): Promise<void> {
  const client = new Client(socketPath);
  await assert.rejects(client.call('admin.vm.property.Set', dest, arg, payload), (err: unknown) => {
    assert.ok(err instanceof Error && (err as QubesdError).errorClass === 'ConnectionClosed', String(err));
    return true;
  });
}

async function checks(Client: QubesdClass): Promise<void> {
  await failsClosed(Client, join(dir, 'silent.sock'), 'work', 'netvm', 'dom0');
  // the simulated qubesd closes as qubesd does, and the value is not taken
  await failsClosed(Client, host.qubesd.socketPath, 'work', 'netvm', 'dom0');
  assert.notEqual(host.qubesd.app.get('work')?.props['netvm'], 'dom0');
  await failsClosed(Client, host.qubesd.socketPath, 'work', 'mac', 'not-a-mac');
}

test('an empty reply from qubesd is a failure to dom0, never an empty success', async () => {
  await checks(Qubesd);
});

test('the weakened client that reads an empty reply as success is caught', async () => {
  const client = weakened(
    'shared/adminapi/client.js',
    'if (!reply) {',
    'if (!reply) { resolve({ ok: true, data: Buffer.alloc(0) }); } else if (reply === null) {',
  );
  const mod = (await import(weakened('dom0/qubesd.js', null, '', { 'shared/adminapi/client.js': client }))) as { Qubesd: QubesdClass };
  await assert.rejects(checks(mod.Qubesd));
});
