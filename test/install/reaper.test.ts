// The reaper runs from the systemd unit install writes, exactly as the timer
// would start it, against a simulated host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLine } from '../../src/dom0/audit/entry.js';
import { REAPER_SERVICE, REAPER_TIMER } from '../../src/dom0/install/index.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';

const GiB = 1024 ** 3;

/** Environment= and ExecStart= of a unit, unquoted as systemd would. */
function unitCommand(unit: string): { env: Record<string, string>; argv: string[] } {
  const words = (line: string): string[] => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1'));
  const env: Record<string, string> = {};
  let argv: string[] = [];
  for (const line of unit.split('\n')) {
    if (line.startsWith('Environment=')) {
      const [kv] = words(line.slice('Environment='.length));
      const eq = (kv as string).indexOf('=');
      env[(kv as string).slice(0, eq)] = (kv as string).slice(eq + 1);
    } else if (line.startsWith('ExecStart=')) argv = words(line.slice('ExecStart='.length));
  }
  return { env, argv };
}

const rateDir = (root: string): string => join(root, 'var', 'lib', 'qmcp', 'rate');

/** A per-call bucket of CALLER holding 4 refusals counted long ago (service/rate.ts). */
function plantRefusals(root: string, caller: string): void {
  mkdirSync(rateDir(root), { recursive: true });
  writeFileSync(join(rateDir(root), caller), JSON.stringify({ tokens: 0, at: 0, refused: 4, since: 0 }));
}

/** CALLER's rate-limit refusals in the audit log, and those its bucket still holds. */
function rateRefusals(root: string, caller: string): { logged: number; pending: number } {
  const lines = readFileSync(join(root, 'var', 'log', 'qmcp', 'audit.log'), 'utf8').split('\n').filter(Boolean);
  const logged = lines.reduce((n, l) => {
    const p = parseLine(l);
    return 'entry' in p && p.entry.principal === caller && p.entry.operation === 'rate-limit' ? n + (p.entry.count ?? 1) : n;
  }, 0);
  return { logged, pending: (JSON.parse(readFileSync(join(rateDir(root), caller), 'utf8')) as { refused: number }).refused };
}

test('the installed reaper timer runs the reaper, which destroys only tombstones past retention and writes rate-limit counts past their window', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-reaper-'));
  const old = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 19).replace(/[-:]/g, '') + 'Z';
  const recent = new Date(Date.now() - 3_600_000).toISOString().slice(0, 19).replace(/[-:]/g, '') + 'Z';
  const host = await startSimHost({
    dir,
    install: true,
    initialSettings: { principal: 'mcp-control', mode: 'least-privilege', poolCapBytes: 100 * GiB, privateCapBytes: 4 * GiB, tombstoneRetentionDays: 7, gate: OPEN_GATE },
    fleet: {
      qubes: [
        { name: 'tpl', klass: 'TemplateVM', label: 'black' },
        { name: 'mcp-control', klass: 'AppVM', template: 'tpl', label: 'red' },
        { name: 'ai-old', klass: 'AppVM', template: 'tpl', label: 'red', tags: [`qmcp-tombstone-${old}`, 'qmcp-owner-mcp-control'] },
        { name: 'ai-recent', klass: 'AppVM', template: 'tpl', label: 'red', tags: [`qmcp-tombstone-${recent}`, 'qmcp-owner-mcp-control'] },
      ],
    },
  });
  try {
    const root = dom0Root(dir);
    assert.match(readFileSync(join(root, REAPER_TIMER), 'utf8'), /OnCalendar=hourly/);
    const { env, argv } = unitCommand(readFileSync(join(root, REAPER_SERVICE), 'utf8'));
    assert.equal(env['QMCP_ROOT'], root);
    // Asynchronously: the simulated qubesd it calls lives in this very process.
    plantRefusals(root, 'ai-flood');
    const run = await promisify(execFile)(argv[0] as string, argv.slice(1), { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 });
    assert.match(run.stdout, /^reaped ai-old$/m);
    assert.match(run.stdout, /^kept ai-recent: within retention$/m);
    assert.equal(host.qubesd.app.vms.has('ai-old'), false);
    assert.equal(host.qubesd.app.vms.has('ai-recent'), true);
    // the count the rate limit kept for a caller refused long ago that never called again, and no other call came
    assert.deepEqual(rateRefusals(root, 'ai-flood'), { logged: 4, pending: 0 });
    assert.match(run.stdout, /^rate-limit refusals of ai-flood written: 4$/m);
    // weakened: the reaper leaves the counts to the services' calls
    const weakReap = weakenedFile('dom0/reaper', "await writeOverdueRefusals(dom0Host(env, 'per-call'))", '[]');
    const weak = weakenedFile('dom0/reaper-main', 'reap(process.env', 'reap(process.env', { [compiled('dom0/reaper')]: weakReap });
    plantRefusals(root, 'ai-flood2');
    await promisify(execFile)(argv[0] as string, [weak], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 });
    assert.deepEqual(rateRefusals(root, 'ai-flood2'), { logged: 0, pending: 4 });
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
