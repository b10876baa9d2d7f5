import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEMO_SECOND, DEMO_SETTINGS } from '../../src/sim/demo-settings.js';
import { rawCall, removeDir } from './helpers.js';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'qmcp.js');

test('qmcp sim start --fleet demo serves admin.vm.List and removes its sockets on SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-simstart-'));
  const child = spawn(process.execPath, [BIN, 'sim', 'start', '--dir', dir, '--fleet', 'demo', '--no-install'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited early (${code}): ${out}`)));
    });
    const reply = (await rawCall(join(dir, 'qubesd.sock'), 'admin.vm.List+ dom0 name dom0\0')).toString('latin1');
    assert.match(reply, /^0\0dom0 class=AdminVM state=Running uuid=0{8}-0{4}-0{4}-0{4}-0{12}\n/);
    assert.match(reply, /\nmcp-control class=AppVM state=Halted uuid=/);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(join(dir, 'qubesd.sock')), false);
    assert.equal(existsSync(join(dir, 'qubesd.internal.sock')), false);
    assert.equal(existsSync(join(dir, 'qubesd.misc.sock')), false);
    assert.equal(existsSync(join(dir, 'state', 'qubes.json')), true);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await removeDir(dir);
  }
});

/** Runs `qmcp sim start` until it is ready (then stops it) or exits; the exit code and output. */
async function simStart(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, 'sim', 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  // 'close', not 'exit': both pipes read to their end
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  let stopped = false;
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (!stopped && out.includes('ready')) {
      stopped = true;
      child.kill('SIGTERM');
    }
  });
  return { code: await exited, out, err };
}

test('qmcp sim start --settings FILE installs with those settings; a bad file or bad usage stops it with a reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-simstart-'));
  try {
    const settings = join(dir, 'settings.json');
    await writeFile(settings, JSON.stringify({ principal: 'mcp-control', mode: 'compat', namePrefix: 'sb-' }));
    const ok = await simStart(['--dir', join(dir, 'host'), '--settings', settings]);
    assert.equal(ok.code, 0, ok.out + ok.err);
    const installed = JSON.parse(await readFile(join(dir, 'host', 'dom0', 'etc', 'qmcp', 'settings.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(installed['mode'], 'compat');
    assert.equal(installed['namePrefix'], 'sb-');

    await writeFile(settings, '{"mode": ');
    const bad = await simStart(['--dir', join(dir, 'other'), '--settings', settings]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /installing qmcp into the simulated dom0 failed/);
    assert.equal(existsSync(join(dir, 'other', 'qubesd.sock')), false, 'no socket left behind');

    const usage = await simStart(['--dir', join(dir, 'x'), '--settings', settings, '--no-install']);
    assert.equal(usage.code, 2);
    assert.equal((await simStart(['--dir'])).code, 2);
    assert.equal((await simStart(['--dir', dir, 'extra'])).code, 2);
  } finally {
    await removeDir(dir);
  }
});

test('qmcp sim start: the demo fleet comes with the demo settings of both principals; a fleet FILE with the defaults says at start that creates are refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-simstart-'));
  try {
    const demo = await simStart(['--dir', join(dir, 'demo')]);
    assert.equal(demo.code, 0, demo.out + demo.err);
    const installed = JSON.parse(await readFile(join(dir, 'demo', 'dom0', 'etc', 'qmcp', 'settings.json'), 'utf8')) as { principals: Record<string, unknown>[] };
    assert.deepEqual(installed.principals.map((p) => p['principal']), [DEMO_SETTINGS['principal'], DEMO_SECOND['principal']]);
    for (const [i, want] of [DEMO_SETTINGS, DEMO_SECOND].entries()) {
      for (const key of ['poolCapBytes', 'privateCapBytes', 'egressQube', 'birthCeiling']) assert.equal(installed.principals[i]?.[key], want[key], `${String(want['principal'])} ${key}`);
    }
    const policy = await readFile(join(dir, 'demo', 'dom0', 'etc', 'qubes', 'policy.d', '30-qmcp.policy'), 'utf8');
    for (const want of [DEMO_SETTINGS, DEMO_SECOND]) assert.match(policy, new RegExp(`^qmcp\\.List\\s+\\*\\s+${String(want['principal'])}\\s`, 'm'), `policy for ${String(want['principal'])}`);
    assert.doesNotMatch(demo.err, /refused/);

    const fleet = join(dir, 'fleet.json');
    await writeFile(fleet, JSON.stringify({ qubes: [{ name: 'tpl', klass: 'TemplateVM' }, { name: 'mcp-control', klass: 'AppVM', template: 'tpl' }] }));
    const own = await simStart(['--dir', join(dir, 'own'), '--fleet', fleet]);
    assert.equal(own.code, 0, own.out + own.err);
    const defaults = JSON.parse(await readFile(join(dir, 'own', 'dom0', 'etc', 'qmcp', 'settings.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(defaults['poolCapBytes'] ?? null, null);
    assert.match(own.err, /WARNING: the settings in \S+settings\.json leave poolCapBytes and privateCapBytes unset, so every create the agent asks for is refused/);
    assert.match(own.err, /--settings FILE/);
  } finally {
    await removeDir(dir);
  }
});
