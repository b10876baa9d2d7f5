/**
 * The agent's whole workflow through MCP, as an agent sees it: the SDK's own
 * client over stdio against `qmcp serve --sim`, on the demo fleet with qmcp
 * installed in the simulated dom0. Every result is kept, to check at the end
 * that none ever named a qube outside the sandbox.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/server';
import { REFUSAL } from '../../src/principal/results.js';
import { createServer } from '../../src/principal/server.js';
import type { CallVerdict } from '../../src/principal/tool.js';
import { simRunner } from '../../src/cli/sim-principal.js';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { DEMO_SETTINGS } from '../../src/sim/demo-settings.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { dom0Root, envServiceMode, startSimHost, type SimHost } from '../../src/sim/host.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));
const run = promisify(execFile);

/** The operator's qubes, and dom0: no result may ever carry these names. */
const OUTSIDE = /\b(vault|work|personal|dom0)\b/;

const needsBwrap = { skip: findBwrap() === undefined ? 'needs bwrap' : false };

interface RunResult {
  exit_status: number;
  stdout: string;
  stderr: string;
}

describe('the agent workflow through MCP', () => {
  let dir: string;
  let host: SimHost;
  let client: Client;
  const seen: string[] = [];

  async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    seen.push(JSON.stringify(result));
    return result;
  }

  async function succeed<T>(name: string, args: Record<string, unknown>): Promise<T> {
    const result = await call(name, args);
    assert.notEqual(result.isError, true, `${name}: ${JSON.stringify(result.content)}`);
    return result.structuredContent as T;
  }

  async function names(): Promise<string[]> {
    return (await succeed<{ qubes: { qube: string }[] }>('qube_list', {})).qubes.map((q) => q.qube);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-workflow-'));
    // the gate opened: test/workflow/gate.test.ts walks the demo's gated calls. The dom0 services served by the
    // resident process unless QMCP_DOM0_SERVICE_MODE says otherwise: the per-call executable has tests of its own
    // (test/boundary/invariants.test.ts), and starts a Node process per call.
    host = await startSimHost({ dir, fleet: demoFleet(), install: true, serviceMode: envServiceMode() ?? 'resident', initialSettings: { ...DEMO_SETTINGS, gate: OPEN_GATE } });
    client = new Client({ name: 'workflow', version: '0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [QMCP, 'serve', '--sim', dir], stderr: 'ignore' }));
  });
  after(async () => {
    await client?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists its sandbox', async () => {
    const list = await names();
    for (const n of ['ai-debian-tpl', 'ai-dvm', 'ai-exec-box', 'ai-sandbox']) assert.ok(list.includes(n), n);
    // the reads whose raw Qubes form names outside qubes: properties, devices, pool use
    for (const n of ['ai-dvm', 'ai-net-box', 'ai-egress']) await succeed('qube_info', { qube: n });
    await succeed('device_list', {});
    await succeed('pool_figures', {});
  });

  it('creates, starts, writes, runs, copies, clones and runs once in a disposable', needsBwrap, async () => {
    const created = await succeed<{ name: string; template?: string }>('qube_create', { name: 'ai-new', template: 'ai-debian-tpl' });
    assert.equal(created.name, 'ai-new');
    assert.ok((await names()).includes('ai-new'));
    await succeed('qube_info', { qube: 'ai-new' });

    assert.deepEqual(await succeed('qube_start', { qube: 'ai-new' }), { qube: 'ai-new', state: 'Running' });
    assert.deepEqual(await succeed('qube_write_file', { qube: 'ai-new', path: '/root/note.txt', content: 'hello from the agent\n' }), {
      path: '/root/note.txt',
      size: 21,
    });
    // root's files need root, as on a real qube, where commands run as the default user unless told
    const read = await succeed<RunResult>('qube_run', { qube: 'ai-new', user: 'root', shell: 'tr a-z A-Z < /root/note.txt' });
    assert.deepEqual([read.exit_status, read.stdout], [0, 'HELLO FROM THE AGENT\n']);
    const who = await succeed<RunResult>('qube_run', { qube: 'ai-new', shell: 'echo "$USER $(pwd)"' });
    assert.equal(who.stdout, 'user /home/user\n');

    // a large output comes back as its start and its end; the rest is read in pages
    const big = await succeed<RunResult & { stdout_bytes: number; stdout_path: string; stdout_truncated: boolean }>('qube_run', {
      qube: 'ai-new',
      shell: 'seq 1 300000',
    });
    const whole = Array.from({ length: 300000 }, (_, i) => `${i + 1}\n`).join('');
    assert.deepEqual([big.stdout_truncated, big.stdout_bytes], [true, whole.length]);
    assert.ok(big.stdout.startsWith('1\n2\n3\n') && big.stdout.endsWith('299999\n300000\n'));
    let paged = '';
    for (let more = true; more; ) {
      const page = await succeed<{ content: string; truncated: boolean }>('qube_read_file', { qube: 'ai-new', path: big.stdout_path, offset: paged.length, length: 512 * 1024 });
      paged += page.content;
      more = page.truncated;
    }
    assert.equal(paged, whole);

    await succeed('qube_start', { qube: 'ai-exec-box' });
    assert.deepEqual(await succeed('qube_copy', { source: 'ai-new', target: 'ai-exec-box', paths: ['/root/note.txt'] }), {
      source: 'ai-new',
      target: 'ai-exec-box',
      copied: 1,
      directory: '/home/user/QubesIncoming/ai-new/',
      files: ['/home/user/QubesIncoming/ai-new/note.txt'],
    });
    // files land in the default user's home, as qvm-copy-to-vm does
    const landed = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', argv: ['cat', '/home/user/QubesIncoming/ai-new/note.txt'] });
    assert.deepEqual([landed.exit_status, landed.stdout], [0, 'hello from the agent\n']);

    const clone = await succeed<{ name: string }>('qube_clone', { source: 'ai-full-box', name: 'ai-copy' });
    assert.equal(clone.name, 'ai-copy');
    assert.ok((await names()).includes('ai-copy'));

    const once = await succeed<RunResult & { name: string; removed: boolean }>('qube_run_disposable', {
      disposable_template: 'ai-dvm',
      name: 'ai-once',
      argv: ['hostname'],
    });
    assert.deepEqual([once.exit_status, once.stdout, once.name, once.removed], [0, 'ai-once\n', 'ai-once', true]);
    assert.ok(!(await names()).includes('ai-once'));
  });

  it('keeps what a call leaves in a running qube: a web server in a background job, a file in /tmp', needsBwrap, async () => {
    await succeed('qube_start', { qube: 'ai-exec-box' });
    const { job } = await succeed<{ job: string }>('qube_run', {
      qube: 'ai-exec-box',
      background: true,
      shell: 'mkdir -p /tmp/site && echo served > /tmp/site/index.html && cd /tmp/site && exec python3 -m http.server 8765 --bind 127.0.0.1',
    });
    assert.match(job, /^[0-9a-f]{12}$/);
    const listed = await succeed<{ jobs: { job: string; ended: boolean }[] }>('job_list', { qube: 'ai-exec-box' });
    assert.deepEqual(listed.jobs.filter((j) => j.job === job).map((j) => j.ended), [false]);
    // a later call reaches it, once it listens
    const fetch =
      'import time, urllib.request\nfor _ in range(600):\n    try:\n        print(urllib.request.urlopen("http://127.0.0.1:8765/index.html").read().decode(), end=""); break\n    except OSError: time.sleep(0.1)';
    const got = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', argv: ['python3', '-c', fetch] });
    assert.deepEqual([got.exit_status, got.stdout], [0, 'served\n']);
    const log = await succeed<{ content: string; total_bytes: number; ended: boolean }>('job_output', { qube: 'ai-exec-box', job, stream: 'stderr' });
    assert.match(log.content, /"GET \/index\.html HTTP\/1\.1" 200/);
    assert.equal(log.ended, false);
    const past = await succeed<{ content: string; total_bytes: number }>('job_output', { qube: 'ai-exec-box', job, stream: 'stderr', offset: log.total_bytes + 10 });
    assert.equal(past.content, '');

    // malformed ids are refused by the schema; a job is known only in its own qube
    assert.equal((await call('job_output', { qube: 'ai-exec-box', job: '../../etc' })).isError, true);
    const elsewhere = await call('job_wait', { qube: 'ai-new', job, timeout_seconds: 0 });
    assert.equal(elsewhere.isError, true);
    assert.match(JSON.stringify(elsewhere.content), /No such job in this qube/);

    // a file left in /tmp by one call is copied by the next
    await succeed('qube_run', { qube: 'ai-exec-box', shell: 'echo draft > /tmp/report.txt' });
    await succeed('qube_copy', { source: 'ai-exec-box', target: 'ai-new', paths: ['/tmp/report.txt'] });
    const copied = await succeed<RunResult>('qube_run', { qube: 'ai-new', argv: ['cat', '/home/user/QubesIncoming/ai-exec-box/report.txt'] });
    assert.equal(copied.stdout, 'draft\n');

    assert.deepEqual(await succeed('job_kill', { qube: 'ai-exec-box', job }), { job, already_ended: false });
    // waiting, it tells a client that asked how it goes
    const progress: unknown[] = [];
    const waited = (await client.callTool({ name: 'job_wait', arguments: { qube: 'ai-exec-box', job, timeout_seconds: 600 } }, { onprogress: (p) => progress.push(p) })) as CallToolResult;
    seen.push(JSON.stringify(waited));
    const ended = waited.structuredContent as { ended: boolean; exit_status: number | null };
    assert.ok(progress.length > 0, 'job_wait sent progress');
    assert.equal(ended.ended, true);
    assert.notEqual(ended.exit_status, null);

    // the qube's jobs and /tmp end with it
    await succeed('qube_run', { qube: 'ai-exec-box', background: true, argv: ['sleep', '1000'] });
    await succeed('qube_shutdown', { qube: 'ai-exec-box' });
    await succeed('qube_start', { qube: 'ai-exec-box' });
    assert.deepEqual(await succeed('job_list', { qube: 'ai-exec-box' }), { qube: 'ai-exec-box', jobs: [] });
    assert.equal((await call('job_output', { qube: 'ai-exec-box', job })).isError, true);
    const tmp = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', shell: 'ls /tmp/report.txt /tmp/site 2>/dev/null; true' });
    assert.equal(tmp.stdout, '');
  });

  it('reads a large output in pages from where the run saved it', needsBwrap, async () => {
    await succeed('qube_start', { qube: 'ai-exec-box' });
    // 20,000 numbered lines (about 200 KB), and their digest as the qube computes it
    const big = await succeed<RunResult & { stdout_truncated: boolean; stdout_bytes: number; stdout_path: string | null }>('qube_run', {
      qube: 'ai-exec-box',
      shell: 'seq -f "line %05g" 1 20000',
    });
    assert.equal(big.stdout_truncated, true);
    assert.ok(big.stdout.startsWith('line 00001\n') && big.stdout.endsWith('line 20000\n'), 'the head and the tail are kept');
    assert.ok(Buffer.byteLength(big.stdout) < big.stdout_bytes / 2, 'the whole output is not sent');
    assert.ok(big.stdout_path !== null);
    type Page = { size: number; length: number; truncated: boolean; encoding: string; content: string };
    const pages: string[] = [];
    let offset = 0;
    for (;;) {
      const page: Page = await succeed<Page>('qube_read_file', {
        qube: 'ai-exec-box',
        path: big.stdout_path,
        offset,
        length: 64 * 1024,
      });
      assert.equal(page.encoding, 'utf8');
      assert.equal(page.size, big.stdout_bytes);
      pages.push(page.content);
      offset += page.length;
      if (!page.truncated) break;
    }
    assert.ok(pages.length > 1, 'read in more than one page');
    const whole = pages.join('');
    assert.equal(Buffer.byteLength(whole), big.stdout_bytes);
    const digest = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', shell: 'seq -f "line %05g" 1 20000 | sha256sum' });
    assert.equal(`${createHash('sha256').update(whole).digest('hex')}  -\n`, digest.stdout);
  });

  it('finds the sink in qube_list, pushes into it while it is halted, and learns where the files landed', needsBwrap, async () => {
    const { sinks } = await succeed<{ sinks: string[] }>('qube_list', {});
    assert.deepEqual(sinks, ['ai-dump']);
    assert.equal(host.qubesd.app.vms.get('ai-dump')?.power, 'Halted');
    await succeed('qube_start', { qube: 'ai-exec-box' });
    await succeed('qube_run', { qube: 'ai-exec-box', shell: 'mkdir -p out && echo result > out/result.txt' });
    const pushed = await succeed<{ directory: string; files: string[] }>('qube_copy', { source: 'ai-exec-box', target: 'ai-dump', paths: ['/home/user/out'] });
    assert.match(pushed.directory, /^\/home\/user\/QubesIncoming\/ai-exec-box\/[0-9]{8}T[0-9]{6}Z\.[0-9a-f]{16}\/$/);
    assert.deepEqual(pushed.files, [`${pushed.directory}out`]);
    // the operator finds it there: the sink was started for the push
    assert.equal(host.qubesd.app.vms.get('ai-dump')?.power, 'Running');
    const inSink = host.sandboxes.spawn('ai-dump', ['/bin/cat', `${pushed.directory}out/result.txt`]);
    const out: Buffer[] = [];
    inSink.stdout.on('data', (c: Buffer) => out.push(c));
    inSink.stderr.resume();
    inSink.stdin.end();
    await new Promise((resolve) => inSink.once('close', resolve));
    assert.equal(Buffer.concat(out).toString(), 'result\n');
  });

  it('reaches a web server in one qube from another through a port forward, and only between qubes it may run commands in', needsBwrap, async () => {
    for (const q of ['ai-exec-box', 'ai-net-box']) await succeed('qube_start', { qube: q });
    const server = await succeed<{ job: string }>('qube_run', {
      qube: 'ai-net-box',
      background: true,
      shell: 'mkdir -p /tmp/site && echo forwarded > /tmp/site/index.html && cd /tmp/site && exec python3 -m http.server 8080 --bind 127.0.0.1',
    });
    const forward = await succeed<{ job: string; local_port: number; address: string }>('qube_port_forward', { from: 'ai-exec-box', to: 'ai-net-box', remote_port: 8080, local_port: 9080 });
    assert.deepEqual([forward.local_port, forward.address], [9080, '127.0.0.1:9080']);
    assert.match(forward.job, /^[0-9a-f]{12}$/);
    const listed = await succeed<{ jobs: { job: string; command: string; ended: boolean }[] }>('job_list', { qube: 'ai-exec-box' });
    assert.deepEqual(listed.jobs.filter((j) => j.job === forward.job).map((j) => [j.command, j.ended]), [['qvm-connect-tcp 9080:ai-net-box:8080', false]]);
    // the forward and the server both come up in the background: retry until they answer
    const fetch = (port: number): string =>
      `import time, urllib.request\nfor _ in range(600):\n    try:\n        print(urllib.request.urlopen("http://127.0.0.1:${port}/index.html").read().decode(), end=""); break\n    except OSError: time.sleep(0.1)`;
    const got = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', argv: ['python3', '-c', fetch(9080)] });
    assert.deepEqual([got.exit_status, got.stdout], [0, 'forwarded\n']);
    // nothing of the target listens in the source itself: the forward is what reaches it
    const direct = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', argv: ['python3', '-c', 'import urllib.request\ntry:\n    urllib.request.urlopen("http://127.0.0.1:8080/")\n    print("reached")\nexcept OSError:\n    print("closed")'] });
    assert.equal(direct.stdout, 'closed\n');

    // refused alike: outside the umbrella, absent, dom0, a read-tier target or source, a sink
    const refused = JSON.stringify(REFUSAL);
    for (const [from, to] of [
      ['ai-exec-box', 'vault'],
      ['ai-exec-box', 'ai-nothing-here'],
      ['ai-exec-box', 'dom0'],
      ['ai-exec-box', 'ai-sandbox'],
      ['ai-exec-box', 'ai-dump'],
      ['ai-exec-box', 'mcp-control'],
      ['ai-sandbox', 'ai-net-box'],
      ['vault', 'ai-net-box'],
    ] as const) {
      assert.equal(JSON.stringify(await call('qube_port_forward', { from, to, remote_port: 8080, local_port: 9081 })), refused, `${from} -> ${to}`);
    }
    // what depends only on the arguments is said
    const same = await call('qube_port_forward', { from: 'ai-exec-box', to: 'ai-exec-box', remote_port: 8080 });
    assert.match(JSON.stringify(same.content), /the same qube/);
    const low = await call('qube_port_forward', { from: 'ai-exec-box', to: 'ai-net-box', remote_port: 80 });
    assert.match(JSON.stringify(low.content), /local_port/);

    // job_kill ends the forward: the port is closed again
    assert.deepEqual(await succeed('job_kill', { qube: 'ai-exec-box', job: forward.job }), { job: forward.job, already_ended: false });
    const waited = await succeed<{ ended: boolean }>('job_wait', { qube: 'ai-exec-box', job: forward.job, timeout_seconds: 600 });
    assert.equal(waited.ended, true);
    const gone = await succeed<RunResult>('qube_run', { qube: 'ai-exec-box', argv: ['python3', '-c', 'import urllib.request\ntry:\n    urllib.request.urlopen("http://127.0.0.1:9080/")\n    print("reached")\nexcept OSError:\n    print("closed")'] });
    assert.equal(gone.stdout, 'closed\n');
    await succeed('job_kill', { qube: 'ai-net-box', job: server.job });
  });

  it('checkpoints a qube before a destructive change and reverts after it', needsBwrap, async () => {
    const q = 'ai-full-box';
    // the simulated qubesd stops a qube before its shutdown call returns
    const halted = async (): Promise<void> => {
      await succeed('qube_shutdown', { qube: q });
      assert.deepEqual(await succeed('qube_state', { qube: q }), { qube: q, state: 'Halted' });
    };
    await succeed('qube_start', { qube: q });
    await succeed('qube_run', { qube: q, shell: 'mkdir -p /home/user/project && echo v1 > /home/user/project/main.py' });
    // a checkpoint is the state of a clean stop
    const running = await call('qube_checkpoint', { qube: q });
    assert.equal(running.isError, true);
    assert.match(JSON.stringify(running.content), /shut it down first/);
    await halted();
    assert.deepEqual(await succeed('qube_checkpoint', { qube: q }), { qube: q, revisions_to_keep: 2 });
    await succeed('qube_start', { qube: q });
    await succeed('qube_run', { qube: q, shell: 'rm -rf /home/user/project' });
    await halted();
    const reverted = await succeed<{ qube: string; revision: string }>('qube_revert', { qube: q });
    assert.equal(reverted.qube, q);
    await succeed('qube_start', { qube: q });
    const back = await succeed<RunResult>('qube_run', { qube: q, argv: ['cat', '/home/user/project/main.py'] });
    assert.deepEqual([back.exit_status, back.stdout], [0, 'v1\n']);
    await halted();
  });

  it('removes a qube, lists and restores its own tombstone, and sees another again once the operator restores it', async () => {
    // removal needs the full tier: the demo's qubes made from a full template are born full, ai-exec-box is exec
    assert.equal(JSON.stringify(await call('qube_remove', { qube: 'ai-exec-box' })), JSON.stringify(REFUSAL));
    assert.deepEqual(await succeed('qube_remove', { qube: 'ai-new' }), { qube: 'ai-new', removed: true });
    assert.deepEqual(await succeed('qube_remove', { qube: 'ai-full-box' }), { qube: 'ai-full-box', removed: true });
    assert.ok(!(await names()).includes('ai-full-box'));
    assert.equal(JSON.stringify(await call('qube_state', { qube: 'ai-full-box' })), JSON.stringify(REFUSAL));

    const { tombstones } = await succeed<{ tombstones: { qube: string; bytes: number }[] }>('tombstone_list', {});
    assert.deepEqual(tombstones.map((t) => t.qube).sort(), ['ai-full-box', 'ai-new']);
    const figures = await succeed<{ used: number; live: number; tombstoned: number }>('pool_figures', {});
    assert.equal(figures.tombstoned, tombstones.reduce((n, t) => n + t.bytes, 0));
    assert.equal(figures.used, figures.live + figures.tombstoned);
    assert.equal(JSON.stringify(await call('tombstone_restore', { qube: 'vault' })), JSON.stringify(REFUSAL));
    assert.equal((await succeed<{ qube: string }>('tombstone_restore', { qube: 'ai-new' })).qube, 'ai-new');
    assert.ok((await names()).includes('ai-new'));
    assert.deepEqual((await succeed<{ tombstones: { qube: string }[] }>('tombstone_list', {})).tombstones.map((t) => t.qube), ['ai-full-box']);

    await run(process.execPath, [QMCP, 'dom0', 'tombstones', 'restore', 'ai-full-box', '--root', dom0Root(dir), '--qubesd-socket', host.qubesd.socketPath]);
    assert.ok((await names()).includes('ai-full-box'));
    assert.deepEqual(await succeed('qube_state', { qube: 'ai-full-box' }), { qube: 'ai-full-box', state: 'Halted' });
  });

  it('cannot tell vault from a qube that does not exist', async () => {
    const probes: [string, (q: string) => Record<string, unknown>][] = [
      ['qube_info', (q) => ({ qube: q })],
      ['qube_state', (q) => ({ qube: q })],
      ['qube_start', (q) => ({ qube: q })],
      ['qube_remove', (q) => ({ qube: q })],
      ['qube_run', (q) => ({ qube: q, argv: ['id'] })],
      ['qube_read_file', (q) => ({ qube: q, path: '/etc/hostname' })],
      ['qube_write_file', (q) => ({ qube: q, path: '/root/x', content: 'x' })],
      ['qube_copy', (q) => ({ source: 'ai-exec-box', target: q, paths: ['/etc/hostname'] })],
      ['qube_port_forward', (q) => ({ from: 'ai-exec-box', to: q, remote_port: 8080, local_port: 9082 })],
      ['qube_port_forward', (q) => ({ from: q, to: 'ai-exec-box', remote_port: 8080, local_port: 9083 })],
      ['qube_clone', (q) => ({ source: q, name: 'ai-stolen' })],
      ['qube_create', (q) => ({ name: 'ai-other', template: q })],
      ['firewall_get', (q) => ({ qube: q })],
    ];
    for (const [tool, args] of probes) {
      const vault = JSON.stringify(await call(tool, args('vault')));
      const absent = JSON.stringify(await call(tool, args('ai-nothing-here')));
      assert.equal(vault, absent, tool);
      assert.equal(vault, JSON.stringify(REFUSAL), tool);
    }
    assert.ok(!(await names()).includes('ai-stolen'));
  });

  it('never names an outside qube in any result', () => {
    assert.ok(seen.length > 20);
    for (const text of seen) assert.doesNotMatch(text, OUTSIDE);
  });

  it('reports every call to an observer without changing its result', async () => {
    const calls: string[] = [];
    const runner = simRunner(dir);
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(runner, {
      onCall: (tool: string, target: string, verdict: CallVerdict) => {
        calls.push(`${tool} ${target} ${verdict}`);
        throw new Error('an observer cannot fail a call');
      },
    }).connect(serverSide);
    const observed = new Client({ name: 'observed', version: '0' });
    await observed.connect(clientSide);
    try {
      const state = await observed.callTool({ name: 'qube_state', arguments: { qube: 'ai-sandbox' } });
      assert.deepEqual(state.structuredContent, { qube: 'ai-sandbox', state: 'Halted' });
      assert.equal(JSON.stringify(await observed.callTool({ name: 'qube_state', arguments: { qube: 'vault' } })), JSON.stringify(REFUSAL));
      const down = await observed.callTool({ name: 'qube_shutdown', arguments: { qube: 'ai-dvm' } });
      assert.equal(down.isError, true);
      await observed.callTool({ name: 'qube_list', arguments: {} });
      await observed.callTool({ name: 'qube_copy', arguments: { source: 'ai-sandbox', target: 'vault', paths: ['/x'] } });
      assert.deepEqual(calls, [
        'qube_state ai-sandbox ok',
        'qube_state vault refused',
        'qube_shutdown ai-dvm error',
        'qube_list  ok',
        'qube_copy ai-sandbox vault refused',
      ]);
    } finally {
      await observed.close();
      runner.close();
    }
  });
});
