// A refusal for a name outside the agent's world and for a name that exists
// nowhere takes one code path in the engine: the same rules are read, field
// by field, in the same order. Timing is measured in verify/timing; this is
// the structure that keeps it close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fleetSystemInfo } from '../../src/cli/fleet-system-info.js';
import { POLICY_FILE, renderPolicy, stampSettings } from '../../src/dom0/install/policy.js';
import { RulePolicy } from '../../src/shared/policy/evaluate.js';
import { memoryFs } from '../../src/shared/policy/fs.js';
import type { PolicyRequest, Resolution, SystemInfo } from '../../src/shared/policy/index.js';
import { PolicyLoader } from '../../src/shared/policy/loader.js';
import type { Rule } from '../../src/shared/policy/rule.js';
import { BASE_SETTINGS, PRINCIPAL, TAGS, attackFleet } from '../../verify/malformed/host.js';

const DIR = '/etc/qubes/policy.d';

function rulesOf(files: Record<string, string>): Rule[] {
  const loader = new PolicyLoader(memoryFs(new Map(Object.entries(files).map(([name, text]) => [`${DIR}/${name}`, text]))), '/etc/qubes-rpc/policy');
  loader.loadDirs([DIR]);
  return loader.rules;
}

/** Every field of every rule the engine reads, in order. */
function traced(rules: readonly Rule[], log: string[]): Rule[] {
  const wrap = <T extends object>(o: T, path: string): T =>
    new Proxy(o, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as unknown;
        if (typeof key !== 'string') return value;
        log.push(`${path}.${key}`);
        return value !== null && typeof value === 'object' ? wrap(value, `${path}.${key}`) : value;
      },
    });
  return rules.map((r, i) => wrap(r, `rule${i}`));
}

function run(rules: readonly Rule[], req: PolicyRequest, system: SystemInfo): { answer: Resolution; trace: string[] } {
  const trace: string[] = [];
  const answer = new RulePolicy(traced(rules, trace)).evaluate(req, system);
  return { answer, trace };
}

const system = fleetSystemInfo(attackFleet());
const uuidOf = (name: string): string => system.domains[name]?.uuid ?? assert.fail(name);
/** A uuid of the same shape that no qube has. */
const noUuid = (u: string): string => u.slice(0, -4) + (u.endsWith('0000') ? '1111' : '0000');

/** Each form of target, naming an outside qube and a name of its shape that exists nowhere. */
const FORMS: readonly (readonly [string, string, string])[] = [
  ['name', 'vault', 'vaulx'],
  ['name of a disposable template', 'ops-dvm', 'ops-dvx'],
  ['uuid:', `uuid:${uuidOf('vault')}`, `uuid:${noUuid(uuidOf('vault'))}`],
  ['@dispvm:NAME', '@dispvm:ops-dvm', '@dispvm:ops-dvx'],
  ['@dispvm:NAME of no disposable template', '@dispvm:vault', '@dispvm:vaulx'],
  ['@dispvm:uuid:', `@dispvm:uuid:${uuidOf('ops-dvm')}`, `@dispvm:uuid:${noUuid(uuidOf('ops-dvm'))}`],
];

const rendered = rulesOf({ [POLICY_FILE]: renderPolicy(stampSettings({ principal: PRINCIPAL, tags: TAGS, ...BASE_SETTINGS }).settings) });
const SEATS: readonly (readonly [string, string])[] = [
  [PRINCIPAL, 'qmcp.Exec'],
  [PRINCIPAL, 'qubes.VMShell'],
  ['ai-box', 'qubes.Filecopy'],
  ['ai-box', 'qubes.VMShell'],
];

for (const [source, service] of SEATS) {
  for (const [form, outside, absent] of FORMS) {
    test(`${source} ${service} to ${form}: outside and absent read the same rules (rendered policy)`, () => {
      const a = run(rendered, { service, argument: '', source, target: outside }, system);
      const b = run(rendered, { service, argument: '', source, target: absent }, system);
      assert.equal(a.answer.action, 'deny');
      assert.equal(b.answer.action, 'deny');
      assert.equal(a.answer.action === 'deny' && a.answer.notify, b.answer.action === 'deny' && b.answer.notify);
      assert.ok(a.trace.length > 0);
      assert.deepEqual(b.trace, a.trace);
    });
  }
}

test('an unfit @dispvm:NAME is matched like a fit one, and refused with qrexec\'s text', () => {
  // A @dispvm:@tag: line before the deny: the absent template must not fail the match.
  const rules = rulesOf({ '50-test.policy': 'svc * ai-box @dispvm:@tag:nosuch allow\nsvc * ai-box @dispvm:ops-dvm deny notify=no\nsvc * ai-box @anyvm deny\n' });
  const fit = run(rules, { service: 'svc', argument: '', source: 'ai-box', target: '@dispvm:ops-dvm' }, system);
  assert.deepEqual(fit.answer, { action: 'deny', reason: `denied by policy ${DIR}/50-test.policy:2`, notify: false, rule: { file: `${DIR}/50-test.policy`, line: 2 } });
  for (const target of ['@dispvm:ops-dvx', '@dispvm:vault']) {
    const unfit = run(rules, { service: 'svc', argument: '', source: 'ai-box', target }, system);
    assert.deepEqual(unfit.answer, { action: 'deny', reason: `not a template for dispvm: ${target.slice(8)}`, notify: true, rule: null });
    assert.ok(unfit.trace.length > 0, target);
  }
  const absent = run(rules, { service: 'svc', argument: '', source: 'ai-box', target: '@dispvm:ops-dvx' }, system);
  const other = run(rules, { service: 'svc', argument: '', source: 'ai-box', target: '@dispvm:sys-firewall' }, system);
  assert.deepEqual(absent.trace, other.trace);
});
