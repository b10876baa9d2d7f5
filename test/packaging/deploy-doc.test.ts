// docs/deploy.md, run: every command of its fenced shell blocks is either
// run against a simulated host (from the release archives, as the operator
// would) or listed in deploy-plan.ts as real-Qubes-only with the reason. A
// command neither run nor listed fails the test, so the doc cannot drift
// from it; so does a selftest scenario not run that the doc does not expect.
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRelease } from '../../scripts/artefacts/build.js';
import { commands as qmcpCommands } from '../../src/cli/commands/index.js';
import { dom0Commands } from '../../src/cli/commands/dom0.js';
import { MANIFEST_PATH, RESIDENT_SERVICE_UNIT } from '../../src/dom0/install/index.js';
import { serviceNames } from '../../src/dom0/install/names.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { SEATS, blocks, expectedNotRun, judgeSelftest, planDeploy } from './deploy-plan.js';
import type { Offered, Seat } from './deploy-plan.js';
import { INQUBE_SERVICES, repo, run, version } from './helpers.js';

const doc = readFileSync(join(repo, 'docs', 'deploy.md'), 'utf8');
const all = blocks(doc);
/** What each seat's qmcp offers: dom0's launcher runs the operator commands only; the principal's archive has them all. */
const OFFERED: Offered = { dom0: dom0Commands.map((c) => c.path), 'mcp-control': qmcpCommands.map((c) => c.path) };
const plan = planDeploy(doc, OFFERED);
/** The selftest run's exit status and report, for the check of an altered doc below. */
let selftestRun: { status: number | null; stdout: string } | undefined;

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
  // nobody answers Qubes' dialog here: the selftest's probe of a call the doc's gate asks for lapses at once
  host = await startSimHost({ dir: simDir, fleet, install: false, askTimeoutMs: 50 });
});

after(async () => {
  await resident?.stop();
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

function envOf(seat: Seat): NodeJS.ProcessEnv {
  const s = seatDirs[seat];
  return { ...process.env, ...s.env, HOME: s.home, PATH: [...s.path, process.env['PATH'] ?? ''].join(':') };
}

/** A planned qmcp command as run against the simulator: dom0's with its root and socket, selftest with --sim. */
function simulated(seat: Seat, cmd: string, path: readonly string[]): string {
  if (seat === 'mcp-control') return `${cmd} --sim ${simDir}`;
  const sub = path[1] as string;
  let out = / --root \/(?=\s|$)/.test(cmd) ? cmd.replace(/ --root \/(?=\s|$)/, ` --root ${dom0Root(simDir)}`) : `${cmd} --root ${dom0Root(simDir)}`;
  // its usage as dom0's launcher prints it (the plan above is made from the same list), without a Node start per command
  const usage = dom0Commands.find((c) => c.path.join(' ') === path.join(' '))?.usage ?? '';
  if (TALKS_TO_QUBESD.has(sub) || usage.includes('--qubesd-socket')) out += ` --qubesd-socket ${join(simDir, 'qubesd.sock')}`;
  return out;
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
    assert.deepEqual(readdirSync(join(tmp, 'template-fs', 'etc', 'qubes-rpc')).sort(), [...INQUBE_SERVICES].sort());
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

/** The resident dom0 service while the walk-through runs in resident mode. */
let resident: { stop(): Promise<void> } | undefined;

/** A systemd word as the installed unit quotes it. */
function sdWord(word: string): string {
  const m = /^"((?:[^"\\]|\\.)*)"$/.exec(word);
  return m ? (m[1] as string).replace(/\\(.)/g, '$1') : word;
}

/**
 * Stands in for the `systemctl enable --now` a resident install runs:
 * starts the installed qmcp-dom0.service's ExecStart with its Environment=
 * (the simulated root and qubesd), which binds the sockets itself without
 * systemd, and resolves once every service has its socket.
 */
async function startResidentUnit(): Promise<{ stop(): Promise<void> }> {
  const unit = readFileSync(join(dom0Root(simDir), RESIDENT_SERVICE_UNIT), 'utf8');
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '' };
  for (const m of unit.matchAll(/^Environment=(.*)$/gm)) {
    const [k, ...v] = sdWord(m[1] as string).split('=');
    env[k as string] = v.join('=');
  }
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.split(' ').map(sdWord);
  assert.ok(exec?.[0] !== undefined && exec[1] !== undefined, 'the unit has an ExecStart');
  const child = spawn(exec[0], exec.slice(1), { env, stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const deadline = Date.now() + hangBoundMs(60_000);
  const sockets = serviceNames().map((name) => join(dom0Root(simDir), 'etc', 'qubes-rpc', name));
  while (!sockets.every((path) => existsSync(path))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the resident service did not bind its sockets');
    await new Promise((done) => setTimeout(done, 20));
  }
  return {
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

test('every fenced shell block says where it runs, and every command is run or real-Qubes-only', () => {
  assert.deepEqual(plan.problems, []);
  assert.ok(doc.includes(`qmcp-dom0-${version}.tar.gz`), `deploy.md names version ${version}`);
  const desktop = all.find((b) => b.lang === 'json' && b.tag === 'claude_desktop_config.json');
  const config = JSON.parse(desktop?.body ?? '') as { mcpServers: Record<string, { command: string; args: string[] }> };
  assert.deepEqual(config.mcpServers['qmcp']?.args.slice(-2), ['/home/user/.local/bin/qmcp', 'serve']);
});

test('deploy.md, command by command, against a simulated host', async (t: TestContext) => {
  for (const step of plan.steps) {
    const { seat, command: original } = step;
    const name = `${seat}$ ${original}`;
    if (step.kind === 'real-only') {
      if (original === 'systemctl --user enable --now qmcp-http.service') await t.test(`${name} (its ExecStart, on the simulator)`, runUnit);
      await t.test(name, (st) => st.skip(`real Qubes only: ${step.reason}`));
      continue;
    }
    const local = localise(seat, original);
    const cmd = step.kind === 'qmcp' ? simulated(seat, local, step.path) : local;
    // as `systemctl disable --now` in uninstall would
    if (/^qmcp dom0 uninstall /.test(local) && resident) {
      await resident.stop();
      resident = undefined;
    }
    await t.test(name, async (st) => {
      assertContained(cmd);
      const r = await run('sh', ['-c', cmd], { cwd: seatDirs[seat].home, env: envOf(seat) });
      if (step.kind === 'qmcp' && step.path[0] === 'selftest') {
        selftestRun = r;
        for (const l of r.stdout.split('\n').filter((x) => /^NOT-RUN/.test(x))) st.diagnostic(l);
        assert.deepEqual(judgeSelftest(r.status, r.stdout, expectedNotRun(doc)), [], `${cmd}\n${r.stdout}${r.stderr}`);
      } else {
        assert.equal(r.status, 0, `exit ${r.status}: ${cmd}\n${r.stdout}${r.stderr}`);
      }
      // as `systemctl enable --now` in a resident install would
      if (/^qmcp dom0 install .*--service-mode resident/.test(local) && !resident) resident = await startResidentUnit();
      await check(local, r.stdout);
    });
  }
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

test('weakened docs fail the plan: a renamed subcommand, a qmcp command with no simulated form, an unlisted command', () => {
  const renamed = planDeploy(doc.replace('sudo qmcp dom0 tier ai-work exec', 'sudo qmcp dom0 tiers ai-work exec'), OFFERED);
  assert.ok(renamed.problems.some((p) => /qmcp dom0 tiers ai-work exec: dom0's qmcp has no command dom0 tiers/.test(p)), JSON.stringify(renamed.problems));
  const serve = planDeploy(doc.replace('qmcp selftest\n', 'qmcp selftest\nqmcp serve --http 127.0.0.1:8765\n'), OFFERED);
  assert.ok(serve.problems.some((p) => /qmcp serve --http .*: qmcp serve in mcp-control has no simulated form/.test(p)), JSON.stringify(serve.problems));
  const unlisted = planDeploy(doc.replace('qvm-shutdown --wait ai-template', 'qvm-shutdown-all --wait'), OFFERED);
  assert.ok(unlisted.problems.some((p) => /qvm-shutdown-all --wait: neither run nor listed/.test(p)), JSON.stringify(unlisted.problems));
  assert.ok(unlisted.problems.some((p) => /qvm-shutdown .* matches no documented command/.test(p)), JSON.stringify(unlisted.problems));
});

test('the selftest run above fails against a doc that does not say which scenarios do not run here', () => {
  assert.ok(selftestRun, 'the selftest step ran');
  const expected = expectedNotRun(doc);
  assert.ok(expected.size > 0, 'deploy.md lists the scenarios that do not run with its settings');
  const silent = doc.replace(/^\| scenario \| not run here because \|$/m, '');
  assert.equal(expectedNotRun(silent).size, 0);
  const problems = judgeSelftest(selftestRun.status, selftestRun.stdout, expectedNotRun(silent));
  assert.ok(problems.some((p) => /and deploy\.md does not say it does not run here/.test(p)), JSON.stringify(problems));
  assert.ok(problems.some((p) => /selftest exited 3, not 0/.test(p)), JSON.stringify(problems));
  // and a doc that expects one more scenario not to run than did not
  const more = new Map([...expected, ['visibility', 'made up']]);
  assert.ok(judgeSelftest(selftestRun.status, selftestRun.stdout, more).some((p) => /says selftest does not run visibility here, but it did/.test(p)));
});
