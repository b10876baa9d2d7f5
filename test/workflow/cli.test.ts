/**
 * Every qmcp command and every group of them answers --help with exit 0 and
 * its usage; `qmcp --version` prints the package version. The commands come
 * from the dispatcher's own lists, so a new command without help fails here.
 * The per-command and per-group answers are read from main() in this
 * process (each run would otherwise start Node and load every command); a
 * few runs of the real entry points show the process gives what main() does.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { format } from 'node:util';
import type { Command } from '../../src/cli/command.js';
import { commands } from '../../src/cli/commands/index.js';
import { dom0Commands } from '../../src/cli/commands/dom0.js';
import { main } from '../../src/cli/main.js';
import { VERSION } from '../../src/cli/version.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const QMCP = join(REPO, 'bin', 'qmcp.js');
const DOM0_MAIN = join(REPO, 'dist', 'src', 'cli', 'dom0-main.js');
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(argv: string[], entry: 'qmcp' | 'dom0' = 'qmcp'): Promise<Run> {
  // the dom0 bundle's entry point, as its launcher calls it
  const args =
    entry === 'qmcp'
      ? [QMCP, ...argv]
      : ['--input-type=module', '-e', `const { main } = await import(${JSON.stringify(DOM0_MAIN)}); process.exitCode = await main(${JSON.stringify(argv)});`];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** What bin/qmcp.js's main() answers, run here with its console output captured; one at a time, as it swaps the console. */
async function inline(argv: string[]): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void stdout.push(`${format(...a)}\n`);
  console.error = (...a: unknown[]) => void stderr.push(`${format(...a)}\n`);
  try {
    const status = await main(argv);
    return { status, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Every proper start of a command's words: the groups `qmcp dom0`, `qmcp dom0 audit`, `qmcp sim`, ... */
function groups(list: readonly Command[]): string[][] {
  const seen = new Map<string, string[]>();
  for (const c of list) for (let n = 1; n < c.path.length; n++) seen.set(c.path.slice(0, n).join(' '), c.path.slice(0, n));
  return [...seen.values()];
}

test('every command answers --help and -h with exit 0 and its usage, naming no document the repository lacks', async () => {
  const listed = new Set(commands.map((c) => c.path.join(' ')));
  for (const words of ['demo', 'serve', 'selftest', 'sim start', 'sim qrexec', 'sim ask', 'policy eval', 'policy render', 'dom0 install']) assert.ok(listed.has(words), words);
  for (const c of dom0Commands) assert.ok(commands.includes(c), `${c.path.join(' ')} is missing from qmcp's own list`);
  // one through the real entry point: the process prints and exits as main() says
  const install = commands.find((c) => c.path.join(' ') === 'dom0 install');
  assert.deepEqual(await run(['dom0', 'install', '-h']), { status: 0, stdout: `${install?.usage}\n`, stderr: '' });
  for (const c of commands) {
    const words = c.path.join(' ');
    for (const flag of ['--help', '-h']) {
      const r = await inline([...c.path, flag]);
      assert.equal(r.status, 0, `qmcp ${words} ${flag}: ${r.stderr}`);
      assert.equal(r.stdout, `${c.usage}\n`, `qmcp ${words} ${flag}`);
    }
    assert.ok(c.usage.startsWith(`usage: qmcp ${words}`), `${words}: ${c.usage}`);
    assert.match(c.usage, /\bExit\b[\s\S]*\b2 usage\.$/, `${words} names its exit statuses`);
    assert.doesNotMatch(c.usage, /\bSPEC\b/, `${words} cites a SPEC the repository does not have`);
  }
});

test('every group of commands answers --help with exit 0 and lists its commands; alone it is a usage error', async () => {
  const all = groups(commands);
  assert.deepEqual(
    all.map((g) => g.join(' ')).sort(),
    ['dom0', 'dom0 audit', 'policy', 'sim'],
  );
  // one through the real entry point: alone, a usage error on stderr with exit 2
  const dom0 = await run(['dom0']);
  assert.equal(dom0.status, 2);
  assert.equal(dom0.stderr, (await inline(['dom0'])).stderr);
  for (const g of all) {
    const words = g.join(' ');
    const help = await inline([...g, '--help']);
    assert.equal(help.status, 0, `qmcp ${words} --help: ${help.stderr}`);
    assert.ok(help.stdout.startsWith(`usage: qmcp ${words} COMMAND`), help.stdout);
    for (const c of commands.filter((m) => g.every((w, i) => m.path[i] === w))) assert.ok(help.stdout.includes(`qmcp ${c.path.join(' ')} `), `${words}: ${c.path.join(' ')}`);
    const alone = await inline(g);
    assert.equal(alone.status, 2, words);
    assert.ok(alone.stderr.startsWith(`usage: qmcp ${words} COMMAND`), alone.stderr);
  }
});

test('qmcp --help lists every command; qmcp --version prints the package version; the dom0 entry point answers the same', async () => {
  assert.equal(VERSION, PACKAGE_VERSION);
  const help = await run(['--help']);
  assert.equal(help.status, 0);
  for (const c of commands) assert.ok(help.stdout.includes(`qmcp ${c.path.join(' ')} `), c.path.join(' '));
  assert.deepEqual(await run(['--version']), { status: 0, stdout: `${PACKAGE_VERSION}\n`, stderr: '' });

  assert.deepEqual(await run(['--version'], 'dom0'), { status: 0, stdout: `${PACKAGE_VERSION}\n`, stderr: '' });
  const dom0 = await run(['dom0', '--help'], 'dom0');
  assert.equal(dom0.status, 0, dom0.stderr);
  for (const c of dom0Commands) assert.ok(dom0.stdout.includes(`qmcp ${c.path.join(' ')} `), c.path.join(' '));
  const install = await run(['dom0', 'install', '--help'], 'dom0');
  assert.equal(install.status, 0);
  assert.match(install.stdout, /^usage: qmcp dom0 install /);
});

test('a usage mistake names the command and how to see its usage', async () => {
  const r = await run(['sim', 'ask', '--dir', 'x', 'frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^qmcp sim ask: expected: list \| allow ID/);
  assert.match(r.stderr, /`qmcp sim ask --help` shows the usage/);
  const unknown = await run(['sim', 'frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command: sim frobnicate\n\nusage: qmcp sim COMMAND/);
});
