// docs/deploy.md, run: every command of its fenced shell blocks is either
// run against a simulated host (from the release archives, as the operator
// would) or listed below as real-Qubes-only with the reason. A command the
// table does not know fails the test, so the doc cannot drift from it.
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRelease } from '../../scripts/artefacts/build.js';
import { MANIFEST_PATH } from '../../src/dom0/install/index.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { repo, run, version } from './helpers.js';

/** Where a block runs: the word after the language in its info string. */
type Seat = 'qmcp-build' | 'dom0' | 'ai-template' | 'ai-drop' | 'mcp-control' | 'client';
const SEATS: readonly Seat[] = ['qmcp-build', 'dom0', 'ai-template', 'ai-drop', 'mcp-control', 'client'];

interface Block {
  readonly lang: string;
  readonly tag: string;
  readonly line: number;
  readonly body: string;
}

/** Commands no simulator can run, and why; the test stands in for each where it can. */
const REAL_ONLY: readonly { pattern: RegExp; reason: string }[] = [
  { pattern: /^npm (ci|run release)$/, reason: 'rebuilds the checkout this suite runs from; the test builds the same archives with buildRelease, which npm run release runs' },
  { pattern: /^qvm-(create|clone) /, reason: "creates real qubes with Qubes' qvm-* tools; the simulated host starts with the same qubes" },
  { pattern: /^qvm-tags /, reason: 'tags a real qube; the sink is checked by the policy tests and test/qube/sink.test.ts' },
  { pattern: /^qvm-copy-to-vm /, reason: 'moves files between real qubes; the test puts them where they land (~/QubesIncoming/qmcp-build)' },
  { pattern: /^qvm-run --pass-io /, reason: "reads a file out of a real qube into dom0; the test copies the release files into dom0's directory" },
  { pattern: /^qvm-shutdown /, reason: 'shuts a real template down so its qubes see the new files; simulated qubes read them directly' },
  { pattern: /^sudo qubes-dom0-update /, reason: "installs from Qubes' dom0 repositories; the test's Node is checked with node --version" },
  { pattern: /^systemctl --user /, reason: "needs a systemd user session in a real qube; the unit's ExecStart is run by the test instead" },
  { pattern: /^claude mcp add /, reason: 'configures Claude Code on the client machine' },
  { pattern: /^qvm-connect-tcp /, reason: 'forwards a TCP port between real qubes over qrexec' },
];

/** Commands run as they are, in their seat's directories (paths below / mapped into the test's temp dir). */
const LOCAL = /^(sudo )?(sha256sum|tar|mkdir|ln|rm|cat|chmod|openssl|sh|cd|node --version$|qmcp --help$)/;

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] as string).startsWith('```'); i++) body.push(lines[i] as string);
    out.push({ lang: open[1] as string, tag: (open[2] as string).trim(), line: start + 1, body: body.join('\n') });
  }
  return out;
}

function commands(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const doc = readFileSync(join(repo, 'docs', 'deploy.md'), 'utf8');
const all = blocks(doc);
const shell = all.filter((b) => b.lang === 'sh');

/** The qubes deploy.md creates (and the ones a fresh Qubes has), as a fleet. */
const fleet: Fleet = {
  properties: { default_netvm: 'sys-firewall', default_template: 'fedora-41-xfce' },
  qubes: [
    { name: 'fedora-41-xfce', klass: 'TemplateVM', label: 'black' },
    { name: 'debian-12-xfce', klass: 'TemplateVM', label: 'black' },
    { name: 'sys-net', klass: 'AppVM', template: 'fedora-41-xfce', label: 'red', properties: { provides_network: true, netvm: null } },
    { name: 'sys-firewall', klass: 'AppVM', template: 'fedora-41-xfce', label: 'green', properties: { provides_network: true, netvm: 'sys-net' } },
    { name: 'vault', klass: 'AppVM', template: 'fedora-41-xfce', label: 'black', properties: { netvm: null } },
    { name: 'mcp-control', klass: 'AppVM', template: 'fedora-41-xfce', label: 'purple' },
    { name: 'ai-template', klass: 'TemplateVM', label: 'black' },
    { name: 'ai-egress', klass: 'AppVM', template: 'fedora-41-xfce', label: 'red', properties: { provides_network: true } },
    { name: 'ai-work', klass: 'AppVM', template: 'ai-template', label: 'red' },
  ],
};

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-deploy-doc-'));
const simDir = join(tmp, 'sim');
const release = join(tmp, 'build', 'release');
/** Where each seat's files live, and what its paths outside home map to. */
const seatDirs: Record<Seat, { home: string; map: [string, string][]; path: string[]; env: Record<string, string> }> = {
  'qmcp-build': { home: join(tmp, 'build'), map: [], path: [], env: {} },
  dom0: {
    home: join(tmp, 'dom0-home'),
    map: [['/usr/lib/qmcp', join(tmp, 'dom0-fs', 'usr', 'lib', 'qmcp')], ['/usr/bin/qmcp', join(tmp, 'dom0-fs', 'usr', 'bin', 'qmcp')]],
    path: [join(tmp, 'dom0-fs', 'usr', 'bin')],
    env: {},
  },
  'ai-template': {
    home: join(tmp, 'template-home'),
    map: [['/etc/qubes-rpc', join(tmp, 'template-fs', 'etc', 'qubes-rpc')]],
    path: [],
    env: { QMCP_INSTALL_ROOT: join(tmp, 'template-fs') },
  },
  'ai-drop': {
    home: join(tmp, 'sink-home'),
    map: [['/usr/local/etc/qubes-rpc', join(tmp, 'sink-fs', 'usr', 'local', 'etc', 'qubes-rpc')]],
    path: [],
    env: { QMCP_INSTALL_ROOT: join(tmp, 'sink-fs') },
  },
  'mcp-control': { home: join(tmp, 'principal-home'), map: [], path: [join(tmp, 'principal-home', '.local', 'bin')], env: {} },
  client: { home: join(tmp, 'client-home'), map: [], path: [], env: {} },
};

const DOM0_QMCP = join(tmp, 'dom0-fs', 'usr', 'bin', 'qmcp');
let host: SimHost | undefined;

before(async () => {
  await buildRelease({ repo, out: release });
  for (const s of SEATS) mkdirSync(seatDirs[s].home, { recursive: true });
  mkdirSync(join(tmp, 'dom0-fs', 'usr', 'bin'), { recursive: true });
  mkdirSync(join(tmp, 'template-fs'), { recursive: true });
  // what qvm-run --pass-io and qvm-copy-to-vm would have delivered
  for (const f of readdirSync(release)) copyFileSync(join(release, f), join(seatDirs.dom0.home, f));
  for (const seat of ['ai-template', 'ai-drop', 'mcp-control'] as const) {
    const incoming = join(seatDirs[seat].home, 'QubesIncoming', 'qmcp-build');
    mkdirSync(incoming, { recursive: true });
    for (const f of readdirSync(release)) copyFileSync(join(release, f), join(incoming, f));
  }
  // the settings the operator writes in dom0
  const settings = all.find((b) => b.lang === 'json' && b.tag === 'settings.json');
  assert.ok(settings, 'deploy.md has a ```json settings.json block');
  writeFileSync(join(seatDirs.dom0.home, 'settings.json'), settings.body);
  host = await startSimHost({ dir: simDir, fleet, install: false });
});

after(async () => {
  await host?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A command with `sudo` dropped and the seat's outside paths mapped into the temp dir. */
function localise(seat: Seat, cmd: string): string {
  let out = cmd.replace(/^sudo /, '');
  for (const [from, to] of seatDirs[seat].map) out = out.replace(new RegExp(`(^|\\s)${from.replace(/\//g, '\\/')}(?=[\\s/]|$)`, 'g'), `$1${to}`);
  return out;
}

/** Refuses to run anything that still names an absolute path outside the temp dir. */
function assertContained(cmd: string): void {
  for (const word of cmd.split(/\s+/)) {
    const bare = word.replace(/^['"]|['"]$/g, '');
    if (bare.startsWith('/')) assert.ok(bare.startsWith(tmp), `refusing to run, it names ${bare}: ${cmd}`);
  }
}

/** Operator commands that reach qubesd (the others take --root alone unless their --help names the socket). */
const TALKS_TO_QUBESD = new Set(['install', 'uninstall', 'doctor', 'explain', 'tier', 'tombstones']);

async function helpOf(seat: Seat, qmcp: string): Promise<string> {
  const r = await run(qmcp, ['--help'], { env: envOf(seat) });
  return r.stdout + r.stderr;
}

function envOf(seat: Seat): NodeJS.ProcessEnv {
  const s = seatDirs[seat];
  return { ...process.env, ...s.env, HOME: s.home, PATH: [...s.path, process.env['PATH'] ?? ''].join(':') };
}

/** The command as run against the simulator, or a reason to skip it. */
async function simulated(seat: Seat, cmd: string): Promise<{ cmd: string } | { skip: string }> {
  const dom0 = /^qmcp dom0 (\S+)/.exec(cmd);
  if (dom0 && seat === 'dom0') {
    const qmcp = DOM0_QMCP;
    const sub = dom0[1] as string;
    if (!new RegExp(`qmcp dom0 ${sub}\\b`).test(await helpOf(seat, qmcp))) return { skip: `qmcp dom0 ${sub} does not exist yet in this build's qmcp --help` };
    let out = / --root \/(?=\s|$)/.test(cmd) ? cmd.replace(/ --root \/(?=\s|$)/, ` --root ${dom0Root(simDir)}`) : `${cmd} --root ${dom0Root(simDir)}`;
    const subHelp = (await run(qmcp, ['dom0', sub, '--help'], { env: envOf(seat) })).stdout;
    if (TALKS_TO_QUBESD.has(sub) || subHelp.includes('--qubesd-socket')) out += ` --qubesd-socket ${join(simDir, 'qubesd.sock')}`;
    return { cmd: out };
  }
  if (/^qmcp selftest\b/.test(cmd) && seat === 'mcp-control') {
    const qmcp = join(seatDirs['mcp-control'].home, '.local', 'bin', 'qmcp');
    if (!/qmcp selftest\b/.test(await helpOf(seat, qmcp))) return { skip: 'qmcp selftest does not exist yet in this build' };
    return { cmd: `${cmd} --sim ${simDir}` };
  }
  return { skip: `no simulated form for ${seat}: ${cmd}` };
}

async function tags(qube: string): Promise<string[]> {
  return (await new Qubesd(join(simDir, 'qubesd.sock')).tags(qube)).sort();
}

/** What each command's success looks like beyond exit status 0. */
async function check(cmd: string, out: string): Promise<void> {
  const installed = existsSync(join(dom0Root(simDir), MANIFEST_PATH));
  if (/^(cd .* && )?sha256sum -c /.test(cmd)) assert.match(out, /: OK$/m);
  if (cmd === 'node --version') assert.match(out, /^v(2\d|[3-9]\d)\./);
  if (/^sha256sum release\//.test(cmd)) assert.equal(out.trim().split('\n').length, 3);
  if (/install\.sh$/.test(cmd)) {
    assert.deepEqual(readdirSync(join(tmp, 'template-fs', 'etc', 'qubes-rpc')).sort(), ['qmcp.CopyTo', 'qmcp.Exec', 'qmcp.ReadFile', 'qmcp.SinkPush', 'qmcp.WriteFile']);
  }
  if (/install\.sh --sink$/.test(cmd)) {
    assert.deepEqual(readdirSync(join(tmp, 'sink-fs', 'usr', 'local', 'etc', 'qubes-rpc')), ['qmcp.SinkPush']);
    assert.ok(!existsSync(join(tmp, 'sink-fs', 'etc')), 'the sink template is left alone');
  }
  if (/^qmcp dom0 install .*--dry-run/.test(cmd)) assert.ok(!installed, 'the dry run wrote the manifest');
  if (/^qmcp dom0 install (?!.*--dry-run)/.test(cmd)) {
    assert.ok(installed, 'install wrote no manifest');
    const settings = JSON.parse(readFileSync(join(dom0Root(simDir), 'etc', 'qmcp', 'settings.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(settings['egressQube'], 'ai-egress');
    await checkSshPolicy();
  }
  const tier = /^qmcp dom0 tier (\S+) (none|exec|net|full)\b/.exec(cmd);
  if (tier) {
    const want = tier[2] === 'none' ? ['ai-managed'] : ['ai-managed', `ai-${tier[2]}`];
    assert.deepEqual((await tags(tier[1] as string)).filter((t) => t.startsWith('ai-')), want.sort());
  }
  if (/^qmcp dom0 uninstall /.test(cmd)) assert.ok(!installed, 'uninstall left the manifest');
}

/**
 * The operator's own ConnectTCP line for SSH, beside the installed policy,
 * lets `work` reach mcp-control's port 22 and gives the principal nothing.
 */
async function checkSshPolicy(): Promise<void> {
  const line = all.find((b) => b.lang === 'text' && b.body.startsWith('qubes.ConnectTCP'));
  assert.ok(line, 'deploy.md has the qubes.ConnectTCP policy line');
  const dir = join(tmp, 'policy-with-ssh');
  cpSync(join(dom0Root(simDir), 'etc', 'qubes', 'policy.d'), dir, { recursive: true });
  writeFileSync(join(dir, '50-mcp-ssh.policy'), line.body + '\n');
  const fleetFile = join(tmp, 'fleet-with-work.json');
  writeFileSync(fleetFile, JSON.stringify({ ...fleet, qubes: [...fleet.qubes, { name: 'work', klass: 'AppVM', template: 'fedora-41-xfce', label: 'blue' }] }));
  const query = (source: string): string => JSON.stringify({ source, target: '@default', service: 'qubes.ConnectTCP', arg: '22' });
  const r = await run(process.execPath, [join(repo, 'bin', 'qmcp.js'), 'policy', 'eval', '--policy-dir', dir, '--fleet', fleetFile], {
    input: `${query('work')}\n${query('mcp-control')}\n`,
  });
  assert.equal(r.status, 0, r.stderr);
  const [fromWork, fromPrincipal] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; target: string });
  assert.deepEqual([fromWork?.action, fromWork?.target], ['allow', 'mcp-control']);
  assert.equal(fromPrincipal?.action, 'deny');
}

/**
 * Stands in for `systemctl --user enable --now`: writes the documented unit
 * where the operator puts it and runs its ExecStart against the simulator
 * (on a free port), then checks the token guards the endpoint.
 */
async function runUnit(): Promise<void> {
  const home = seatDirs['mcp-control'].home;
  const unit = all.find((b) => b.lang === 'ini' && b.tag === 'qmcp-http.service');
  assert.ok(unit, 'deploy.md has an ```ini qmcp-http.service block');
  writeFileSync(join(home, '.config', 'systemd', 'user', 'qmcp-http.service'), unit.body + '\n');
  const exec = /^ExecStart=(.*)$/m.exec(unit.body)?.[1];
  assert.ok(exec !== undefined && exec.startsWith('%h/.local/bin/qmcp serve --http 127.0.0.1:8765 '), exec);
  const argv = exec.replaceAll('%h', home).replace('127.0.0.1:8765', '127.0.0.1:0').split(' ');
  const child = spawn(argv[0] as string, [...argv.slice(1), '--sim', simDir], { env: envOf('mcp-control'), stdio: ['pipe', 'ignore', 'pipe'] });
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = /listening on (http:\S+)/.exec(err);
        if (m) resolveUrl(m[1] as string);
      });
      child.on('exit', (code) => reject(new Error(`qmcp serve exited ${code}: ${err}`)));
    });
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'deploy-doc', version: '1' } } });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    assert.equal((await fetch(url, { method: 'POST', headers, body: init })).status, 401);
    const token = readFileSync(join(home, '.config', 'qmcp', 'token'), 'utf8').trim();
    const ok = await fetch(url, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}` }, body: init });
    const body = await ok.text();
    assert.equal(ok.status, 200, body);
    assert.match(body, /"protocolVersion"/);
  } finally {
    child.kill('SIGTERM');
  }
}

test('every fenced shell block says where it runs, and every command is classified', () => {
  assert.ok(shell.length >= 10);
  for (const b of shell) {
    assert.ok((SEATS as readonly string[]).includes(b.tag), `deploy.md:${b.line}: \`\`\`sh needs one of ${SEATS.join(', ')}`);
    for (const c of commands(b.body)) {
      const kinds = [REAL_ONLY.some((r) => r.pattern.test(c)), LOCAL.test(c), /^(sudo )?qmcp (dom0|selftest)\b/.test(c)].filter(Boolean);
      assert.equal(kinds.length, 1, `deploy.md:${b.line}: ${c} is ${kinds.length ? 'ambiguous' : 'not classified'}`);
    }
    if (b.tag === 'client') for (const c of commands(b.body)) assert.ok(REAL_ONLY.some((r) => r.pattern.test(c)), c);
  }
  assert.ok(doc.includes(`qmcp-dom0-${version}.tar.gz`), `deploy.md names version ${version}`);
  const desktop = all.find((b) => b.lang === 'json' && b.tag === 'claude_desktop_config.json');
  const config = JSON.parse(desktop?.body ?? '') as { mcpServers: Record<string, { command: string; args: string[] }> };
  assert.deepEqual(config.mcpServers['qmcp']?.args.slice(-2), ['/home/user/.local/bin/qmcp', 'serve']);
});

test('deploy.md, command by command, against a simulated host', async (t: TestContext) => {
  const skipped: string[] = [];
  for (const b of shell) {
    const seat = b.tag as Seat;
    for (const original of commands(b.body)) {
      const name = `${seat}$ ${original}`;
      const real = REAL_ONLY.find((r) => r.pattern.test(original));
      if (real) {
        if (original === 'systemctl --user enable --now qmcp-http.service') await t.test(`${name} (its ExecStart, on the simulator)`, runUnit);
        await t.test(name, (st) => st.skip(`real Qubes only: ${real.reason}`));
        continue;
      }
      const local = localise(seat, original);
      let cmd = local;
      if (/^qmcp (dom0|selftest)\b/.test(local)) {
        const sim = await simulated(seat, local);
        if ('skip' in sim) {
          skipped.push(`${name}: ${sim.skip}`);
          await t.test(name, (st) => st.skip(sim.skip));
          continue;
        }
        cmd = sim.cmd;
      }
      await t.test(name, async (st) => {
        assertContained(cmd);
        const r = await run('sh', ['-c', cmd], { cwd: seatDirs[seat].home, env: envOf(seat) });
        // selftest: 3 means some scenario could not run here, which it reports; a FAIL is a failure
        const ok = cmd.includes(' selftest') ? r.status === 0 || r.status === 3 : r.status === 0;
        assert.ok(ok, `exit ${r.status}: ${cmd}\n${r.stdout}${r.stderr}`);
        if (cmd.includes(' selftest')) {
          assert.doesNotMatch(r.stdout, /\bFAIL\b/);
          for (const l of r.stdout.split('\n').filter((x) => /NOT-RUN/.test(x))) st.diagnostic(l);
        }
        await check(local, r.stdout);
      });
    }
  }
  if (skipped.length) t.diagnostic(`skipped until their commands exist: ${skipped.join('; ')}`);
});

test('the uninstall steps leave nothing of qmcp in the seats', () => {
  assert.deepEqual(readdirSync(join(tmp, 'template-fs', 'etc', 'qubes-rpc')), []);
  assert.deepEqual(readdirSync(join(tmp, 'sink-fs', 'usr', 'local', 'etc', 'qubes-rpc')), []);
  assert.ok(!existsSync(join(tmp, 'dom0-fs', 'usr', 'lib', 'qmcp')));
  assert.ok(!existsSync(DOM0_QMCP));
  const home = seatDirs['mcp-control'].home;
  for (const p of [join('.local', 'lib', `qmcp-principal-${version}`), join('.local', 'bin', 'qmcp'), join('.config', 'qmcp')]) {
    assert.ok(!existsSync(join(home, p)), p);
  }
});
