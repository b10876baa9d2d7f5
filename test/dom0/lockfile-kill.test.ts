// An owner killed while taking a lock, at each point of taking it, leaves no lock or
// one naming it, so the next waiter takes it at once, and removes the file the owner
// wrote beside it. The owner is a child process that runs a copy of
// src/dom0/lockfile.js with a stop at that point: it says so and waits there until
// it is killed (a barrier, not a race against a timer). The lock's file operations
// are synchronous, so the stop is too: it blocks the thread, as a kill finds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../src/dom0/lockfile.js';
import type { HeldLock } from '../../src/dom0/lockfile.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { weakenedFile } from '../../verify/weakened-module.js';

const STOP = 'globalThis.qmcpStop();';

/** The child: takes the lock with the copy at MODULE, stopping where the copy says (its thread blocked there until killed; a pipe's write is synchronous). */
const CHILD = `
globalThis.qmcpStop = () => { process.stdout.write('stopped\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); };
const { tryLock } = await import(process.argv[2]);
await tryLock(process.argv[3]);
process.stdout.write('held, never stopped\\n');
`;

/** Runs the child on MODULE until it stops there; returns what kills it. */
async function stoppedWhileTaking(module: string, dir: string, lock: string): Promise<() => Promise<void>> {
  const script = join(dir, 'child.mjs');
  writeFileSync(script, CHILD);
  const child = spawn(process.execPath, [script, module, lock], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
  };
  let out = '';
  try {
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
  } catch (err) {
    // the child waits at its stop for ever: never leave it behind
    await kill();
    throw err;
  }
  return kill;
}

/** Runs the child on MODULE until it stops, kills it, and returns what it left at LOCK. */
async function killedWhileTaking(module: string, dir: string, lock: string): Promise<string | null> {
  await (await stoppedWhileTaking(module, dir, lock))();
  return existsSync(lock) ? readFileSync(lock, 'utf8') : null;
}

/** The files written beside a lock in DIR that are still there. */
function besides(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.tmp'));
}

type Acquire = typeof acquireLock;

/** acquireLock from a copy of the lock module with GUARD replaced by WEAKENED. */
async function weakenedAcquire(guard: string, weakened: string): Promise<Acquire> {
  return ((await import(weakenedFile('dom0/lockfile', guard, weakened))) as { acquireLock: Acquire }).acquireLock;
}

async function takeAndRelease(acquire: Acquire, lock: string): Promise<void> {
  const held: HeldLock = await acquire(lock, hangBoundMs(2_000));
  await held.release();
}

const LINK = 'linkSync(whole, path);';
const SWEEP = 'sweepLeftovers(path);';

for (const [where, stopped] of [
  ['after its file is written, before it is linked to the lock', `${STOP} ${LINK}`],
  ['after the lock is linked, before the file beside it is removed', `${LINK} ${STOP}`],
] as const) {
  test(`an owner killed ${where} leaves no lock or one naming it; the next waiter takes it and removes the file left beside it`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qmcp-lock-kill-'));
    try {
      const lock = join(dir, 'budget.lock');
      const left = await killedWhileTaking(weakenedFile('dom0/lockfile', LINK, stopped), dir, lock);
      assert.ok(left === null || /^\d+ [0-9a-f]{32}\n$/.test(left), `left ${JSON.stringify(left)}`);
      assert.equal(besides(dir).length, 1, 'the owner died before removing the file it wrote');
      // weakened: a taker that does not sweep takes the lock and leaves the file for ever
      await takeAndRelease(await weakenedAcquire(SWEEP, ''), lock);
      assert.equal(besides(dir).length, 1);
      await takeAndRelease(acquireLock, lock);
      assert.deepEqual(besides(dir), []);
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
      "try { writeFileSync(path, '', { flag: 'wx', mode: 0o600 }); } catch (err) { if (errno(err) === 'EEXIST') return false; throw err; }",
      STOP,
      'writeFileSync(path, content);',
      'return true;',
    ].join(' ');
    const weak = weakenedFile('dom0/lockfile', "writeFileSync(whole, content, { flag: 'wx', mode: 0o600 });", openThenWrite);
    // an empty lock names no owner, so no waiter may break it until it is old
    assert.equal(await killedWhileTaking(weak, dir, lock), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a taker leaves the file of an owner still writing it (its link would fail without it); weakened, a sweep blind to the pid is caught', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-lock-kill-'));
  const lock = join(dir, 'budget.lock');
  const kill = await stoppedWhileTaking(weakenedFile('dom0/lockfile', LINK, `${STOP} ${LINK}`), dir, lock);
  try {
    const writing = besides(dir);
    assert.equal(writing.length, 1);
    await takeAndRelease(acquireLock, lock);
    assert.deepEqual(besides(dir), writing);
    await takeAndRelease(await weakenedAcquire('!alive(Number(writer[1]))', 'true'), lock);
    assert.deepEqual(besides(dir), []);
  } finally {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
