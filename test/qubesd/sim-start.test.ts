import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { rawCall, removeDir } from './helpers.js';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'qmcp.js');

test('qmcp sim start --fleet demo serves admin.vm.List and removes its sockets on SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-simstart-'));
  const child = spawn(process.execPath, [BIN, 'sim', 'start', '--dir', dir, '--fleet', 'demo', '--no-install'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited early (${code}): ${out}`)));
    });
    const reply = (await rawCall(join(dir, 'qubesd.sock'), 'admin.vm.List+ dom0 name dom0\0')).toString('latin1');
    assert.match(reply, /^0\0dom0 class=AdminVM state=Running uuid=0{8}-0{4}-0{4}-0{4}-0{12}\n/);
    assert.match(reply, /\nmcp-control class=AppVM state=Halted uuid=/);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(join(dir, 'qubesd.sock')), false);
    assert.equal(existsSync(join(dir, 'qubesd.internal.sock')), false);
    assert.equal(existsSync(join(dir, 'state', 'qubes.json')), true);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await removeDir(dir);
  }
});
