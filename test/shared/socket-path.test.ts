// A Unix socket path over the platform's bound is refused where the simulator or the resident dom0 service
// would bind it, naming the path and the bound: Node would bind it cut short, somewhere else. Each binder
// without its check is caught.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as resident from '../../src/dom0/resident/server.js';
import { SOCKET_PATH_BYTES } from '../../src/shared/socket-path.js';
import * as asks from '../../src/sim/qrexec/asks.js';
import * as seat from '../../src/sim/qrexec/dom0-seat.js';
import { QubeSockets } from '../../src/sim/qrexec/qube-sockets.js';
import * as qubesd from '../../src/sim/qubesd/server.js';
import { weakenedFile } from '../../verify/weakened-module.js';

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-socket-path-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A path of exactly BYTES bytes, in a directory of its own. */
function pathOf(bytes: number): string {
  const dir = mkdtempSync(join(tmp, 'd-'));
  const name = bytes - Buffer.byteLength(dir) - 1;
  assert.ok(name > 0, `the test's directory ${dir} leaves room for a socket's name`);
  return join(dir, 's'.repeat(name));
}

type Bind = (path: string) => Promise<{ close(): unknown }>;

/** Each binder, from its module (the real one, or a copy without its check). */
const BINDERS = {
  'the simulated qubesd': {
    module: 'sim/qubesd/server',
    guard: 'checkSocketPath(path);',
    bind: (m: typeof qubesd): Bind => (path) => m.listenApi(path, { app: null as never, methods: {}, policyRoot: null }),
  },
  "the simulated router's dom0 seat": {
    module: 'sim/qrexec/dom0-seat',
    guard: 'checkSocketPath(path);',
    bind: (m: typeof seat): Bind => async (path) => m.listenDom0Seat(path, () => undefined),
  },
  "the simulator's ask control": {
    module: 'sim/qrexec/asks',
    guard: 'checkSocketPath(path);',
    bind: (m: typeof asks): Bind => async (path) => m.listenAskControl(path, new m.AskQueue(1000)),
  },
  'the resident dom0 service': {
    module: 'dom0/resident/server',
    guard: 'checkSocketPath(at.path);',
    bind: (m: typeof resident): Bind => async (path) => m.startResident({ serve: async () => 0, log: () => undefined }).listen({ path }),
  },
} as const;

const REAL = { 'sim/qubesd/server': qubesd, 'sim/qrexec/dom0-seat': seat, 'sim/qrexec/asks': asks, 'dom0/resident/server': resident };

/** What binding PATH comes to: 'bound' there, 'bound elsewhere' (cut short), or the error's message. */
async function outcome(bind: Bind, path: string): Promise<string> {
  let server: { close(): unknown };
  try {
    server = await bind(path);
  } catch (err) {
    return (err as Error).message;
  }
  const there = existsSync(path);
  await server.close();
  return there ? 'bound' : 'bound elsewhere';
}

const refusedFor = (path: string, before = ''): RegExp =>
  new RegExp(`^${before}cannot bind a Unix socket at ${path}: the path is ${String(Buffer.byteLength(path))} bytes, and a socket's path is at most ${String(SOCKET_PATH_BYTES - 1)} \\(${String(SOCKET_PATH_BYTES)} with its terminating NUL\\)`);

test('a socket path at the bound binds; one byte over, or far over, is refused before binding, naming the path and the bound', async () => {
  for (const [name, b] of Object.entries(BINDERS)) {
    const bind = (b.bind as (m: unknown) => Bind)(REAL[b.module]);
    assert.equal(await outcome(bind, pathOf(SOCKET_PATH_BYTES - 1)), 'bound', name);
    for (const bytes of [SOCKET_PATH_BYTES, SOCKET_PATH_BYTES + 40]) {
      const path = pathOf(bytes);
      assert.match(await outcome(bind, path), refusedFor(path), name);
    }
  }
});

/** A qube's socket that fits and one too long, polled twice: whether the first was bound, and the log. */
async function qubeSocketsCase(m: { QubeSockets: typeof QubeSockets }): Promise<{ bound: boolean; log: string[]; over: string }> {
  const socketDir = mkdtempSync(join(tmp, 'q-'));
  const room = SOCKET_PATH_BYTES - 1 - Buffer.byteLength(join(socketDir, '.sock'));
  const fits = 'a'.repeat(Math.min(31, room));
  const over = 'b'.repeat(room + 1);
  const log: string[] = [];
  const sockets = new m.QubeSockets({ socketDir, qubes: async () => [fits, over], onConnection: (_q, s) => s.destroy(), pollMs: 60_000, log: (l) => log.push(l) });
  await sockets.start();
  await sockets.refresh();
  const bound = existsSync(join(socketDir, `${fits}.sock`));
  await sockets.close();
  return { bound, log, over: join(socketDir, `${over}.sock`) };
}

test("a qube's socket too long to bind is said on the simulator's log, once, and the others are bound", async () => {
  const r = await qubeSocketsCase({ QubeSockets });
  assert.ok(r.bound);
  assert.equal(r.log.length, 1, r.log.join('\n'));
  assert.match(r.log[0] ?? '', refusedFor(r.over, `qrexec: socket for ${basename(r.over, '.sock')}: `));
});

test('weakened: each binder without its check binds the path cut short, elsewhere, and is caught', async () => {
  for (const [name, b] of Object.entries(BINDERS)) {
    const weak = (await import(pathToFileURL(weakenedFile(b.module, b.guard, 'void 0;')).href)) as unknown;
    const bind = (b.bind as (m: unknown) => Bind)(weak);
    const path = pathOf(SOCKET_PATH_BYTES + 10);
    const got = await outcome(bind, path);
    assert.doesNotMatch(got, refusedFor(path), `${name} without its check was still refused`);
    assert.equal(got, 'bound elsewhere', name);
  }
  const qube = async (guard: string, to: string): Promise<{ bound: boolean; log: string[]; over: string }> =>
    qubeSocketsCase((await import(pathToFileURL(weakenedFile('sim/qrexec/qube-sockets', guard, to)).href)) as { QubeSockets: typeof QubeSockets });
  const unchecked = await qube('if (problem !== null) {', 'if (false) {');
  assert.equal(unchecked.log.length, 0, 'without its check the qube socket binds cut short, and nothing is said');
  const everyPoll = await qube('!this.unbindable.has(qube)', 'true');
  assert.equal(everyPoll.log.length, 2, 'said on every poll');
});
