/**
 * `npm start` is `qmcp demo`: it prints ready-to-paste connection
 * instructions, answers an MCP client over Streamable HTTP with the printed
 * token, logs one line per call, stops on SIGINT and resumes its state.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { INSPECTOR, LATER } from '../../src/cli/commands/demo.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const QMCP = join(REPO, 'bin', 'qmcp.js');

interface Demo {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves once the output matches. */
  until(pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
  /** Resolves once both output pipes have ended. */
  closed: Promise<void>;
}

function startDemo(dir: string, env: NodeJS.ProcessEnv = process.env): Demo {
  const child = spawn(process.execPath, [QMCP, 'demo', '--dir', dir, '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: (() => void)[] = [];
  const take = (c: Buffer): void => {
    out += c.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return {
    child,
    output: () => out,
    exited,
    closed,
    until: (pattern) =>
      new Promise((resolve, reject) => {
        const look = (): void => {
          const m = pattern.exec(out);
          if (m) resolve(m);
          else if (child.exitCode !== null) reject(new Error(`demo exited (${child.exitCode}):\n${out}`));
          else waiters.push(look);
        };
        void exited.then(() => setImmediate(look));
        look();
      }),
  };
}

async function connect(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'demo-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

test('qmcp demo: instructions, an MCP client served with the printed token, one log line per call, a clean stop and resume', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-demo-'));
  let demo = startDemo(dir);
  try {
    const [, url, token] = await demo.until(/claude mcp add --transport http qmcp (\S+) --header "Authorization: Bearer ([0-9a-f]{64})"/);
    assert.ok(url && token);
    assert.match(demo.output(), /Claude Desktop \(claude_desktop_config\.json/);
    assert.match(demo.output(), /"serve","--sim",/);
    assert.match(demo.output(), /mcp-inspector --cli /);
    // how to answer the gate, with this run's paths: the dom0 services' asks and Qubes' dialog
    assert.ok(demo.output().includes(` dom0 approvals watch --root ${join(dir, 'dom0')} --qubesd-socket ${join(dir, 'qubesd.sock')}\n`), demo.output());
    assert.ok(demo.output().includes(` sim ask --dir ${dir} list\n`), demo.output());
    assert.match(demo.output(), /dom0 services \(kill, firewall\.set, remove, device\.attach\)/);
    assert.match(demo.output(), /policy saying ask \(none\)/);
    // both principals installed: how to serve the second agent, on stdio and on HTTP beside this one
    assert.match(demo.output(), /A second agent, mcp-pentest, has a world of its own \(pt-\* qubes tagged pt-managed\)/);
    assert.ok(demo.output().includes(` serve --sim ${dir} --principal mcp-pentest\n`), demo.output());
    assert.ok(demo.output().includes(` serve --sim ${dir} --principal mcp-pentest --http 127.0.0.1:`), demo.output());

    const client = await connect(url, token);
    const listed = await client.callTool({ name: 'qube_list', arguments: {} });
    const names = (listed.structuredContent as { qubes: { qube: string }[] }).qubes.map((q) => q.qube);
    assert.ok(names.includes('ai-debian-tpl'), names.join(' '));
    assert.ok(!names.includes('vault'));
    const vault = await client.callTool({ name: 'qube_info', arguments: { qube: 'vault' } });
    assert.equal(vault.isError, true);
    await client.close();
    await demo.until(/qmcp demo: call qube_list ok/);
    await demo.until(/qmcp demo: call qube_info vault refused/);

    demo.child.kill('SIGINT');
    assert.equal(await demo.exited, 0, demo.output());
    await demo.closed;
    assert.match(demo.output(), /SIGINT: stopping/);

    // The state and the token are kept for the next run.
    demo = startDemo(dir);
    const [, url2, token2] = await demo.until(/claude mcp add --transport http qmcp (\S+) --header "Authorization: Bearer ([0-9a-f]{64})"/);
    assert.match(demo.output(), /resuming the simulated Qubes host/);
    assert.equal(token2, token);
    const again = await connect(url2 as string, token2 as string);
    await again.listTools();
    await again.close();
    demo.child.kill('SIGTERM');
    assert.equal(await demo.exited, 0, demo.output());
  } finally {
    if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

test('qmcp demo: a bad option is a usage error (exit 2)', async () => {
  for (const args of [['--port', '70000'], ['--bogus'], ['extra']]) {
    const child = spawn(process.execPath, [QMCP, 'demo', ...args], { stdio: 'ignore' });
    assert.equal(await new Promise((r) => child.once('exit', r)), 2, args.join(' '));
  }
});

/** Runs a command line as a user pasting it would; its status and output. */
function shell(line: string, cwd?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  // what npm sets for the command it runs (npm exec -c, npm test) and a user's shell lacks; npx would read it as its own
  const env = { ...process.env };
  for (const key of ['npm_config_call', 'npm_command', 'npm_lifecycle_event', 'npm_lifecycle_script']) delete env[key];
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', line], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('qmcp demo: the MCP Inspector line it prints lists the tools (npx fetches the pinned Inspector once, into npm\'s cache)', async (t) => {
  const reachable = await shell(`npm view ${INSPECTOR} version`);
  if (reachable.status !== 0) {
    t.skip(`the npm registry is out of reach, so the Inspector cannot be fetched: ${reachable.stderr.trim().split('\n').at(-1) ?? ''}`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-demo-'));
  const demo = startDemo(dir);
  try {
    const [, line] = await demo.until(/^ {2}(npx -y .*mcp-inspector --cli .*)$/m);
    assert.ok(line?.includes(`-p ${INSPECTOR} `), line);
    const r = await shell(line as string);
    assert.equal(r.status, 0, `${line}\n${r.stderr}`);
    const tools = (JSON.parse(r.stdout) as { tools: { name: string }[] }).tools.map((tool) => tool.name);
    assert.ok(tools.includes('qube_list'), tools.join(' '));
  } finally {
    demo.child.kill('SIGINT');
    await demo.exited;
    await rm(dir, { recursive: true, force: true });
  }
});

test("README's Inspector lines use the Inspector the demo pins", () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const lines = readme.split('\n').filter((l) => l.includes('mcp-inspector'));
  assert.ok(lines.length > 0);
  for (const l of lines) assert.ok(l.includes(`-p ${INSPECTOR} `), l);
});

test('qmcp demo: without bubblewrap it says so at start, with how to install it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-demo-'));
  // a PATH with node on it and nothing else
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await symlink(process.execPath, join(bin, 'node'));
  const demo = startDemo(join(dir, 'host'), { ...process.env, PATH: bin });
  try {
    await demo.until(/Ctrl-C stops the demo/);
    demo.child.kill('SIGINT');
    assert.equal(await demo.exited, 0, demo.output());
    // stderr is its own pipe: read it to its end before looking
    await demo.closed;
    assert.match(demo.output(), /qmcp demo: WARNING: bubblewrap \(bwrap\) is not installed.*apt-get install bubblewrap.*qube_run/);
  } finally {
    demo.child.kill('SIGINT');
    await demo.exited;
    await rm(dir, { recursive: true, force: true });
  }
});

/** README's first sh block after the paragraph that starts with `lead`. */
function readmeBlock(lead: string): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${lead}`);
  assert.ok(at >= 0, lead);
  const m = /\n```sh\n([\s\S]*?)\n```\n/.exec(readme.slice(at));
  assert.ok(m?.[1], `no sh block after ${lead}`);
  return m[1];
}

test("qmcp demo: a created qube carries the demo's lease; README's lease lines, and the line the demo prints, end it into a tombstone", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-demo-'));
  const demo = startDemo(dir);
  try {
    const [, printed] = await demo.until(/^ {4}(\S+ \S+ dom0 leases expire --now \S+ --root \S+ --qubesd-socket \S+)$/m);
    assert.match(demo.output(), /Leases: a qube the agent creates lives 8h \(qube_info shows lease_expires\), unless it renews it \(qube_renew, up to 7d from then\)/);
    assert.match(demo.output(), /^ {2}mcp-pentest's qubes live 1h, renewable up to 1d\.$/m);
    assert.ok(printed?.includes(` dom0 leases expire --now ${LATER} --root ${join(dir, 'dom0')} --qubesd-socket ${join(dir, 'qubesd.sock')}`), printed);
    await demo.until(/Ctrl-C stops the demo/);

    // README's block as written, on this demo's directory: its definitions, then each command line on its own
    const lines = readmeBlock('What the agent creates expires').split('\n');
    const defs = lines.filter((l) => /^(D=|\w+\(\) \{)/.test(l));
    assert.equal(defs[0], 'D=~/.local/state/qmcp/demo');
    const prelude = [`D='${dir}'`, ...defs.slice(1)].join('\n');
    const commands = lines.filter((l) => l !== '' && !defs.includes(l)).map((l) => l.replace(/\s+#.*$/, ''));
    const run = async (i: number): Promise<{ status: number | null; stdout: string; stderr: string }> => shell(`${prelude}\n${commands[i] ?? 'false'}`, REPO);
    assert.equal(commands.length, 6, commands.join('\n'));

    const before = Date.now();
    const created = await run(0);
    assert.equal(created.status, 0, created.stdout + created.stderr);
    const info = await run(1);
    assert.equal(info.status, 0, info.stderr);
    const expires = Date.parse((JSON.parse(info.stdout.trim()) as { lease_expires: string }).lease_expires);
    // eight hours from the create, to the second the service floors its clock to
    assert.ok(expires >= before - 1000 + 8 * 3600_000 && expires <= Date.now() + 8 * 3600_000, info.stdout);
    const expired = await run(2);
    assert.equal(expired.status, 0, expired.stderr);
    assert.equal(expired.stdout, '"mcp-control": lease over: "ai-brief" kept as a tombstone\n');
    const gone = await run(3);
    assert.deepEqual([gone.status, gone.stdout, gone.stderr], [126, '', 'Request refused\n']);
    const listed = await run(4);
    assert.match(listed.stdout, /^"mcp-control": "ai-brief" {2}AppVM {2}Halted {2}since /m);
    const restored = await run(5);
    assert.equal(restored.status, 0, restored.stderr);
    assert.equal((await run(1)).status, 0, 'restored, the agent sees it again');
    // the line the demo prints ends it again: its lease was not lifted by the restore
    const again = await shell(printed as string);
    assert.equal(again.stdout, '"mcp-control": lease over: "ai-brief" kept as a tombstone\n', again.stderr);
  } finally {
    demo.child.kill('SIGINT');
    await demo.exited;
    await rm(dir, { recursive: true, force: true });
  }
});
