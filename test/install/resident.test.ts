// Install and uninstall in resident mode leave a dom0 tree as it was, the
// sockets the service made included; doctor fails on a missing socket or
// one with the wrong mode. Each check has a weakened variant it catches.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { installDom0 } from '../../src/dom0/install/index.js';
import { serviceNames } from '../../src/dom0/install/names.js';
import { uninstallDom0 } from '../../src/dom0/install/uninstall.js';
import { residentCheck } from '../../src/dom0/operator/resident-check.js';
import { SOCKET_PATH_BYTES } from '../../src/shared/socket-path.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { weakenedFile } from '../../verify/weakened-module.js';
import { childOutput } from '../child-output.js';
import { walk } from './tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-resident-install-'));
const NO_QUBESD = join(tmp, 'no-qubesd.sock');
const RESIDENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dom0', 'resident-main.js');
after(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
const tempRoot = (): string => mkdtempSync(join(tmp, `root${n++}-`));

/** A dom0 tree with the operator's own files, one where qrexec looks for a qmcp service. */
function operatorTree(root: string): void {
  mkdirSync(join(root, 'etc', 'qubes-rpc'), { recursive: true, mode: 0o755 });
  writeFileSync(join(root, 'etc', 'qubes-rpc', 'my.Service'), '#!/bin/sh\necho mine\n', { mode: 0o700 });
  writeFileSync(join(root, 'etc', 'qubes-rpc', 'qmcp.Info'), '#!/bin/sh\necho operator edit\n', { mode: 0o700 });
}

const isSocket = (p: string): boolean => {
  try {
    return statSync(p).isSocket();
  } catch {
    return false;
  }
};

/** The resident service as systemd runs it (here binding its own sockets); resolves once every socket is there. */
async function runResident(root: string, main: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [main], { env: { PATH: process.env['PATH'] ?? '', QMCP_ROOT: root, QMCP_QUBESD_SOCKET: NO_QUBESD }, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + hangBoundMs(60_000);
  while (!serviceNames().every((s) => isSocket(join(root, 'etc', 'qubes-rpc', s)))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the resident service did not bind its sockets');
    await sleep(20);
  }
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Install (resident), run and stop the service, uninstall: the tree before and after, and doctor's verdict while it ran. */
async function roundTrip(main: string, seeded: boolean, from: 'nothing' | 'per-call'): Promise<{ before: Map<string, string>; after: Map<string, string>; doctor: string | undefined }> {
  const root = tempRoot();
  if (seeded) operatorTree(root);
  const before = walk(root);
  if (from === 'per-call') await installDom0({ root, qubesdSocket: NO_QUBESD, serviceMode: 'per-call' });
  await installDom0({ root, qubesdSocket: NO_QUBESD, serviceMode: 'resident' });
  const service = await runResident(root, main);
  const doctor = (await residentCheck(root))?.status;
  await service.stop();
  // the journal's stand-in under a simulated root (src/dom0/service/compose.ts); on dom0 these lines go to the journal
  rmSync(join(root, 'var', 'log', 'qmcp', 'service.log'), { force: true });
  const r = await uninstallDom0({ root });
  assert.deepEqual(r.problems, []);
  return { before, after: walk(root), doctor };
}

test('install then uninstall in resident mode leaves the tree byte-identical, the sockets the service made included', async () => {
  for (const seeded of [false, true]) {
    for (const from of ['nothing', 'per-call'] as const) {
      const r = await roundTrip(RESIDENT_MAIN, seeded, from);
      assert.equal(r.doctor, 'ok', `seeded ${seeded}, from ${from}`);
      assert.deepEqual(r.after, r.before, `seeded ${seeded}, from ${from}`);
    }
  }
  // weakened: a service that leaves its sockets behind when it stops
  const leaves = weakenedFile('dom0/resident-main', 'unbind();\n            process.exit(0);', 'process.exit(0);');
  const weak = await roundTrip(leaves, false, 'nothing');
  assert.notDeepEqual(weak.after, weak.before, 'the weakened service left sockets and the tree still matched');
});

type ResidentCheck = typeof residentCheck;

async function doctorCase(check: ResidentCheck): Promise<{ ok: string | undefined; missing: string | undefined; wrongMode: string | undefined; file: string | undefined }> {
  const root = tempRoot();
  await installDom0({ root, qubesdSocket: NO_QUBESD, serviceMode: 'resident' });
  const service = await runResident(root, RESIDENT_MAIN);
  try {
    const names = serviceNames();
    const last = join(root, 'etc', 'qubes-rpc', names[names.length - 1] as string);
    const second = join(root, 'etc', 'qubes-rpc', names[1] as string);
    const ok = (await check(root))?.status;
    // a socket qrexec could not connect to (as the dom0 user) or anyone could
    chmodSync(second, 0o666);
    const wrongMode = (await check(root))?.status;
    chmodSync(second, 0o660);
    // an executable where the socket should be (a per-call wrapper left by hand)
    unlinkSync(second);
    writeFileSync(second, '#!/bin/sh\n', { mode: 0o755 });
    const file = (await check(root))?.status;
    unlinkSync(second);
    const missing = (await check(root))?.status;
    void last;
    return { ok, missing, wrongMode, file };
  } finally {
    await service.stop();
  }
}

test('doctor fails on a missing socket, a file in its place, or a socket of the wrong mode', async () => {
  assert.deepEqual(await doctorCase(residentCheck), { ok: 'ok', missing: 'FAIL', wrongMode: 'FAIL', file: 'FAIL' });
  const load = async (guard: string, weakened: string): Promise<ResidentCheck> =>
    ((await import(pathToFileURL(weakenedFile('dom0/operator/resident-check', guard, weakened)).href)) as { residentCheck: ResidentCheck }).residentCheck;
  const noMode = await doctorCase(await load('const wrongMode = paths.filter((p) => isSocket(p) && !socketModeOk(p));', 'const wrongMode = paths.filter(() => false);'));
  assert.equal(noMode.wrongMode, 'ok', 'the weakened doctor without the mode check still failed a 0666 socket');
  const noMissing = await doctorCase(await load('const missing = paths.filter((p) => !isSocket(p));', 'const missing = paths.filter(() => false);'));
  assert.deepEqual([noMissing.missing, noMissing.file], ['ok', 'ok'], 'the weakened doctor without the socket check still failed');
});

/** The resident service under a root too deep for its longest socket path, the others fitting: its exit, what it said, the sockets it left. */
async function deepRootCase(main: string): Promise<{ status: number; stderr: string; sockets: string[]; longest: string }> {
  const longest = serviceNames().reduce((a, b) => (b.length > a.length ? b : a));
  const base = tempRoot();
  // the longest service's socket path one byte over the bound
  const root = join(base, 'r'.repeat(SOCKET_PATH_BYTES - Buffer.byteLength(join(base, 'r', 'etc', 'qubes-rpc', longest)) + 1));
  await installDom0({ root, qubesdSocket: NO_QUBESD, serviceMode: 'resident' });
  const child = spawn(process.execPath, [main], { env: { PATH: process.env['PATH'] ?? '', QMCP_ROOT: root, QMCP_QUBESD_SOCKET: NO_QUBESD }, stdio: ['ignore', 'pipe', 'pipe'] });
  const { status, stderr } = await childOutput(child);
  const dir = join(root, 'etc', 'qubes-rpc');
  const sockets = existsSync(dir) ? readdirSync(dir).filter((f) => isSocket(join(dir, f))) : [];
  return { status, stderr, sockets, longest: join(dir, longest) };
}

test('under a root too deep for a socket path, the resident service binds none and says which path and the bound', async () => {
  const r = await deepRootCase(RESIDENT_MAIN);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^qmcp resident dom0 service: cannot bind a Unix socket at ${r.longest}: the path is ${String(SOCKET_PATH_BYTES)} bytes, and a socket's path is at most ${String(SOCKET_PATH_BYTES - 1)} `));
  assert.deepEqual(r.sockets, []);
  // weakened: paths checked only as each is bound leave the ones bound before behind
  const asBound = await deepRootCase(weakenedFile('dom0/resident-main', 'checkSocketPath(join(dir, name));', 'void 0;'));
  assert.notDeepEqual(asBound.sockets, [], 'the weakened service bound no socket');
});
