// An owner killed while taking a lock, at each point of taking it, leaves no lock or
// one naming it, so the next waiter takes it at once. The owner is a child process
// that runs a copy of src/dom0/lockfile.js with a stop at that point: it says so and
// waits there until it is killed (a barrier, not a race against a timer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../src/dom0/lockfile.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { weakenedFile } from '../../verify/weakened-module.js';

const STOP = 'await globalThis.qmcpStop();';

/** The child: takes the lock with the copy at MODULE, stopping where the copy says. */
const CHILD = `
globalThis.qmcpStop = () => { process.stdout.write('stopped\\n'); return new Promise(() => {}); };
const { tryLock } = await import(process.argv[2]);
await tryLock(process.argv[3]);
process.stdout.write('held, never stopped\\n');
`;

/** Runs the child on MODULE until it stops, kills it, and returns what it left at LOCK. */
async function killedWhileTaking(module: string, dir: string, lock: string): Promise<string | null> {
  const script = join(dir, 'child.mjs');
  writeFileSync(script, CHILD);
  const child = spawn(process.execPath, [script, module, lock], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the owner never reached its stop: ${out}`)), hangBoundMs(30_000));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  assert.equal(out, 'stopped\n');
  child.kill('SIGKILL');
  await exited;
  return existsSync(lock) ? readFileSync(lock, 'utf8') : null;
}

const LINK = 'await link(whole, path);';

for (const [where, stopped] of [
  ['after its file is written, before it is linked to the lock', `${STOP} ${LINK}`],
  ['after the lock is linked, before the file beside it is removed', `${LINK} ${STOP}`],
] as const) {
  test(`an owner killed ${where} leaves no lock or one naming it; the next waiter takes it`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qmcp-lock-kill-'));
    try {
      const lock = join(dir, 'budget.lock');
      const left = await killedWhileTaking(weakenedFile('dom0/lockfile', LINK, stopped), dir, lock);
      assert.ok(left === null || /^\d+ [0-9a-f]{32}\n$/.test(left), `left ${JSON.stringify(left)}`);
      const held = await acquireLock(lock, hangBoundMs(2_000));
      await held.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('weakened: a lock opened empty and written after is left empty by an owner killed between the two', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-lock-kill-'));
  try {
    const lock = join(dir, 'budget.lock');
    const openThenWrite = [
      "const { open } = await import('node:fs/promises');",
      'let handle;',
      "try { handle = await open(path, 'wx', 0o600); } catch (err) { if (errno(err) === 'EEXIST') return false; throw err; }",
      STOP,
      'try { await handle.writeFile(content); } finally { await handle.close(); }',
      'return true;',
    ].join(' ');
    const weak = weakenedFile('dom0/lockfile', "await writeFile(whole, content, { flag: 'wx', mode: 0o600 });", openThenWrite);
    // an empty lock names no owner, so no waiter may break it until it is old
    assert.equal(await killedWhileTaking(weak, dir, lock), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
