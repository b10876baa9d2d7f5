import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { mkdtempSync, rmSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initAuditLog, openAudit, verifyAudit, fileWitness } from '../../src/dom0/audit/index.js';
import type { Qubesd } from '../../src/dom0/qubesd.js';
import { runService } from '../../src/dom0/service/run.js';
import type { ServiceConfig, ServiceSpec } from '../../src/dom0/service/run.js';
import { ActionableError } from '../../src/dom0/service/refusal.js';
import { DEFAULT_SETTINGS } from '../../src/shared/model/settings.js';

const fleet: Record<string, { klass: string; tags: string[] }> = {
  dom0: { klass: 'AdminVM', tags: [] },
  'ai-read': { klass: 'AppVM', tags: ['ai-managed'] },
  'ai-exec': { klass: 'AppVM', tags: ['ai-managed', 'ai-exec'] },
  'ai-full': { klass: 'AppVM', tags: ['ai-managed', 'ai-full'] },
  vault: { klass: 'AppVM', tags: [] },
  sink: { klass: 'AppVM', tags: ['ai-dump'] },
  hybrid: { klass: 'AppVM', tags: ['ai-managed', 'ai-dump', 'ai-full'] },
  'ai-half': { klass: 'DispVM', tags: ['ai-managed', 'ai-full', 'qmcp-incomplete'] },
};

const fakeQubesd = {
  async list() {
    return new Map(Object.entries(fleet).map(([n, q]) => [n, { klass: q.klass, state: 'Halted' }]));
  },
  async tags(name: string) {
    return fleet[name]?.tags ?? [];
  },
  // a whole-machine snapshot's one read
  async systemInfo() {
    return new Map(Object.entries(fleet).map(([n, q]) => [n, { klass: q.klass, state: 'Halted', tags: q.tags }]));
  },
} as unknown as Qubesd;

/** A service that needs exec over its argument; it fails actionably on request. */
const poke: ServiceSpec<{ name: string; fail: boolean }> = {
  operation: 'poke',
  changesState: true,
  parse(argument, payload) {
    if (!/^[a-z-]+$/.test(argument)) return null;
    const text = payload.toString();
    if (text !== '' && text !== 'fail') return null;
    return { name: argument, fail: text === 'fail' };
  },
  targets: (i) => [{ name: i.name, tier: 'exec' }],
  async handle(ctx) {
    if (ctx.input.fail) throw new ActionableError('halted', 'qube is halted: start it first');
    return { poked: ctx.targets[0]?.name };
  },
};

function setup(mode: 'compat' | 'least-privilege') {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-run-'));
  const config: ServiceConfig = {
    principal: 'mcp-control',
    scope: { umbrella: 'ai-managed', sink: 'ai-dump', elevation: { exec: 'ai-exec', net: 'ai-net', full: 'ai-full' }, mode, hiding: ['qmcp-incomplete'] },
    limits: { maxBytes: 16, deadlineMs: 2000 },
    slotsDir: join(root, 'run', 'slots'),
    slotCount: 4,
    settings: DEFAULT_SETTINGS,
    approvalsDir: join(root, 'approvals'),
  };
  return { root, config };
}

async function call(root: string, config: ServiceConfig | null, full: string, payload = '', caller = 'mcp-control') {
  const stdin = new PassThrough();
  stdin.end(payload);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const plus = full.indexOf('+');
  const status = await runService(new Map([['qmcp.Poke', poke as ServiceSpec<unknown>]]), {
    env: { QREXEC_SERVICE_FULL_NAME: full, QREXEC_REMOTE_DOMAIN: caller, QREXEC_SERVICE_ARGUMENT: plus < 0 ? '' : full.slice(plus + 1) },
    stdin,
    io: { stdout, stderr },
    qubesd: fakeQubesd,
    audit: openAudit({ root, witness: fileWitness(join(root, 'witness')) }),
    config,
    log: () => {},
  });
  return { status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const REFUSED = { status: 126, stdout: '', stderr: 'Request refused\n' };

test('runner: every refusal is byte-identical, whatever its reason', async () => {
  const { root, config } = setup('least-privilege');
  await initAuditLog(root);
  try {
    const reasons: [string, string, string?][] = [
      ['absent', 'qmcp.Poke+nosuch'],
      ['outside the umbrella', 'qmcp.Poke+vault'],
      ['below tier', 'qmcp.Poke+ai-read'],
      ['sink', 'qmcp.Poke+sink'],
      ['umbrella+sink hybrid', 'qmcp.Poke+hybrid'],
      ['incomplete', 'qmcp.Poke+ai-half'],
      ['dom0', 'qmcp.Poke+dom0'],
      ['malformed argument', 'qmcp.Poke+Ai_x'],
      ['malformed payload', 'qmcp.Poke+ai-exec', 'junk'],
      ['oversize payload', 'qmcp.Poke+ai-exec', 'x'.repeat(17)],
      ['unknown service', 'qmcp.Nope+ai-exec'],
    ];
    for (const [why, full, payload] of reasons) {
      assert.deepEqual(await call(root, config, full, payload), REFUSED, why);
    }
    assert.deepEqual(await call(root, config, 'qmcp.Poke+ai-exec', '', 'ai-exec'), REFUSED, 'caller not the principal');
    assert.deepEqual(await call(root, null, 'qmcp.Poke+ai-exec'), REFUSED, 'unusable settings');
    assert.equal((await verifyAudit({ root, witness: fileWitness(join(root, 'witness')) })).valid, true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('runner: allowed at tier, actionable in scope, untiered depends on mode', async () => {
  const lp = setup('least-privilege');
  const compat = setup('compat');
  await initAuditLog(lp.root);
  await initAuditLog(compat.root);
  try {
    assert.deepEqual(await call(lp.root, lp.config, 'qmcp.Poke+ai-exec'), { status: 0, stdout: '{"poked":"ai-exec"}\n', stderr: '' });
    assert.deepEqual(await call(lp.root, lp.config, 'qmcp.Poke+ai-full', 'fail'), {
      status: 1,
      stdout: '{"error":{"code":"halted","message":"qube is halted: start it first"}}\n',
      stderr: '',
    });
    assert.equal((await call(compat.root, compat.config, 'qmcp.Poke+ai-read')).status, 0, 'compat: untiered is full');
    const report = await verifyAudit({ root: lp.root, witness: fileWitness(join(lp.root, 'witness')) });
    assert.equal(report.valid, true);
    assert.equal(report.entries, 4, 'intent and outcome for each of the two calls');
  } finally {
    rmSync(lp.root, { recursive: true, force: true });
    rmSync(compat.root, { recursive: true, force: true });
  }
});

test('runner: a call whose intent cannot be audited is refused and does not act', async () => {
  const { root, config } = setup('least-privilege');
  try {
    mkdirSync(join(root, 'var', 'log'), { recursive: true });
    chmodSync(join(root, 'var', 'log'), 0o500);
    // No audit log directory: the intent cannot be written.
    assert.deepEqual(await call(root, config, 'qmcp.Poke+ai-exec'), REFUSED);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
