/**
 * A qube's socket asked for at once (its sandbox is coming) stays open even
 * while a poll that read the qubes before the qube existed is under way:
 * that poll would close it again. The poll is held by a barrier, not by
 * timing; a weakened copy that does not let the poll finish first is caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { QubeSockets } from '../../src/sim/qrexec/qube-sockets.js';
import { weakenedFile } from '../../verify/weakened-module.js';

type Sockets = typeof QubeSockets;
const DAY_MS = 24 * 3600 * 1000;

async function askedDuringAPoll(Sockets: Sockets): Promise<{ exists: boolean; served: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-qube-sockets-'));
  const served: string[] = [];
  let reads = 0;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let reading!: () => void;
  const read = new Promise<void>((resolve) => (reading = resolve));
  const sockets = new Sockets({
    socketDir: dir,
    // the first look at start; the second is the poll that read the qubes before 'fresh' was made
    qubes: async () => {
      if (reads++ === 0) return ['old'];
      reading();
      await held;
      return ['old'];
    },
    onConnection: (qube, sock) => {
      served.push(qube);
      sock.end();
    },
    pollMs: DAY_MS,
    log: () => undefined,
  });
  try {
    await sockets.start();
    const poll = sockets.refresh();
    await read;
    const asked = sockets.ensure('fresh');
    release();
    await Promise.all([poll, asked]);
    const exists = existsSync(sockets.socketFor('fresh'));
    if (exists) {
      await new Promise<void>((resolve, reject) => {
        const c = connect(sockets.socketFor('fresh'));
        c.on('error', reject);
        c.on('close', () => resolve());
        c.resume();
      });
    }
    return { exists, served };
  } finally {
    await sockets.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('a socket asked for while a poll that missed its qube is under way stays open and serves the qube', async () => {
  assert.deepEqual(await askedDuringAPoll(QubeSockets), { exists: true, served: ['fresh'] });
  const path = weakenedFile('sim/qrexec/qube-sockets', 'async ensure(qube) {\n        if (this.refreshing)\n            await this.refreshing;', 'async ensure(qube) {');
  const { QubeSockets: Weak } = (await import(pathToFileURL(path).href)) as { QubeSockets: Sockets };
  assert.deepEqual(await askedDuringAPoll(Weak), { exists: false, served: [] }, 'the poll closed the socket asked for');
});
