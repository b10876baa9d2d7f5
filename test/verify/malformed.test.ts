import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AuditLog } from '../../src/dom0/audit/index.js';
import { ActionableError } from '../../src/dom0/service/refusal.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { makeMalformedCheck, malformedCheck } from '../../verify/malformed/check.js';
import { QUBE_SERVICES } from '../../verify/malformed/in-qube.js';
import type { ServiceTable } from '../../verify/malformed/host.js';

const SEED = 5150;

function figure(report: { figures: readonly { label: string; value: string }[] }, label: string): number {
  const f = report.figures.find((x) => x.label === label);
  assert.ok(f, `no figure ${label}`);
  return Number(f.value);
}

test('every operation and qubesd refuse malformed input uniformly and change nothing', async () => {
  const report = await malformedCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(report.failures, []);
  const dom0 = OPERATIONS.filter((o) => o.target === 'dom0-service').length;
  assert.equal(figure(report, 'services fuzzed'), dom0);
  assert.equal(figure(report, 'operations the policy decides, fuzzed by target'), OPERATIONS.length - dom0);
  assert.ok(figure(report, 'malformed inputs, all operations') >= OPERATIONS.length * 60);
  assert.ok(figure(report, 'malformed inputs: qmcp.Create') > 60);
  assert.ok(figure(report, 'malformed targets: admin.vm.Pause') > 60);
  assert.ok(figure(report, 'malformed requests: qubesd socket') > 30);
  assert.ok(figure(report, 'malformed requests in the qube: qmcp.Exec') > 30);
  assert.ok(figure(report, 'malformed requests in the qube: qmcp.ListDir') > 5);
  assert.ok(figure(report, 'malformed requests in the qube: qmcp.PortForward') > 10);
});

test('an in-qube service that runs a malformed request is caught', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-weak-qube-'));
  try {
    for (const name of ['qmcp.Exec', 'qmcp.ReadFile', 'qmcp.ListDir', 'qmcp.Stat']) await copyFile(join(QUBE_SERVICES, name), join(dir, name));
    const exec = await readFile(join(dir, 'qmcp.Exec'), 'utf8');
    const guard = "{ is_env \"$decoded\" && ! has_nul \"$value\"; } || reply_error bad_request 'bad env'";
    assert.equal(exec.split(guard).length, 2);
    await writeFile(join(dir, 'qmcp.Exec'), exec.replace(guard, ':'));
    const report = await makeMalformedCheck({ operations: ['run'], qubeServices: dir }).run({ scale: 1 }, SEED);
    const hits = report.failures.filter((f) => f.what.startsWith('qmcp.Exec in the qube (env'));
    assert.ok(hits.length > 0, JSON.stringify(report.failures.slice(0, 3)));
    assert.ok(hits.some((f) => /the command ran/.test(f.what)));
    assert.ok(report.failures.every((f) => f.what.startsWith('qmcp.Exec in the qube (env')), JSON.stringify(report.failures.slice(0, 3)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a port forward that takes a port qrexec would refuse is caught before it asks qrexec', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-weak-qube-'));
  try {
    const job = await readFile(join(QUBE_SERVICES, 'qmcp.Job'), 'utf8');
    const guard = `is_port "$value" || reply_error bad_request 'bad port'; port=$value`;
    assert.equal(job.split(guard).length, 2);
    await writeFile(join(dir, 'qmcp.Job'), job.replace(guard, 'port=$value'));
    const report = await makeMalformedCheck({ operations: ['port.forward'], qubeServices: dir }).run({ scale: 1 }, SEED);
    const hits = report.failures.filter((f) => f.what.startsWith('qmcp.PortForward in the qube (port'));
    assert.ok(hits.some((f) => /the command ran/.test(f.what)), JSON.stringify(report.failures.slice(0, 3)));
    assert.ok(report.failures.every((f) => f.what.startsWith('qmcp.PortForward in the qube (port')), JSON.stringify(report.failures.slice(0, 3)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Info that, for a malformed argument, says "no such qube" instead of refusing. */
function chattyInfo(real: ServiceTable): ServiceTable {
  const info = real.get('qmcp.Info') as ServiceSpec<unknown>;
  const weak: ServiceSpec<unknown> = {
    ...info,
    parse: (argument, payload) => info.parse(argument, payload) ?? { malformed: true },
    targets: (i) => ((i as { malformed?: boolean }).malformed ? [] : info.targets(i)),
    async handle(ctx) {
      if ((ctx.input as { malformed?: boolean }).malformed) throw new ActionableError('exists', 'no such qube');
      return info.handle(ctx);
    },
  };
  return new Map([...real, ['qmcp.Info', weak]]);
}

test('a service that answers malformed input with an error of its own is caught', async () => {
  const report = await makeMalformedCheck({ table: chattyInfo, operations: ['info', 'list'] }).run({ scale: 1 }, SEED);
  const hit = report.failures.find((f) => f.what.startsWith('qmcp.Info'));
  assert.ok(hit, JSON.stringify(report.failures.slice(0, 3)));
  assert.match(hit.what, /instead of the uniform refusal/);
  assert.match(hit.reproduction, /--seed 5150 .*--only malformed; qmcp\.Info\+/);
  assert.ok(report.failures.every((f) => f.what.startsWith('qmcp.Info')), 'only the weakened service fails');
});

/** SetFeature that writes a malformed request's feature anyway, then refuses. */
function leakyFeature(real: ServiceTable): ServiceTable {
  const spec = real.get('qmcp.SetFeature') as ServiceSpec<unknown>;
  const weak: ServiceSpec<unknown> = {
    ...spec,
    parse: (argument, payload) => spec.parse(argument, payload) ?? { qube: 'ai-box', feature: 'gui', value: payload.length > 0 ? 'x' : 'y' },
    targets: () => [],
    async handle({ qubesd, input }) {
      const i = input as { qube: string; feature: string; value: string };
      await qubesd.call('admin.vm.feature.Set', i.qube, i.feature, i.value);
      throw new Error('refuse after the write');
    },
  };
  return new Map([...real, ['qmcp.SetFeature', weak]]);
}

test('a service that changes state before refusing malformed input is caught', async () => {
  const report = await makeMalformedCheck({ table: leakyFeature, operations: ['feature.set'] }).run({ scale: 1 }, SEED);
  const hit = report.failures.find((f) => f.what.startsWith('qmcp.SetFeature'));
  assert.ok(hit, JSON.stringify(report.failures.slice(0, 3)));
  assert.match(hit.what, /machine changed|audit entries/);
});

test('a policy line that lets the principal pause any qube by name is caught on the near misses of a target', async () => {
  const report = await makeMalformedCheck({ operations: ['pause'], extraPolicy: 'admin.vm.Pause * mcp-control @anyvm allow target=dom0\n' }).run({ scale: 1 }, SEED);
  const hit = report.failures.find((f) => f.what.startsWith('admin.vm.Pause'));
  assert.ok(hit, JSON.stringify(report.failures.slice(0, 3)));
  assert.match(hit.what, /instead of the uniform refusal/);
  assert.match(hit.reproduction, /--only malformed; admin\.vm\.Pause toward /);
});

/** An audit log that, as it logs a refusal, leaves a file in dom0's /etc/qmcp and then writes to it again: a refusal that writes where it must not. */
function litteringAudit(real: AuditLog): AuditLog {
  const litter = join(dirname(real.path), '..', '..', '..', 'etc', 'qmcp', 'litter');
  return {
    path: real.path,
    intent: (fields, correlation) => real.intent(fields, correlation),
    outcome: (correlation, fields) => real.outcome(correlation, fields),
    refusal: (fields) => {
      appendFileSync(litter, 'x');
      return real.refusal(fields);
    },
    operator: (fields) => real.operator(fields),
    gate: (fields) => real.gate(fields),
  };
}

test('a refusal that writes a dom0 file, a new one or one in place, is caught', async () => {
  const report = await makeMalformedCheck({ audit: litteringAudit, operations: ['info'] }).run({ scale: 1 }, SEED);
  const what = report.failures.map((f) => f.what);
  assert.ok(what.some((w) => /^qmcp\.Info \(.*\): a dom0 file changed: etc\/qmcp\/litter added$/.test(w)), JSON.stringify(what));
  assert.ok(what.some((w) => /^qmcp\.Info \(.*\): a dom0 file changed: etc\/qmcp\/litter changed$/.test(w)), JSON.stringify(what));
});
