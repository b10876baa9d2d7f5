// The resident front end: the descriptor read as the qrexec environment,
// and each call bounded and ended on its own. Each guard has a weakened
// variant (a copy of the compiled server with the guard removed) that the
// same check catches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_DESCRIPTOR_BYTES, descriptorEnv } from '../../src/dom0/resident/descriptor.js';
import type { ResidentOptions, Resident } from '../../src/dom0/resident/server.js';
import { startResident } from '../../src/dom0/resident/server.js';
import type { Dom0CallIo } from '../../src/dom0/service/compose.js';
import { decodeReply } from '../../src/shared/service-reply.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { weakenedFile } from '../../verify/weakened-module.js';

type Start = (o: ResidentOptions) => Resident;

async function weakened(guard: string, replacement: string): Promise<Start> {
  return ((await import(pathToFileURL(weakenedFile('dom0/resident/server', guard, replacement)).href)) as { startResident: Start }).startResident;
}

/** A promise with its resolve, for barriers between a test and a call it holds. */
function barrier(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Resolves to `value`, or to 'hung' once the hang bound passes. */
function orHung<T>(p: Promise<T>, idleMs = 20_000): Promise<T | 'hung'> {
  return Promise.race([p, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), hangBoundMs(idleMs)).unref())]);
}

interface Served {
  readonly resident: Resident;
  readonly server: Server;
  readonly path: string;
  readonly journal: string[];
  close(): Promise<void>;
}

async function serve(start: Start, handler: (c: Dom0CallIo) => Promise<number>, limits: ResidentOptions['limits'] = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-resident-'));
  const path = join(dir, 'qmcp.Test');
  const journal: string[] = [];
  const resident = start({ serve: handler, log: (m) => journal.push(m), limits });
  const server = await resident.listen({ path });
  return {
    resident,
    server,
    path,
    journal,
    async close() {
      await resident.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One call as qrexec makes it: the descriptor and its NUL, the payload, a half-close (unless `hold`); resolves to all it read. */
function call(path: string, descriptor: string | Buffer, payload = '', hold = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect({ path, allowHalfOpen: true }, () => {
      sock.write(typeof descriptor === 'string' ? Buffer.from(`${descriptor}\0`, 'latin1') : descriptor);
      if (payload) sock.write(payload);
      if (!hold) sock.end();
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    // the reply is whole at the service's end of it; then the caller goes, as qrexec does
    const done = (): void => {
      sock.destroy();
      resolve(Buffer.concat(chunks));
    };
    sock.on('end', done);
    sock.on('close', done);
  });
}

const REFUSAL = '\x00126';
const DESC = 'qmcp.Test+arg mcp-control keyword adminvm';

/** Writes what it was told, as the composition would: the environment's call and the payload. */
async function echo(c: Dom0CallIo): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of c.stdin) chunks.push(chunk as Buffer);
  const { QREXEC_SERVICE_FULL_NAME: full, QREXEC_REMOTE_DOMAIN: from, QREXEC_SERVICE_ARGUMENT: arg } = c.env;
  await new Promise<void>((resolve) => c.io.stdout.write(JSON.stringify({ full, from, arg, payload: Buffer.concat(chunks).toString() }) + '\n', () => resolve()));
  return 0;
}

test('descriptor: read as the environment qrexec gives an executable service', () => {
  assert.deepEqual(descriptorEnv(Buffer.from('qmcp.Start+ai-x mcp-control keyword adminvm')), {
    QREXEC_SERVICE_FULL_NAME: 'qmcp.Start+ai-x',
    QREXEC_REMOTE_DOMAIN: 'mcp-control',
    QREXEC_SERVICE_ARGUMENT: 'ai-x',
    QREXEC_REQUESTED_TARGET_TYPE: 'keyword',
    QREXEC_REQUESTED_TARGET_KEYWORD: 'adminvm',
  });
  assert.deepEqual(descriptorEnv(Buffer.from('qmcp.List+ mcp-control name dom0')), {
    QREXEC_SERVICE_FULL_NAME: 'qmcp.List+',
    QREXEC_REMOTE_DOMAIN: 'mcp-control',
    QREXEC_SERVICE_ARGUMENT: '',
    QREXEC_REQUESTED_TARGET_TYPE: 'name',
    QREXEC_REQUESTED_TARGET: 'dom0',
  });
  assert.equal(descriptorEnv(Buffer.from('qmcp.List+ mcp-control'))?.['QREXEC_REMOTE_DOMAIN'], 'mcp-control');
  // an argument with a space (qrexec never sends one) reaches the runner, which refuses it as any malformed argument, audited
  assert.equal(descriptorEnv(Buffer.from('qmcp.Start+ai box mcp-control keyword adminvm'))?.['QREXEC_SERVICE_ARGUMENT'], 'ai box');
  for (const bad of ['', 'qmcp.List', 'qmcp.List mcp-control', '+x mcp-control', 'qmcp.List+ mcp-control keyword', 'qmcp.List+  mcp-control', 'qmcp.List+ mcp-control other dom0', 'qmcp.List+ a b c d e', `qmcp.List+${'x'.repeat(1100)} a`]) {
    assert.equal(descriptorEnv(Buffer.from(bad)), null, JSON.stringify(bad.slice(0, 40)));
  }
});

test('resident: a call gets the descriptor as its environment, its payload as stdin, and a status trailer', async () => {
  const s = await serve(startResident, echo);
  try {
    const reply = await call(s.path, DESC, 'hello');
    const d = decodeReply(reply);
    assert.ok(d);
    assert.equal(d.status, 0);
    assert.deepEqual(JSON.parse(d.stdout.toString()), { full: 'qmcp.Test+arg', from: 'mcp-control', arg: 'arg', payload: 'hello' });
    // a descriptor that is not one qrexec writes: the refusal, without serving
    assert.equal((await call(s.path, 'qmcp.Test+arg')).toString('latin1'), REFUSAL);
  } finally {
    await s.close();
  }
});

/** A handler that throws for one service and holds another behind a barrier. */
function thrower(held: ReturnType<typeof barrier>, entered: ReturnType<typeof barrier>): (c: Dom0CallIo) => Promise<number> {
  return async (c) => {
    if (c.env['QREXEC_SERVICE_FULL_NAME'] === 'qmcp.Throw+') throw new Error('injected');
    entered.open();
    await held.wait;
    return echo(c);
  };
}

async function exceptionCase(start: Start): Promise<{ thrown: string; other: number | null; journal: string[] }> {
  const held = barrier();
  const entered = barrier();
  const s = await serve(start, thrower(held, entered));
  try {
    const other = call(s.path, DESC, 'x');
    await entered.wait;
    const thrown = (await call(s.path, 'qmcp.Throw+ mcp-control keyword adminvm')).toString('latin1');
    held.open();
    return { thrown, other: decodeReply(await other)?.status ?? null, journal: s.journal };
  } finally {
    held.open();
    await s.close();
  }
}

test('resident: an exception ends its own call with the refusal and a journal line; a call in flight finishes', async () => {
  const r = await exceptionCase(startResident);
  assert.equal(r.thrown, REFUSAL);
  assert.equal(r.other, 0);
  assert.ok(r.journal.some((l) => l.includes('qmcp.Throw+') && l.includes('injected')));
  // weakened: the exception escapes the call's own catch
  const weak = await exceptionCase(await weakened('            status = REFUSAL_EXIT_STATUS;\n        }\n        finally {', '            throw err;\n        }\n        finally {'));
  assert.notEqual(weak.thrown, REFUSAL, 'the weakened server still ends a failed call with the refusal');
});

async function capCase(start: Start): Promise<{ second: string; served: number }> {
  const held = barrier();
  const entered = barrier();
  let served = 0;
  const s = await serve(
    start,
    async (c) => {
      // the first call is held; one more, if served at all, answers at once
      if (++served === 1) {
        entered.open();
        await held.wait;
      }
      return echo(c);
    },
    { maxCalls: 1 },
  );
  try {
    const first = call(s.path, DESC);
    await entered.wait;
    const second = await call(s.path, DESC);
    held.open();
    await first;
    return { second: second.toString('latin1'), served };
  } finally {
    held.open();
    await s.close();
  }
}

test('resident: a call over the cap is refused without any per-call work', async () => {
  const r = await capCase(startResident);
  assert.deepEqual(r, { second: REFUSAL, served: 1 });
  const weak = await capCase(await weakened('if (stopping || calls.size >= limits.maxCalls)', 'if (stopping)'));
  assert.notDeepEqual(weak, { second: REFUSAL, served: 1 }, 'the weakened server served a call over the cap');
});

/**
 * A caller that sends its call and never reads the reply: whether the
 * server had cut the call off after three of its own stall times, then
 * whether the call ended. The clock is the server's other use of stallMs:
 * a call answered at once whose caller holds the connection is cut off
 * stallMs after its reply. The timers of one process fire in the order they
 * fall due, so the watcher's first look (where the stall starts) comes
 * before the first cut-off, and by the third it has looked again more than
 * stallMs later: a watcher that acts has acted, with no window waited out.
 */
async function stallCase(start: Start): Promise<{ cutOff: boolean; ended: 'ended' | 'hung' | 'not waited for' }> {
  const big = Buffer.alloc(32 * 1024 * 1024, 0x20);
  const writing = barrier();
  let stalled: Socket | undefined;
  let clocked: (sock: Socket) => void = () => undefined;
  const s = await serve(
    start,
    async (c) => {
      if (c.env['QREXEC_SERVICE_FULL_NAME'] === 'qmcp.Clock+') {
        clocked(c.io.stdout as Socket);
        return 0;
      }
      stalled = c.io.stdout as Socket;
      writing.open();
      await new Promise<void>((resolve) => c.io.stdout.write(big, () => resolve()));
      return 0;
    },
    { stallMs: 100 },
  );
  // a caller that sends its call and never reads the reply
  const sock = connect({ path: s.path, allowHalfOpen: true }, () => {
    sock.end(Buffer.from(`${DESC}\0`, 'latin1'));
  });
  sock.on('error', () => undefined);
  sock.pause();
  try {
    await writing.wait;
    for (let i = 0; i < 3; i++) {
      const cut = new Promise<void>((resolve) => (clocked = (served) => served.once('close', () => resolve())));
      const clock = connect({ path: s.path, allowHalfOpen: true }, () => clock.write(Buffer.from('qmcp.Clock+ mcp-control keyword adminvm\0', 'latin1')));
      clock.on('error', () => undefined);
      const tick = await orHung(cut, 5_000);
      clock.destroy();
      assert.notEqual(tick, 'hung', 'a held call was never cut off');
    }
    const cutOff = stalled?.destroyed === true;
    const ended = async (): Promise<'ended'> => {
      while (s.resident.active() > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      return 'ended';
    };
    return { cutOff, ended: cutOff ? await orHung(ended(), 5_000) : 'not waited for' };
  } finally {
    sock.destroy();
    await s.close();
  }
}

test('resident: a reply the caller leaves unread ends its call', async () => {
  assert.deepEqual(await stallCase(startResident), { cutOff: true, ended: 'ended' });
  const weak = await stallCase(await weakened('else if (Date.now() - since >= stallMs) {\n            sock.destroy();', 'else if (Date.now() - since >= stallMs) {\n            void 0;'));
  assert.equal(weak.cutOff, false, 'the weakened server cut the unread reply off');
});

/**
 * A stop while a call waits for the operator: whether stop() had withdrawn
 * the call by the time it returned (it withdraws before it waits for any
 * call to end, so this needs no wait), and then whether it ended.
 */
async function stopCase(start: Start): Promise<{ withdrawn: boolean; stopped: 'stopped' | 'hung' | 'not waited for' }> {
  const waiting = barrier();
  const gaveUp = barrier();
  let withdrawn = false;
  const s = await serve(start, (c) => {
    // as the gate waits for the operator: until withdrawn (or this test gives up on it)
    return new Promise<number>((resolve) => {
      c.onStop(() => {
        withdrawn = true;
        resolve(126);
      });
      void gaveUp.wait.then(() => resolve(126));
      waiting.open();
    });
  });
  const reply = call(s.path, DESC, '', true);
  await waiting.wait;
  const stopping = s.resident.stop();
  const atStop = withdrawn;
  // a call left waiting keeps the stop from ending: that is waited for only once the call was withdrawn
  const stopped = atStop ? await orHung(stopping.then(() => 'stopped' as const), 5_000) : 'not waited for';
  // a weakened server's call still waits: end it, so the server closes and this process can exit
  gaveUp.open();
  await stopping;
  await reply;
  return { withdrawn: atStop, stopped };
}

test('resident: a stop withdraws the calls waiting for the operator and then ends', async () => {
  assert.deepEqual(await stopCase(startResident), { withdrawn: true, stopped: 'stopped' });
  const weak = await stopCase(await weakened('for (const withdraw of withdrawals)\n                withdraw();', 'for (const withdraw of withdrawals)\n                void withdraw;'));
  assert.equal(weak.withdrawn, false, 'the weakened server withdrew the waiting call');
});

/**
 * A caller that sends more than a descriptor's bound with no NUL and holds
 * the connection: whether the server had ended its reply (the refusal) once
 * it read past the bound, what the caller got, and whether a call was
 * served. The server's own reader sees each chunk before this test's
 * listener does, and the refusal follows it within the same turn, so the
 * first holds on the next turn or never: no window is waited out.
 */
async function longDescriptorCase(start: Start): Promise<{ refusedAtBound: boolean; reply: string | 'hung' | 'not waited for'; served: number }> {
  let served = 0;
  // the time bound is far off, so only the byte bound can end this
  const s = await serve(
    start,
    async (c) => {
      served++;
      return echo(c);
    },
    { descriptorMs: 600_000 },
  );
  const pastBound = new Promise<boolean>((resolve) => {
    s.server.once('connection', (conn: Socket) => {
      let read = 0;
      conn.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_DESCRIPTOR_BYTES) setImmediate(() => resolve(conn.writableEnded));
      });
    });
  });
  const chunks: Buffer[] = [];
  const sock = connect({ path: s.path, allowHalfOpen: true }, () => sock.write(Buffer.alloc(MAX_DESCRIPTOR_BYTES + 1, 0x61)));
  sock.on('error', () => undefined);
  sock.on('data', (c: Buffer) => chunks.push(c));
  const reply = new Promise<string>((resolve) => sock.on('end', () => resolve(Buffer.concat(chunks).toString('latin1'))));
  try {
    const refusedAtBound = (await orHung(pastBound, 5_000)) === true;
    // a weakened server still waits for the NUL: what it would reply is waited for only after a refusal
    return { refusedAtBound, reply: refusedAtBound ? await orHung(reply, 5_000) : 'not waited for', served };
  } finally {
    // a weakened server still waits for the NUL: the caller goes, so the server can stop
    sock.destroy();
    await s.close();
  }
}

test('resident: a descriptor longer than its bound is refused at the bound, without waiting and without serving', async () => {
  assert.deepEqual(await longDescriptorCase(startResident), { refusedAtBound: true, reply: REFUSAL, served: 0 });
  const weak = await longDescriptorCase(await weakened('else if (nul >= 0 || size > MAX_DESCRIPTOR_BYTES)', 'else if (nul >= 0)'));
  assert.equal(weak.refusedAtBound, false, 'the weakened server refused at the bound');
});

/** Full garbage collection, without starting node with --expose-gc. */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * Whether the connection of a call is still held once the call is over and
 * its caller has closed: a flood of calls must not pile up connections for
 * the stall time.
 */
async function releasedCase(start: Start): Promise<'released' | 'held'> {
  let ref: WeakRef<object> | undefined;
  const closed = barrier();
  const s = await serve(
    start,
    async (c) => {
      ref = new WeakRef(c.io.stdout);
      c.io.stdout.once('close', closed.open);
      return echo(c);
    },
    // far longer than the test: only the caller's close may free it
    { stallMs: 3_600_000 },
  );
  try {
    decodeReply(await call(s.path, DESC, 'x'));
    await closed.wait;
    // out of the job that saw it closed, so the WeakRef is not kept alive by it
    for (let i = 0; i < 5 && ref?.deref() !== undefined; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      collect();
    }
    return ref?.deref() === undefined ? 'released' : 'held';
  } finally {
    await s.close();
  }
}

test('resident: a finished call is let go as soon as its caller closes, not after the stall time', async () => {
  assert.equal(await releasedCase(startResident), 'released');
  assert.equal(await releasedCase(await weakened("sock.once('close', () => clearTimeout(timer));", 'void timer;')), 'held');
});
