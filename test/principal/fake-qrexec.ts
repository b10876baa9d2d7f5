/**
 * A stand-in qrexec-client-vm for the principal's tests: answers by target
 * and service, always writes a marker on stderr (which must never reach a
 * result), and for target `ai-sleep` records its pid and hangs. For target
 * `ai-real`, qmcp.Exec, qmcp.ReadFile, qmcp.ListDir and qmcp.Stat are the
 * real services, run here.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { hangBoundMs } from '../../verify/hang-bound.js';

/** Text the fake writes on stderr and inside qubesd error messages. */
export const SECRET = 'SECRET-outside-qube-sys-firewall';

const SCRIPT = `#!/usr/bin/env node
const fs = require('node:fs');
const path = require('node:path');
const args = process.argv.slice(2);
const pos = args[0] === '--' ? args.slice(1) : args;
const target = pos[0];
const service = pos[1];
process.stderr.write(${JSON.stringify(SECRET)} + '\\n');
const dir = process.env.FAKE_QREXEC_DIR;
const out = (b) => process.stdout.write(b);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const payload = Buffer.concat(chunks);
  if (dir) fs.appendFileSync(path.join(dir, 'calls.log'), JSON.stringify({ target, service, payload: payload.toString('utf8') }) + '\\n');
  if (target === 'ai-refused' || target === 'outside' || service.endsWith('+outside')) process.exit(126);
  if (target === 'ai-sleep') {
    fs.writeFileSync(path.join(dir, 'sleep-' + process.pid + '.pid'), String(process.pid));
    setInterval(() => {}, 1000);
    return;
  }
  if (target === 'ai-huge') { out(Buffer.alloc(4 * 1024 * 1024, 0x41)); return; }
  const svc = service.split('+')[0];
  if (svc === 'admin.vm.CurrentState') { out('0\\0mem=400 power_state=Running'); return; }
  if (svc === 'admin.vm.Pause' && target === 'ai-halted') {
    out('2\\0QubesVMNotRunningError\\0\\0' + ${JSON.stringify(SECRET)} + '\\0'); return;
  }
  if (svc === 'admin.vm.Pause') { out('0\\0'); return; }
  if (service === 'qmcp.Shutdown+ai-halted') {
    out(JSON.stringify({ error: { code: 'not_running', message: 'the qube is not running' } }) + '\\n'); process.exit(1);
  }
  if (svc === 'qmcp.Shutdown') { out(JSON.stringify({ name: service.split('+')[1] }) + '\\n'); return; }
  if (svc === 'admin.vm.firewall.Get') { out('0\\0action=accept dsthost=example.com proto=tcp dstports=443-443\\naction=drop\\n'); return; }
  if (svc === 'qmcp.FirewallSet') { out(JSON.stringify({ name: service.split('+')[1], rules: payload.toString('utf8').split('\\n').filter(Boolean) }) + '\\n'); return; }
  if (svc === 'qmcp.List') { out(JSON.stringify({ qubes: [{ name: 'ai-work', class: 'AppVM', state: 'Running', label: 'red', template: 'ai-tpl', netvm: null }] }) + '\\n'); return; }
  if (svc === 'qmcp.Start' && pos[1] === 'qmcp.Start+ai-broken') {
    out(JSON.stringify({ error: { code: 'start_failed', message: 'the qube could not be started' } }) + '\\n'); process.exit(1);
  }
  if (svc === 'qmcp.Start') { out(JSON.stringify({ name: service.split('+')[1], state: 'Running' }) + '\\n'); return; }
  if (['qmcp.Exec', 'qmcp.ReadFile', 'qmcp.ListDir', 'qmcp.Stat'].includes(svc) && target === 'ai-real') {
    // the real service, run here with QubesDB naming this user as the default
    const r = require('node:child_process').spawnSync('sh', [process.env.FAKE_QREXEC_QUBE_DIR + '/' + svc], {
      input: payload, maxBuffer: 1 << 30, env: { PATH: process.env.FAKE_QREXEC_BIN + ':' + process.env.PATH },
    });
    out(r.stdout);
    return;
  }
  if (svc === 'qmcp.Exec') {
    const body = 'hello\\n';
    out('qmcp 1\\nstatus ok\\nexit 3\\ntimed_out 0\\nstdout_head ' + body.length + '\\nstdout_tail 0\\nstdout_total ' + body.length + '\\nstdout_lines 1\\nstderr_head 0\\nstderr_tail 0\\nstderr_total 0\\nstderr_lines 0\\n\\n' + body);
    return;
  }
  if (svc === 'qmcp.ReadFile') {
    const content = Buffer.from([0xff, 0x00, 0x41]);
    out(Buffer.concat([Buffer.from('qmcp 1\\nstatus ok\\nsize 3\\nlength 3\\ntruncated 0\\n\\n'), content]));
    return;
  }
  if (svc === 'qmcp.WriteFile' && target === 'ai-ro') {
    out('qmcp 1\\nstatus error\\nerror denied\\nmessage ' + Buffer.from(${JSON.stringify(SECRET)}).toString('base64') + '\\n\\n');
    return;
  }
  process.exit(1);
});
`;

export interface FakeQrexec {
  readonly dir: string;
  readonly client: string;
  readonly env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

export async function makeFakeQrexec(): Promise<FakeQrexec> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-principal-'));
  const client = join(dir, 'qrexec-client-vm');
  await writeFile(client, SCRIPT);
  await chmod(client, 0o755);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'qubesdb-read'), `#!/bin/sh\n[ "$1" = /default-user ] && echo ${userInfo().username}\n`);
  await chmod(join(bin, 'qubesdb-read'), 0o755);
  return {
    dir,
    client,
    env: { ...process.env, FAKE_QREXEC_DIR: dir, FAKE_QREXEC_BIN: bin, FAKE_QREXEC_QUBE_DIR: join(import.meta.dirname, '..', '..', '..', 'src', 'qube') },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Pids of the hanging fakes started so far. */
export async function sleeperPids(dir: string): Promise<number[]> {
  return (await readdir(dir)).filter((f) => /^sleep-\d+\.pid$/.test(f)).map((f) => Number(f.slice(6, -4)));
}

/** Whether the process still runs (a zombie awaiting its reaper counts as gone). */
export { alive as isAlive } from '../../verify/process-tree.js';

/**
 * Resolves once check() holds, polling; gives up only past `idleMs` scaled
 * by the load (hangBoundMs), however slow each check is: a bound that ends a
 * hang, never a timing assertion.
 */
export async function within(idleMs: number, check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + hangBoundMs(idleMs);
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** As within, with a minute's bound on an idle machine. */
export function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  return within(60_000, check, what);
}
