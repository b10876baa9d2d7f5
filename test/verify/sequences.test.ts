import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { ActionableError } from '../../src/dom0/service/refusal.js';
import { plansDir } from '../../src/dom0/plans/store.js';
import { PRINCIPAL } from '../../verify/malformed/host.js';
import type { ServiceTable } from '../../verify/malformed/host.js';
import { makeSequencesCheck, sequencesCheck } from '../../verify/sequences/check.js';
import { INSIDE, aimRestores, opArbitrary } from '../../verify/sequences/ops.js';
import { asSecond } from '../../verify/sequences/worlds.js';
import type { Op } from '../../verify/sequences/ops.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import fc from 'fast-check';
import { weakenedRunService } from '../../verify/weakened-module.js';

const SEED = 4;

test('random sequences over random fleets keep every invariant after every step', async () => {
  const r = await sequencesCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(r.failures, []);
  const figure = (label: string): number => Number(r.figures.find((f) => f.label === label)?.value ?? 0);
  assert.equal(figure('sequences'), 60);
  // half with a second principal, whose steps interleave with the first's
  assert.ok(figure('of them with two principals') >= 20);
  assert.ok(figure('steps of the second principal') >= 80);
  assert.ok(figure('of them changed the machine') >= 5);
  assert.ok(figure('steps') >= 240);
  assert.ok(figure('steps that changed the machine') >= 20);
  assert.ok(figure('steps the policy decided alone') >= 50);
  assert.ok(figure('of them let through') >= 5);
  assert.ok(figure('refused steps') >= 50);
  assert.ok(figure('qubes created') >= 5);
  assert.ok(figure('qubes entombed') >= 1);
  assert.ok(figure('mode switches mid-sequence') >= 5);
  assert.equal(figure('sequences with the gate on'), 20);
  // with the gate on too, half with a second principal, each with its own gate setting
  assert.ok(figure('gate: of them with two principals') >= 5);
  assert.ok(figure('gate: steps of the second principal') >= 10);
  assert.ok(figure('gate: requests answered') >= 5);
  // no floor on the dialogs: kill, shutdown and firewall set ask in dom0, so at scale 1 the dialog (copy, or the rest
  // when every operation asks) may not come up; test/boundary/gate-ask.test.ts and the principal's gate test cover it
  assert.ok(figure('gate: plans answered (approved ones run)') >= 1);
  assert.ok(figure('gate: of them allowed') >= 5);
  assert.ok(figure('gate: steps denied (refused, nothing changed)') >= 3);
  assert.ok(figure('gate: steps that changed the machine') >= 3);
});

test('a gate that asks the operator before the scope check (about qubes outside the agent\'s world) is caught', async () => {
  const runner = await weakenedRunService('const checked = visibleTargets(snapshot, needs);', "const checked = needs.map((n) => snapshot.any(n.name) ?? { name: n.name, klass: 'AppVM', state: 'Halted', tags: new Set() });");
  const weak = makeSequencesCheck({ runner, gateOnly: true, shrink: false, operations: ['feature.set', 'remove', 'property.set'] });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the gate asking before the scope check was not caught');
  assert.match(hit.what, /the operator was asked \(request (feature\.set|remove|property\.set)\) about .+, outside the agent's world/);
  assert.match(hit.reproduction, /gate \{"asks":"(every|defaults|off)",("second":"(every|defaults|off)",)?"seed":\d+\}/);
});

test('intents that name no principal are caught', async () => {
  const runner = await weakenedRunService('const fields = { principal: caller,', "const fields = { principal: '',");
  const weak = makeSequencesCheck({ runner, shrink: false, operations: ['create', 'clone', 'remove', 'start', 'feature.set'] });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the intent naming no principal was not caught');
  assert.match(hit.what, /an audit (intent|outcome) names "", not the caller mcp-control/);
});

test('a dom0 that serves every caller with the first principal\'s settings is caught changing the first\'s world on a step of the second', async () => {
  const weak = makeSequencesCheck({ firstsSettings: true, principals: 2, shrink: false, operations: ['start', 'feature.set', 'property.set', 'remove'] });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the second principal served with the first\'s settings was not caught');
  assert.match(hit.what, /^as other-control: qmcp\.\S+ .* a step of other-control changed mcp-control's world: ai-\S+ changed/);
});

test('a gate that decides every caller by the first principal\'s gate setting is caught on a step of the second', async () => {
  // the same substitution as servedAs's `gate`: the second's own settings, the first's gate
  const weak = makeSequencesCheck({ firstsGate: true, gateOnly: true, principals: 2, shrink: false, operations: ['start', 'feature.set', 'property.set', 'remove'] });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the gate deciding by the first principal\'s setting was not caught');
  assert.match(hit.what, /^as other-control: qmcp\.\S+ [\s\S]*: (the operator was asked \(request [^)]*\) though the gate does not ask for \S+|it went through without the operator allowing it)$/);
  assert.match(hit.reproduction, /with the gate on, .*gate \{"asks":"(every|defaults|off)","second":"(every|defaults|off)","seed":\d+\}/);
});

test('a plan store that files a plan under the first principal too (keyed by plan id alone) is caught changing the first\'s plans on a step of the second', async () => {
  const weak = makeSequencesCheck({
    principals: 2,
    shrink: false,
    operations: ['plan.submit', 'plan.status'],
    table: (real, write) =>
      replaced(real, 'qmcp.PlanSubmit', (spec) => ({
        ...spec,
        async handle(ctx) {
          const out = (await spec.handle(ctx)) as { plan: string };
          const firsts = join(plansDir(write.root), PRINCIPAL);
          if (ctx.principal !== PRINCIPAL) {
            mkdirSync(firsts, { recursive: true });
            copyFileSync(join(plansDir(write.root), ctx.principal, `${out.plan}.json`), join(firsts, `${out.plan}.json`));
          }
          return out;
        },
      })),
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the plan filed under the first principal was not caught');
  assert.match(hit.what, /^as other-control: qmcp\.PlanSubmit [\s\S]*: a step of other-control changed mcp-control's world: its plans file \d+\.json (joined it|changed)$/);
});

test('a denied dialog that lets the call through is caught', async () => {
  // the operator's answer ignored: every ask line allows
  const weak = makeSequencesCheck({ gateOnly: true, shrink: false, operations: ['pause', 'firewall.reload', 'start'], extraPolicy: 'admin.vm.Pause * mcp-control @tag:ai-full allow target=dom0\nadmin.vm.firewall.Reload * mcp-control @tag:ai-net allow target=dom0\n' });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the dialog that is not asked was not caught');
  assert.match(hit.what, /^admin\.vm\.(Pause|firewall\.Reload) to ai-[\s\S]* (it went through without the operator allowing it|the operator denied it, but it went through)/);
});

/** The table with one row replaced. */
function replaced(real: ServiceTable, service: string, row: (spec: ServiceSpec<unknown>) => ServiceSpec<unknown>): ServiceTable {
  const out = new Map(real);
  const spec = real.get(service);
  assert.ok(spec, service);
  out.set(service, row(spec));
  return out;
}

test('a clone that keeps the full tier whatever the source and the ceiling is caught, with a shrunk sequence', async () => {
  const weak = makeSequencesCheck({
    // one principal: the second's clone given the first's tier tag is caught first as a change of the first's world
    principals: 1,
    table: (real) =>
      replaced(real, 'qmcp.Clone', (spec) => ({
        ...spec,
        async handle(ctx) {
          const out = (await spec.handle(ctx)) as { name: string };
          await ctx.qubesd.call('admin.vm.tag.Set', out.name, 'ai-full');
          return out;
        },
      })),
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the weakened clone was not caught');
  assert.match(hit.what, /qmcp\.Clone\+.* carries .*ai-full.*the rule gives/);
  assert.match(hit.reproduction, new RegExp(`--seed ${SEED} --scale 1 --only sequences; lane \\d, shrunk after \\d+ shrinks`));
});

test('a read that says "not permitted" about an outside qube instead of the uniform refusal is caught', async () => {
  const weak = makeSequencesCheck({
    // a single principal's invariant: the sequences with two add nothing to the catch
    principals: 1,
    shrink: false,
    table: (real) =>
      replaced(real, 'qmcp.Info', (spec) => ({
        ...spec,
        // no scope guard in the runner: the row decides, and says too much
        targets: () => [],
        refers: (input) => [(input as { name: string }).name],
        async handle(ctx) {
          const q = ctx.snapshot.visible((ctx.input as { name: string }).name);
          if (!q) throw new ActionableError('in_use', 'not permitted');
          return spec.handle({ ...ctx, targets: [q] });
        },
      })),
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the weakened Info was not caught');
  assert.match(hit.what, /qmcp\.Info\+.*not permitted.*naming an absent or outside qube was not refused/);
});

test('a clone that keeps its source\'s netvm whatever it is (the operator\'s firewall, a global default) is caught', async () => {
  const weak = makeSequencesCheck({
    // a single principal's invariant: the sequences with two add nothing to the catch
    principals: 1,
    shrink: false,
    table: (real) =>
      replaced(real, 'qmcp.Clone', (spec) => ({
        ...spec,
        async handle(ctx) {
          const out = (await spec.handle(ctx)) as { name: string };
          const source = (ctx.input as { source: string }).source;
          const netvm = await ctx.qubesd.property(source, 'netvm');
          if ((await ctx.qubesd.property(out.name, 'netvm')).value !== '') await ctx.qubesd.call('admin.vm.property.Set', out.name, 'netvm', netvm.value);
          return out;
        },
      })),
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the weakened clone was not caught');
  assert.match(hit.what, /qmcp\.Clone\+.*(netvm sys-firewall, a path outside the umbrella|has netvm sys-firewall, not ai-egress)/);
});

test('a tier line too low (pause for any umbrella qube) is caught on the calls the policy decides', async () => {
  const weak = makeSequencesCheck({ operations: ['pause', 'start'], shrink: false, extraPolicy: 'admin.vm.Pause * mcp-control @tag:ai-managed allow target=dom0\n' });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the leaky tier line was not caught');
  assert.match(hit.what, /^admin\.vm\.Pause to ai-.* the policy let it through to a qube the agent may not reach this way \((least-privilege|compat)\)/);
});

test('an Admin API line without target=dom0 (the call is routed into the qube, refused there while it is halted) is caught', async () => {
  const weak = makeSequencesCheck({ operations: ['pause', 'start'], shrink: false, extraPolicy: 'admin.vm.Pause * mcp-control @tag:ai-full allow autostart=no\n' });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the line without target=dom0 was not caught');
  assert.match(hit.what, /^admin\.vm\.Pause to ai-.*(it ran in \[\{"qube":"ai-|the policy refused a call the agent may make)/);
});

test('an in-qube step into a paused qube is expected refused, as qrexec refuses it (autostart=no lets a call into running qubes only)', async () => {
  // the agent starts a full-tier qube, pauses it, and runs a command in it; a model that took a paused qube for reachable fails here
  const ops = fc.sample(opArbitrary(OPERATIONS.filter((o) => ['start', 'pause', 'run'].includes(o.id))), { seed: 1, numRuns: 500 });
  const pick = (id: string, onPeer: (o: Op) => boolean): Op => {
    const op = ops.find((o) => o.id === id && onPeer(o));
    assert.ok(op, `no ${id} step on ai-peer drawn`);
    return op;
  };
  const steps = [pick('start', (o) => o.service === 'qmcp.Start+ai-peer'), pick('pause', (o) => o.target === 'ai-peer'), pick('run', (o) => o.target === 'ai-peer')];
  const none = Object.fromEntries(INSIDE.map((q) => [q, 'none' as const]));
  const fleet = { tiers: { ...Object.fromEntries(INSIDE.map((q) => [q, '' as const])), 'ai-peer': 'full' as const }, nets: none, locked: [], kept: [] };
  const settings = { mode: 'least-privilege' as const, birthCeiling: 'read' as const, roomGiB: 0 };
  const r = await makeSequencesCheck({ operations: ['start'], examples: [{ plan: fleet, settings, ops: steps, second: null }], shrink: false }).run({ scale: 1 }, SEED);
  assert.deepEqual(r.failures, []);
});

test("an aimed restore names what an earlier remove of its own principal named, and only then", () => {
  const ops = fc.sample(opArbitrary(OPERATIONS.filter((o) => ['remove', 'tombstone.restore'].includes(o.id))), { seed: 1, numRuns: 500 });
  const remove = ops.find((o) => o.id === 'remove' && o.names[0] === 'ai-box');
  const aimed = ops.find((o) => o.id === 'tombstone.restore' && o.aim !== undefined && o.restores !== 'ai-box');
  assert.ok(remove && aimed, 'no remove of ai-box or no aimed restore drawn');
  // before any remove, and after the other principal's, it keeps its own name
  assert.deepEqual(aimRestores([aimed, remove]), [aimed, remove]);
  assert.deepEqual(aimRestores([asSecond(remove), aimed]), [asSecond(remove), aimed]);
  const [, after] = aimRestores([remove, aimed]);
  assert.equal(after?.restores, 'ai-box');
  assert.equal(after?.service, 'qmcp.TombstoneRestore+ai-box');
  // the second's restore, after its own remove, names its own qube
  const [, second] = aimRestores([asSecond(remove), asSecond(aimed)]);
  assert.equal(second?.restores, 'oc-box');
  assert.equal(second?.principal, 'other-control');
});
