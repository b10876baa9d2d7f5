/**
 * Submitting a plan: dom0 checks every step's shape, scope and tier, and a
 * plan with any step it refuses is refused as a whole with the uniform
 * refusal, the same bytes whichever step it was and whatever made it
 * outside (malformed, hidden, absent, above the tier). A step may name a
 * qube an earlier step creates, at the tier that creation gives it. Status
 * is the submitter's alone.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { checkShape } from '../../src/dom0/plans/check.js';
import { plansDir } from '../../src/dom0/plans/store.js';
import { encodeCopyToRequest, encodeExecRequest, encodeReadFileRequest } from '../../src/shared/inqube-protocol.js';
import type { PlanStep } from '../../src/shared/plan-protocol.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import type { ServiceSut } from '../../verify/malformed/host.js';
import { BASE_SETTINGS, NETBOX, PRINCIPAL, REFUSED, json, replacing, startPlanHost, step, weakened, type PlanHost } from './helpers.js';

const good: PlanStep[] = [step.dom0('start', 'ai-box'), step.run('ai-box', 'true'), step.firewall(NETBOX, 'action=accept dsthost=192.0.2.1\naction=drop\n')];

/** Steps dom0 must refuse, each on its own; every other step of a plan is good. */
const BAD: Readonly<Record<string, PlanStep>> = {
  'an outside qube': step.dom0('start', 'vault'),
  'an absent qube': step.dom0('start', 'ai-nosuch'),
  'a sink named as a qube to act on': step.run('drop', 'true'),
  'a tier too low (firewall on an exec qube)': step.firewall('ai-execbox', 'action=drop\n'),
  'a tier too low (run in a read qube)': step.run('ai-read', 'true'),
  'a copy to a read-tier qube': step.inQube('copy', 'ai-box', 'ai-read', encodeCopyToRequest({ paths: ['/etc/hostname'] })),
  'a copy to an outside qube': step.inQube('copy', 'ai-box', 'vault', encodeCopyToRequest({ paths: ['/etc/hostname'] })),
  'an event window': step.dom0('events', '1'),
  'a plan as a step': step.dom0('plan.status', '1'),
  'a malformed dom0 payload': step.dom0('property.set', 'ai-box', { name: 'netvm', value: 'sys-firewall' }),
  'a payload on an Admin API call that takes none': step.admin('firewall.reload', NETBOX, 'x'),
  'a payload on a kill, which takes none': { operation: 'kill', argument: 'ai-box', payload: Buffer.from('x') },
  'a firewall rule out of shape': step.firewall(NETBOX, 'action=accept dsthost=a b\n'),
  'a firewall rule qubesd refuses (ports without a protocol)': step.firewall(NETBOX, 'action=accept dstports=443\n'),
  'no firewall rules': step.firewall(NETBOX, ''),
  'a command without a timeout': { operation: 'run', qube: 'ai-box', argument: '', payload: encodeExecRequest({ shell: 'true' }) },
  'a command over an hour': step.run('ai-box', 'true', 3601),
  'a request not in its one encoding': { operation: 'file.read', qube: 'ai-box', argument: '', payload: Buffer.concat([encodeReadFileRequest({ path: '/x' }), Buffer.from('x')]) },
  'an argument on a read': { operation: 'file.read', qube: 'ai-box', argument: 'ai-peer', payload: encodeReadFileRequest({ path: '/x' }) },
  'a qube named before the step that creates it': step.dom0('start', 'ai-later'),
};

describe('plan submission', () => {
  let ph: PlanHost;
  before(async () => {
    ph = await startPlanHost({ ...BASE_SETTINGS, approvalPendingCap: 16 });
  });
  after(() => ph.done());

  it('keeps a plan whose every step is inside, and answers its id, state and size', async () => {
    assert.deepEqual(json(await ph.submit(good)), { plan: '1', state: 'pending' });
    assert.deepEqual(json(await ph.submit([step.inQube('copy', 'ai-box', 'drop', encodeCopyToRequest({ paths: ['/etc/hostname'] }))])), { plan: '2', state: 'pending' });
  });

  it('refuses a plan with any bad step, uniformly: the same bytes as an all-bad plan and as a call naming a hidden qube', async () => {
    const hidden = await ph.h.call('qmcp.Start+vault');
    assert.deepEqual(hidden, REFUSED);
    const create = step.dom0('create', '', { name: 'ai-later', template: 'ai-tpl' });
    for (const [what, bad] of Object.entries(BAD)) {
      for (const at of [0, 1, 3]) {
        const steps = [...good.slice(0, at), bad, ...good.slice(at), create];
        assert.deepEqual(await ph.submit(steps), REFUSED, `${what}, at step ${at + 1}`);
      }
      assert.deepEqual(await ph.submit([bad, bad]), REFUSED, `${what}, all bad`);
    }
    const kept = readdirSync(`${plansDir(ph.h.root)}/${PRINCIPAL}`).filter((f) => f.endsWith('.json'));
    assert.deepEqual(kept.sort(), ['1.json', '2.json']);
  });

  it('refuses a malformed plan: no steps, too many, a purpose that is not one printable line', async () => {
    assert.deepEqual(await ph.submit([]), REFUSED);
    assert.deepEqual(await ph.submit(Array.from({ length: 33 }, () => good[0] as PlanStep)), REFUSED);
    assert.equal(json(await ph.submit(Array.from({ length: 32 }, () => good[0] as PlanStep))).state, 'pending');
    for (const purpose of ['', 'two\nlines', 'x'.repeat(201), 'caf\u00e9']) assert.deepEqual(await ph.submit(good, purpose), REFUSED, JSON.stringify(purpose));
  });

  it('takes a step on a qube an earlier step creates at the tier its creation gives it, and no higher', async () => {
    const create = step.dom0('create', '', { name: 'ai-made', template: 'ai-tpl' });
    // the birth ceiling is exec: the new qube may be started and run in, not have its firewall set
    assert.equal(json(await ph.submit([create, step.dom0('start', 'ai-made'), step.run('ai-made', 'true')])).state, 'pending');
    assert.deepEqual(await ph.submit([create, step.firewall('ai-made', 'action=drop\n')]), REFUSED);
    // a clone of a read-tier qube is born read: nothing to run in it
    assert.deepEqual(await ph.submit([step.dom0('clone', 'ai-read', { name: 'ai-made2' }), step.run('ai-made2', 'true')]), REFUSED);
  });
});

describe('the pending cap and plan status', () => {
  let ph: PlanHost;
  before(async () => {
    ph = await startPlanHost({ ...BASE_SETTINGS, approvalPendingCap: 2 });
  });
  after(() => ph.done());

  it('refuses a plan over the pending cap, uniformly', async () => {
    json(await ph.submit(good));
    json(await ph.submit(good));
    assert.deepEqual(await ph.submit(good), REFUSED);
  });

  it('shows the submitter its plan, and refuses an unknown id and another principal alike', async () => {
    const mine = json(await ph.status('1'));
    assert.equal(mine['plan'], '1');
    assert.equal(mine['state'], 'pending');
    assert.deepEqual((mine['steps'] as { state: string }[]).map((s) => s.state), ['pending', 'pending', 'pending']);
    const unknown = await ph.status('9');
    assert.deepEqual(unknown, REFUSED);
    // the operator names another principal: plan 1 is still mcp-control's
    ph.h.writeSettings({ ...BASE_SETTINGS, principal: 'ai-agent2' });
    assert.deepEqual(await ph.status('1', 'ai-agent2'), unknown);
  });
});

/** Plan 1 of mcp-control, asked for by another principal the operator named since: the uniform refusal. */
async function otherPrincipal(sut: ServiceSut): Promise<void> {
  const ph = await startPlanHost(BASE_SETTINGS, sut);
  try {
    json(await ph.submit(good));
    ph.h.writeSettings({ ...BASE_SETTINGS, principal: 'ai-agent2' });
    assert.deepEqual(await ph.status('1', 'ai-agent2'), REFUSED);
  } finally {
    await ph.done();
  }
}

/** One plan over a cap of one: the uniform refusal. */
async function overCap(sut: ServiceSut): Promise<void> {
  const ph = await startPlanHost({ ...BASE_SETTINGS, approvalPendingCap: 1 }, sut);
  try {
    json(await ph.submit(good));
    assert.deepEqual(await ph.submit(good), REFUSED);
  } finally {
    await ph.done();
  }
}

describe('weakened submission checks are caught', () => {
  it('a status that does not ask whose plan it is, and a submission without the pending cap', async () => {
    await otherPrincipal({});
    await overCap({});
    const status = (await import(weakened('dom0/services/plan-status.js', 'readPlan(deps.root, principal, input.id)', "readPlan(deps.root, 'mcp-control', input.id)"))) as typeof import('../../src/dom0/services/plan-status.js');
    await assert.rejects(otherPrincipal(replacing('plan.status', (write) => status.planStatusService(write) as ServiceSpec<unknown>)), assert.AssertionError);
    const submit = (await import(weakened('dom0/services/plan-submit.js', 'if (waiting >= cap)', 'if (false)'))) as typeof import('../../src/dom0/services/plan-submit.js');
    await assert.rejects(overCap(replacing('plan.submit', (write, handlers) => submit.planSubmitService(write, handlers) as ServiceSpec<unknown>)), assert.AssertionError);
  });

  it('a submission that skips the scope walk lets a copy out to a read-tier qube, and a created qube above its birth tier', async () => {
    const url = weakened('dom0/services/plan-submit.js', 'const outside = outOfReach(input.steps, snapshot, deps.settings());', 'const outside = null;');
    const { planSubmitService } = (await import(url)) as typeof import('../../src/dom0/services/plan-submit.js');
    const weak = await startPlanHost(BASE_SETTINGS, replacing('plan.submit', (write, handlers) => planSubmitService(write, handlers) as ServiceSpec<unknown>));
    try {
      const copy = [BAD['a copy to a read-tier qube'] as PlanStep];
      const born = [step.dom0('create', '', { name: 'ai-made', template: 'ai-tpl' }), step.firewall('ai-made', 'action=drop\n')];
      for (const steps of [copy, born]) assert.notDeepEqual(await weak.submit(steps), REFUSED);
    } finally {
      await weak.done();
    }
  });

  it('a shape check that lets a command without a timeout through is caught', async () => {
    const url = weakened('dom0/plans/check.js', '(r.timeoutSeconds ?? 0) >= 1 &&', '');
    const weak = ((await import(url)) as typeof import('../../src/dom0/plans/check.js')).checkShape;
    const noTimeout = BAD['a command without a timeout'] as PlanStep;
    const handlers = new Map<string, ServiceSpec<unknown>>();
    assert.equal(checkShape(noTimeout, handlers), null, 'the real check');
    assert.notEqual(checkShape(step.run('ai-box', 'true'), handlers), null);
    assert.notEqual(weak(noTimeout, handlers), null, 'the weakened check');
  });
});
