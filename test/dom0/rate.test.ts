// The per-caller rate limit, in both service modes: the same bucket decides
// the same calls in memory (resident) and in a file (per-call); calls over
// it are refused before any other work and recorded as counted refusals; a
// bucket is its caller's alone; the file's lock makes concurrent calls take
// one token each; a count past its window reaches the log at anyone's next
// call; a per-call call reads the settings once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { initAuditLog, verifyAudit } from '../../src/dom0/audit/index.js';
import { parseLine } from '../../src/dom0/audit/entry.js';
import { dom0Host, serveDom0Call } from '../../src/dom0/service/compose.js';
import { fileRateLimiter, memoryRateLimiter } from '../../src/dom0/service/rate.js';
import type { RateLimiter } from '../../src/dom0/service/rate.js';
import { SETTINGS_PATH } from '../../src/shared/model/index.js';
import { weakenedFile } from '../../verify/weakened-module.js';

const RATE = { perSecond: 2, burst: 10 };

function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-rate-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** 15 calls at t=0, 3 at t=1 s, 1 at t=10 s, from one caller; the admissions. */
async function pattern(make: (now: () => number) => RateLimiter): Promise<boolean[]> {
  let t = 1_000_000;
  const limiter = make(() => t);
  const out: boolean[] = [];
  for (const [at, n] of [[0, 15], [1000, 3], [10_000, 1]] as const) {
    t = 1_000_000 + at;
    for (let i = 0; i < n; i++) out.push((await limiter.take('mcp-control')).admit);
  }
  return out;
}

test('the bucket admits its burst, then its rate; resident and per-call modes decide alike', async () => {
  const s = scratch();
  try {
    const memory = await pattern((now) => memoryRateLimiter(RATE, now));
    const file = await pattern((now) => fileRateLimiter(RATE, { dir: s.dir, windowMs: 5000, lockTimeoutMs: 1000, now }));
    const expected = [...Array(10).fill(true), ...Array(5).fill(false), true, true, false, true];
    assert.deepEqual(memory, expected);
    assert.deepEqual(file, expected);
  } finally {
    s.done();
  }
});

test("a bucket is its caller's alone: another caller's flood leaves it full", async () => {
  const s = scratch();
  try {
    for (const limiter of [memoryRateLimiter(RATE, () => 0), fileRateLimiter(RATE, { dir: s.dir, windowMs: 5000, lockTimeoutMs: 1000, now: () => 0 })]) {
      for (let i = 0; i < 50; i++) await limiter.take('ai-sandbox');
      const admitted = [];
      for (let i = 0; i < 10; i++) admitted.push((await limiter.take('mcp-control')).admit);
      assert.deepEqual(admitted, Array(10).fill(true));
    }
  } finally {
    s.done();
  }
});

test('per-call mode: refused calls are counted in the bucket file and due at the next admitted call or after the window; a broken file is an empty bucket', async () => {
  const s = scratch();
  try {
    let t = 0;
    const limiter = fileRateLimiter(RATE, { dir: s.dir, windowMs: 5000, lockTimeoutMs: 1000, now: () => t });
    const dues = [];
    for (let i = 0; i < 13; i++) dues.push((await limiter.take('mcp-control')).due);
    assert.deepEqual(dues, Array(13).fill(0));
    t = 1000; // two tokens back: the first admitted call carries the three refused ones
    assert.deepEqual(await limiter.take('mcp-control'), { admit: true, due: 3 });
    for (let i = 0; i < 2; i++) await limiter.take('mcp-control');
    t = 1000 + 5000 - 1;
    const late = await limiter.take('mcp-control');
    assert.equal(late.admit, true);
    writeFileSync(join(s.dir, 'mcp-control'), 'not json');
    assert.deepEqual(await limiter.take('mcp-control'), { admit: false, due: 0 });
    assert.deepEqual(await limiter.take('../etc'), { admit: false, due: 0 });
  } finally {
    s.done();
  }
});

test('per-call mode: concurrent calls behind a barrier admit exactly the burst; without the lock they do not', async () => {
  const s = scratch();
  try {
    const race = async (make: typeof fileRateLimiter, dir: string): Promise<number> => {
      mkdirSync(dir);
      const limiter = make(RATE, { dir, windowMs: 5000, lockTimeoutMs: 30_000, now: () => 0 });
      let open!: () => void;
      const barrier = new Promise<void>((r) => (open = r));
      const calls = Array.from({ length: 30 }, async () => {
        await barrier;
        return (await limiter.take('mcp-control')).admit;
      });
      open();
      return (await Promise.all(calls)).filter(Boolean).length;
    };
    assert.equal(await race(fileRateLimiter, join(s.dir, 'real')), RATE.burst);
    const weak = weakenedFile('dom0/service/rate', 'return withLock(`${path}.lock`, opts.lockTimeoutMs, async () => {', 'return (async (f) => f())(async () => {');
    const { fileRateLimiter: unlocked } = (await import(pathToFileURL(weak).href)) as { fileRateLimiter: typeof fileRateLimiter };
    // unlocked, the calls read one state and overwrite each other's: tokens are lost or granted twice
    assert.notEqual(await race(unlocked, join(s.dir, 'weak')), RATE.burst, 'the unlocked bucket still admitted exactly its burst');
  } finally {
    s.done();
  }
});

/** A simulated root with an audit log, the given settings and no policy: every admitted call is refused for its settings. */
function rootWith(settings: unknown): { root: string; done: () => void } {
  const s = scratch();
  mkdirSync(join(s.dir, 'etc', 'qmcp'), { recursive: true });
  writeFileSync(join(s.dir, SETTINGS_PATH), JSON.stringify(settings));
  return { root: s.dir, done: s.done };
}

function callInfo(host: ReturnType<typeof dom0Host>): Promise<number> {
  return callInfoWith(serveDom0Call, host);
}

/** One qmcp.Info call from mcp-control, through SERVE. */
async function callInfoWith(serve: typeof serveDom0Call, host: ReturnType<typeof dom0Host>): Promise<number> {
  const stdin = new PassThrough();
  stdin.end();
  const env = { QREXEC_SERVICE_FULL_NAME: 'qmcp.Info+ai-a', QREXEC_REMOTE_DOMAIN: 'mcp-control', QREXEC_SERVICE_ARGUMENT: 'ai-a' };
  return serve(host, { env, stdin, io: { stdout: new PassThrough(), stderr: new PassThrough() }, onStop: () => () => undefined });
}

test('both modes: a call over the rate is refused before its settings are read, and recorded as a counted refusal', async () => {
  for (const mode of ['resident', 'per-call'] as const) {
    const r = rootWith({ rate: { perSecond: 1, burst: 10 } });
    try {
      await initAuditLog(r.root);
      const journal: string[] = [];
      const host = { ...dom0Host({ QMCP_ROOT: r.root, QMCP_QUBESD_SOCKET: join(r.root, 'none.sock') }, mode), log: (m: string) => void journal.push(m) };
      const CALLS = 30;
      const statuses = [];
      for (let i = 0; i < CALLS; i++) statuses.push(await callInfo(host));
      assert.deepEqual(statuses, Array(CALLS).fill(126), mode);
      await host.audit.aggregator?.stop();
      // settings are read (and found unusable) by admitted calls only: the burst, and what refilled meanwhile (1/s)
      const admitted = journal.filter((m) => /settings unusable/.test(m)).length;
      assert.ok(admitted >= 10 && admitted < CALLS, `${mode}: ${admitted} admitted`);
      const entries = readFileSync(join(r.root, 'var', 'log', 'qmcp', 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => {
        const p = parseLine(l);
        assert.ok('entry' in p);
        return p.entry;
      });
      // every call over the rate is counted: in the log, or still pending in the per-call bucket file
      const logged = entries.filter((e) => e.operation === 'rate-limit').reduce((n, e) => n + (e.count ?? 1), 0);
      const bucket = join(r.root, 'var', 'lib', 'qmcp', 'rate', 'mcp-control');
      const pending = mode === 'per-call' ? (JSON.parse(readFileSync(bucket, 'utf8')) as { refused: number }).refused : 0;
      assert.equal(logged + pending, CALLS - admitted, mode);
      if (mode === 'resident') assert.ok(entries.filter((e) => e.operation === 'rate-limit').length < CALLS - admitted || CALLS - admitted === 1, 'refusals aggregated');
      assert.equal((await verifyAudit({ root: r.root })).valid, true);
    } finally {
      r.done();
    }
  }
});

test("per-call mode: a caller's count past its window is taken by overdue(), once, and not before", async () => {
  const s = scratch();
  const dues = async (make: typeof fileRateLimiter, dir: string): Promise<unknown[]> => {
    let t = 0;
    const limiter = make(RATE, { dir: join(s.dir, dir), windowMs: 5000, lockTimeoutMs: 1000, now: () => t });
    for (let i = 0; i < 13; i++) await limiter.take('ai-flood');
    await limiter.take('mcp-control');
    const inside = await limiter.overdue?.();
    t = 5000;
    return [inside, await limiter.overdue?.(), await limiter.overdue?.(), (JSON.parse(readFileSync(join(s.dir, dir, 'ai-flood'), 'utf8')) as { refused: number }).refused];
  };
  try {
    // nothing inside the window; past it, the count once, and the bucket's count back to 0
    assert.deepEqual(await dues(fileRateLimiter, 'real'), [[], [{ caller: 'ai-flood', count: 3 }], [], 0]);
    // weakened: a count is taken inside its window, so a flood costs a line per call again
    const weak = weakenedFile('dom0/service/rate', 's.refused > 0 && t - s.since >= opts.windowMs', 's.refused > 0');
    const { fileRateLimiter: eager } = (await import(pathToFileURL(weak).href)) as { fileRateLimiter: typeof fileRateLimiter };
    assert.deepEqual((await dues(eager, 'weak'))[0], [{ caller: 'ai-flood', count: 3 }]);
  } finally {
    s.done();
  }
});

/** How often the settings file is read while RUN runs. */
async function settingsReads(run: () => Promise<unknown>): Promise<number> {
  const real = fs.readFileSync;
  let reads = 0;
  fs.readFileSync = ((path: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (String(path).endsWith(SETTINGS_PATH)) reads++;
    return (real as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  // ES module imports of node:fs see the patch only once synced
  syncBuiltinESMExports();
  try {
    await run();
  } finally {
    fs.readFileSync = real;
    syncBuiltinESMExports();
  }
  return reads;
}

test('per-call mode: one call reads the settings once, and writes the counts of other callers past their window', async () => {
  type Compose = typeof import('../../src/dom0/service/compose.js');
  const variant = async (guard: string | null, to = ''): Promise<Compose> =>
    guard === null ? { dom0Host, serveDom0Call } as Compose : ((await import(pathToFileURL(weakenedFile('dom0/service/compose', guard, to)).href)) as Compose);
  const run = async (compose: Compose): Promise<{ reads: number; flood: number; pending: number; valid: boolean }> => {
    const r = rootWith({ rate: { perSecond: 1, burst: 10 } });
    try {
      await initAuditLog(r.root);
      // a caller that was refused 4 times long ago and has not called since
      const rate = join(r.root, 'var', 'lib', 'qmcp', 'rate');
      mkdirSync(rate, { recursive: true });
      writeFileSync(join(rate, 'ai-flood'), JSON.stringify({ tokens: 0, at: 0, refused: 4, since: 0 }));
      const reads = await settingsReads(async () => {
        const host = { ...compose.dom0Host({ QMCP_ROOT: r.root, QMCP_QUBESD_SOCKET: join(r.root, 'none.sock') }, 'per-call'), log: () => undefined };
        assert.equal(await callInfoWith(compose.serveDom0Call, host), 126);
      });
      const entries = readFileSync(join(r.root, 'var', 'log', 'qmcp', 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => {
        const p = parseLine(l);
        assert.ok('entry' in p);
        return p.entry;
      });
      const flood = entries.filter((e) => e.principal === 'ai-flood' && e.operation === 'rate-limit').reduce((n, e) => n + (e.count ?? 1), 0);
      const pending = (JSON.parse(readFileSync(join(rate, 'ai-flood'), 'utf8')) as { refused: number }).refused;
      return { reads, flood, pending, valid: (await verifyAudit({ root: r.root })).valid };
    } finally {
      r.done();
    }
  };
  assert.deepEqual(await run(await variant(null)), { reads: 1, flood: 4, pending: 0, valid: true });
  // weakened: the admitted call reads the settings again
  assert.equal((await run(await variant('loadDom0Config(root, (m) => log(m), host.settings, caller)', 'loadDom0Config(root, (m) => log(m), undefined, caller)'))).reads, 2);
  // weakened: only the caller's own calls write its count, so it waits for a call that may never come
  const stuck = await run(await variant('(await host.limiter.overdue?.()) ?? []', '[]'));
  assert.deepEqual([stuck.flood, stuck.pending], [0, 4]);
});
