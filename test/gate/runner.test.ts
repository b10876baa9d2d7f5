/**
 * The action gate in the dom0 service runner, in process: what asks, what
 * each end gives the caller and the audit log, and the checks after an
 * approval, each with the weakened variant it catches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalRequest } from '../../src/dom0/gate/store.js';
import { AnswerRefused, approvalsDir, writeAnswer } from '../../src/dom0/gate/store.js';
import { operation } from '../../src/shared/model/capabilities.js';
import { BASE_SETTINGS, REFUSED, auditValid, call, json, startHost } from '../services-write/helpers.js';
import type { CallOptions, CallResult, Host } from '../services-write/helpers.js';
import { OWNER_PREFIX } from '../../src/shared/model/marks.js';
import { ASKING, GATEABLE_SERVICE_OPS, answerNext, auditEntries, fastClock, machine, pendingRequest, weakenedRunner } from './helpers.js';

/** A valid call of each dom0-service operation the gate can ask about, on the test fleet. */
const SAMPLES: Readonly<Record<string, { argument: string; payload: unknown }>> = {
  start: { argument: 'ai-box', payload: '' },
  shutdown: { argument: 'ai-box', payload: '' },
  kill: { argument: 'ai-box', payload: '' },
  'firewall.set': { argument: 'ai-box', payload: 'action=accept dsthost=192.0.2.1\naction=drop\n' },
  remove: { argument: 'ai-locked', payload: '' },
  'property.set': { argument: 'ai-box', payload: { name: 'memory', value: 1000 } },
  'feature.set': { argument: 'ai-box', payload: { name: 'gui', value: '0' } },
  create: { argument: '', payload: { name: 'ai-new1', template: 'ai-tpl' } },
  'create.disptemplate': { argument: '', payload: { name: 'ai-new2', template: 'ai-tpl' } },
  disposable: { argument: 'ai-dvm', payload: { name: 'ai-new3' } },
  clone: { argument: 'ai-box', payload: { name: 'ai-new4' } },
  'device.attach': { argument: 'ai-box', payload: { class: 'block', backend: 'ai-dvm', port: 'xvdb' } },
  'device.detach': { argument: 'ai-box', payload: { class: 'block', backend: 'ai-dvm', port: 'xvdb' } },
  checkpoint: { argument: 'ai-box', payload: '' },
  revert: { argument: 'ai-box', payload: '' },
  renew: { argument: 'ai-box', payload: {} },
  // ai-read is made the principal's own tombstone below
  'tombstone.restore': { argument: 'ai-read', payload: '' },
};

function sample(op: string, opts: CallOptions = {}, h?: Host): (host: Host) => Promise<CallResult> {
  const s = SAMPLES[op];
  assert.ok(s, `no sample for ${op}`);
  return (host) => call(h ?? host, `${operation(op).service}+${s.argument}`, s.payload, opts);
}

const FEATURE = 'qmcp.SetFeature+ai-box';

/** The uniform refusal, after any keepalive newlines the wait wrote. */
function assertRefused(r: CallResult, why: string): void {
  assert.equal(r.status, REFUSED.status, why);
  assert.equal(r.stderr, REFUSED.stderr, why);
  assert.match(r.stdout, /^\n*$/, `${why}: stdout holds nothing but keepalives`);
}

/** The gate's entries and the call's, for one request. */
async function trail(h: Host, r: ApprovalRequest): Promise<string[]> {
  return (await auditEntries(h.root)).filter((e) => e.correlation === r.correlation).map((e) => `${e.kind} ${e.result ?? '-'} ${e.detail ?? '-'}`);
}

function storeEmpty(h: Host): boolean {
  const dir = approvalsDir(h.root);
  return !existsSync(dir) || readdirSync(dir).every((f) => f.endsWith('.lock'));
}

test('each gated dom0-service operation asks; a denial is the uniform refusal, changes nothing, and is audited', async () => {
  assert.deepEqual(Object.keys(SAMPLES).sort(), [...GATEABLE_SERVICE_OPS].sort(), 'one sample per gateable dom0-service operation of the model');
  const h = await startHost(ASKING);
  try {
    // a tombstone has left the umbrella and carries its marker and owner
    const tomb = h.vm('ai-read');
    tomb?.tags.splice(0, tomb.tags.length, ...tomb.tags.filter((t) => t !== 'ai-managed'), 'qmcp-tombstone', 'qmcp-tombstone-20261101T120000Z', `${OWNER_PREFIX}mcp-control`);
    for (const op of GATEABLE_SERVICE_OPS) {
      const before = machine(h);
      const pending = sample(op)(h);
      const r = await answerNext(h.root, 'deny', (q) => q.operation === op).catch(async (e: unknown) => {
        throw new Error(`${op}: ${String(e)}; the call gave ${JSON.stringify(await pending)}`);
      });
      assert.equal(r.principal, 'mcp-control');
      // a tombstone is named by the prompt's description, not among the visible qubes a request lists
      assert.deepEqual(r.qubes.length > 0, op !== 'tombstone.restore', op);
      assertRefused(await pending, op);
      assert.equal(machine(h), before, `${op}: nothing changed`);
      assert.deepEqual(await trail(h, r), ['request - request ' + r.id, 'answer refused deny by tester via cli'], op);
      assert.ok(storeEmpty(h), `${op}: the request is gone`);
    }
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('an approval acts once, under the request\'s correlation; a second answer finds nothing', async () => {
  const h = await startHost(ASKING);
  try {
    const pending = call(h, FEATURE, { name: 'gui', value: '0' });
    const r = await answerNext(h.root, 'allow');
    const done = await pending;
    assert.equal(done.status, 0);
    assert.deepEqual(JSON.parse(done.stdout), { name: 'gui', value: '0' });
    assert.equal(h.vm('ai-box')?.features['gui'], '0');
    assert.deepEqual(await trail(h, r), ['request - request ' + r.id, 'answer ok allow by tester via cli', 'intent - -', 'outcome ok -']);
    await assert.rejects(writeAnswer(approvalsDir(h.root), r.id, { decision: 'allow', by: 'tester', how: 'cli' }, new Date()), (e: unknown) => e instanceof AnswerRefused && e.reason === 'unknown');
    assert.ok(storeEmpty(h));
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('a hidden qube and an absent name never make a request: the same refusal as any other', async () => {
  const h = await startHost(ASKING);
  try {
    const before = machine(h);
    const results = [];
    for (const name of ['vault', 'ai-outside', 'ai-nosuch', 'ai-read']) {
      for (const [service, payload] of [['qmcp.Remove', ''], ['qmcp.SetFeature', { name: 'gui', value: '0' }]] as const) {
        results.push(await call(h, `${service}+${name}`, payload));
      }
    }
    for (const r of results) assert.deepEqual(r, REFUSED);
    assert.equal(machine(h), before);
    assert.ok(storeEmpty(h), 'no request recorded');
    assert.deepEqual((await auditEntries(h.root)).filter((e) => e.kind === 'request'), []);
  } finally {
    await h.done();
  }
});

/** A call waiting for approval while `meanwhile` changes the machine; then allowed. */
async function allowAfter(h: Host, meanwhile: () => Promise<void>, opts: CallOptions = {}): Promise<{ result: CallResult; request: ApprovalRequest }> {
  const pending = call(h, 'qmcp.SetProperty+ai-box', { name: 'memory', value: 1000 }, opts);
  const request = await pendingRequest(h.root);
  await meanwhile();
  await writeAnswer(approvalsDir(h.root), request.id, { decision: 'allow', by: 'tester', how: 'cli' }, new Date());
  return { result: await pending, request };
}

const NO_RECHECK = ["if (typeof targets === 'string')", 'if (false)'] as const;

test('after an approval the targets are checked again: a tier lowered or a qube hidden while waiting refuses', async () => {
  const h = await startHost(ASKING);
  try {
    const lowered = await allowAfter(h, () => h.qubesd.call('admin.vm.tag.Remove', 'ai-box', 'ai-full').then(() => undefined));
    assertRefused(lowered.result, 'tier lowered');
    assert.equal(h.vm('ai-box')?.props['memory'], 800);
    assert.deepEqual((await trail(h, lowered.request)).slice(1), ['answer ok allow by tester via cli', 'answer refused recheck: tier below full']);
    await h.qubesd.call('admin.vm.tag.Set', 'ai-box', 'ai-full');

    const hidden = await allowAfter(h, () => h.qubesd.call('admin.vm.tag.Remove', 'ai-box', 'ai-managed').then(() => undefined));
    assertRefused(hidden.result, 'hidden');
    assert.equal(h.vm('ai-box')?.props['memory'], 800);
    assert.deepEqual((await trail(h, hidden.request)).slice(2), ['answer refused recheck: not visible']);
    await h.qubesd.call('admin.vm.tag.Set', 'ai-box', 'ai-managed');

    // weakened: without the check after approval, the lowered tier does not stop it
    const weak = await weakenedRunner(...NO_RECHECK);
    const acted = await allowAfter(h, () => h.qubesd.call('admin.vm.tag.Remove', 'ai-box', 'ai-full').then(() => undefined), { runService: weak });
    assert.equal(acted.result.status, 0, 'the weakened runner acts');
    assert.equal(h.vm('ai-box')?.props['memory'], 1000);
  } finally {
    await h.done();
  }
});

test('a lapse and a withdrawal are the uniform refusal and change nothing', async () => {
  const h = await startHost({ ...ASKING, approvalDeadlineSeconds: 10 });
  try {
    const before = machine(h);
    // the deadline passes on a clock whose sleeps are instant; the wait wrote its keepalives meanwhile
    const lapsed = await call(h, FEATURE, { name: 'gui', value: '0' }, { gate: { clock: fastClock() } });
    assertRefused(lapsed, 'lapsed');
    assert.equal(lapsed.stdout, '\n'.repeat(4), 'a keepalive every 2 s of the 10 s');
    const entries = await auditEntries(h.root);
    const request = entries.find((e) => e.kind === 'request');
    assert.ok(request);
    assert.deepEqual(entries.filter((e) => e.correlation === request.correlation).map((e) => `${e.kind} ${e.detail}`), [`request ${request.detail}`, 'answer lapsed']);

    // told to stop (SIGTERM, SIGHUP in a service process)
    let stop = (): void => undefined;
    const stopped = call(h, FEATURE, { name: 'gui', value: '0' }, { gate: { onStop: (w) => ((stop = w), () => undefined) } });
    const r1 = await pendingRequest(h.root);
    stop();
    assertRefused(await stopped, 'stopped');
    assert.deepEqual((await trail(h, r1)).slice(1), ['answer refused withdrawn']);
    await assert.rejects(writeAnswer(approvalsDir(h.root), r1.id, { decision: 'allow', by: 'tester', how: 'cli' }, new Date()), AnswerRefused);

    // the caller gone: its stdout shut, so the keepalive cannot be written
    const gone = await call(h, FEATURE, { name: 'gui', value: '0' }, { gate: { clock: fastClock() }, stdout: (s) => s.destroy() });
    assert.equal(gone.status, REFUSED.status);
    const last = (await auditEntries(h.root)).at(-1);
    assert.equal(`${last?.kind} ${last?.detail}`, 'answer withdrawn');
    assert.equal(machine(h), before);
    assert.ok(storeEmpty(h));
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

const NO_DIGEST_CHECK = [' || answer.digest !== digest', ''] as const;
const NO_REQUEST_CHECK = ['answer.id !== request.id || answer.nonce !== request.nonce || ', ''] as const;
const NO_REBIND_CHECK = [' || settingsDigest(fresh.settings) !== bound.settingsDigest', ''] as const;

/** A feature set waiting while `answer` writes the answer file by hand; whether it acted. */
async function answeredByHand(h: Host, answer: (r: ApprovalRequest, path: string) => void, opts: CallOptions = {}): Promise<{ acted: boolean; trail: string[] }> {
  await h.qubesd.call('admin.vm.feature.Set', 'ai-box', 'gui', '1');
  const pending = call(h, FEATURE, { name: 'gui', value: '0' }, opts);
  const r = await pendingRequest(h.root);
  answer(r, join(approvalsDir(h.root), `${r.id}.answer.json`));
  const result = await pending;
  return { acted: result.status === 0 && h.vm('ai-box')?.features['gui'] === '0', trail: await trail(h, r) };
}

test('an approval binds one exact call: another digest, a replayed answer and changed settings are worthless', async () => {
  const h = await startHost(ASKING);
  try {
    const forged = (digest: string) => (r: ApprovalRequest, path: string): void =>
      writeFileSync(path, JSON.stringify({ id: r.id, nonce: r.nonce, digest, decision: 'allow', by: 'tester', how: 'cli', at: new Date().toISOString() }));
    const other = await answeredByHand(h, forged('0'.repeat(64)));
    assert.deepEqual(other, { acted: false, trail: [other.trail[0] as string, 'answer refused mismatch'] });
    assert.equal((await answeredByHand(h, forged('0'.repeat(64)), { runService: await weakenedRunner(...NO_DIGEST_CHECK) })).acted, true, 'weakened: no digest check');

    // the answer to one call, replayed for the same call made again
    const first = call(h, FEATURE, { name: 'gui', value: '0' });
    const r1 = await answerNext(h.root, 'allow');
    assert.equal((await first).status, 0);
    const replay = (r: ApprovalRequest, path: string): void =>
      writeFileSync(path, JSON.stringify({ id: r1.id, nonce: r1.nonce, digest: r1.digest, decision: 'allow', by: 'tester', how: 'cli', at: new Date().toISOString() }));
    const replayed = await answeredByHand(h, replay);
    assert.equal(replayed.acted, false);
    assert.equal(replayed.trail[1], 'answer refused mismatch');
    assert.equal((await answeredByHand(h, replay, { runService: await weakenedRunner(...NO_REQUEST_CHECK) })).acted, true, 'weakened: the answer not tied to its request');

    // the settings change while the call waits: the approval was given under the old ones
    const rebind = (r: ApprovalRequest, path: string): void => {
      h.writeSettings({ ...ASKING, featureAllowlist: ['menu-items'] });
      forged(r.digest)(r, path);
    };
    const rebound = await answeredByHand(h, rebind);
    assert.equal(rebound.acted, false);
    assert.deepEqual(rebound.trail.slice(1), ['answer ok allow by tester via cli', 'answer refused rebound']);
    h.writeSettings(ASKING);
    assert.equal((await answeredByHand(h, rebind, { runService: await weakenedRunner(...NO_REBIND_CHECK) })).acted, true, 'weakened: no settings binding');
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('pending cap: one more request than the cap is refused at once, without a request', async () => {
  const h = await startHost({ ...ASKING, approvalPendingCap: 1 });
  try {
    const waiting = call(h, FEATURE, { name: 'gui', value: '0' });
    const r = await pendingRequest(h.root);
    assert.deepEqual(await call(h, 'qmcp.SetProperty+ai-box', { name: 'memory', value: 900 }), REFUSED);
    assert.equal((await auditEntries(h.root)).at(-1)?.detail, 'too many requests waiting for the operator');
    await writeAnswer(approvalsDir(h.root), r.id, { decision: 'deny', by: 'tester', how: 'cli' }, new Date());
    assertRefused(await waiting, 'denied');
    // the gate off for an operation: it runs without asking
    h.writeSettings({ ...ASKING, gate: { ...ASKING.gate as object, 'feature.set': 'allow' } });
    assert.deepEqual(json(await call(h, FEATURE, { name: 'gui', value: '0' })), { name: 'gui', value: '0' });
    h.writeSettings({ ...BASE_SETTINGS, gate: { 'feature.set': 'maybe' } });
    const malformed = call(h, FEATURE, { name: 'gui', value: '1' });
    assert.equal((await answerNext(h.root, 'deny')).operation, 'feature.set', 'a malformed gate setting asks');
    assertRefused(await malformed, 'denied');
  } finally {
    await h.done();
  }
});
