// The rule index hands evaluation, for a call's service and argument, exactly
// the rules whose service and argument columns match, in policy order. Each
// case is checked on the real index and on a weakened one that it catches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomainInfo, Resolution, SystemInfo } from '../../src/shared/policy/index.js';
import { parsePolicy } from '../../src/shared/policy/index.js';
import { memoryFs } from '../../src/shared/policy/fs.js';
import { PolicyLoader } from '../../src/shared/policy/loader.js';
import type { Rule } from '../../src/shared/policy/rule.js';
import { RuleIndex } from '../../src/shared/policy/rule-index.js';

const DIR = '/etc/qubes/policy.d';

interface CallRules {
  rulesFor(service: string, argument: string): readonly Rule[];
}
type Build = (rules: readonly Rule[]) => CallRules;

const real: Build = (rules) => new RuleIndex(rules);

/** What the index stands for: a scan of every rule, the service then the argument column (with its `+`). */
function scanned(rules: readonly Rule[], service: string, argument: string): Rule[] {
  return rules.filter((r) => (r.service === null || r.service === service) && (r.argument === null || r.argument === `+${argument}`));
}

const WEAKENED: Readonly<Record<string, Build>> = {
  // A service's own rules first, the `*` service rules after them.
  'wildcard services last': (rules) => ({
    rulesFor: (s, a) => {
      const list = real(rules).rulesFor(s, a);
      return [...list.filter((r) => r.service !== null), ...list.filter((r) => r.service === null)];
    },
  }),
  // Indexed by service only.
  'argument ignored': (rules) => ({ rulesFor: (s) => rules.filter((r) => r.service === null || r.service === s) }),
  // A `+` rule taken for a rule of any argument.
  'bare + as any argument': (rules) => ({
    rulesFor: (s, a) => rules.filter((r) => (r.service === null || r.service === s) && (r.argument === null || r.argument === '+' || r.argument === `+${a}`)),
  }),
  // Keyed on the argument with its `+` but looked up without: a call without argument reaches no `+` rule.
  'bare + never reached': (rules) => ({
    rulesFor: (s, a) => rules.filter((r) => (r.service === null || r.service === s) && (r.argument === null || (a !== '' && r.argument === `+${a}`))),
  }),
  // Argument rules ahead of the service's general ones, whichever file they are in.
  'argument rules first': (rules) => ({
    rulesFor: (s, a) => {
      const list = real(rules).rulesFor(s, a);
      return [...list.filter((r) => r.argument !== null), ...list.filter((r) => r.argument === null)];
    },
  }),
};

function rulesOf(files: Record<string, string>): Rule[] {
  const loader = new PolicyLoader(memoryFs(new Map(Object.entries(files).map(([name, text]) => [`${DIR}/${name}`, text]))), '/etc/qubes-rpc/policy');
  loader.loadDirs([DIR]);
  return loader.rules;
}

const where = (r: Rule): string => `${r.origin.file.slice(DIR.length + 1)}:${r.origin.line}`;

/** The calls' rules as `file:line`, by `service+argument`. */
function listed(build: Build, rules: readonly Rule[], calls: readonly string[]): Record<string, string[]> {
  const index = build(rules);
  const out: Record<string, string[]> = {};
  for (const call of calls) {
    const plus = call.indexOf('+');
    out[call] = index.rulesFor(call.slice(0, plus), call.slice(plus + 1)).map(where);
  }
  return out;
}

function vm(uuid: string, over: Partial<DomainInfo> = {}): DomainInfo {
  return { tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', uuid, ...over };
}

const system: SystemInfo = {
  domains: {
    dom0: vm('00000000-0000-0000-0000-000000000000', { type: 'AdminVM' }),
    work: vm('10000000-0000-4000-8000-000000000001'),
    vault: vm('10000000-0000-4000-8000-000000000002'),
  },
};

function verdict(files: Record<string, string>, call: string): string {
  const plus = call.indexOf('+');
  const policy = parsePolicy(Object.entries(files).map(([name, text]) => ({ name, text })));
  const r: Resolution = policy.evaluate({ service: call.slice(0, plus), argument: call.slice(plus + 1), source: 'work', target: 'vault' }, system);
  return `${r.action} ${r.rule ? `${r.rule.file.slice(DIR.length + 1)}:${r.rule.line}` : '-'}`;
}

interface Case {
  name: string;
  files: Record<string, string>;
  /** `service+argument` ('svc+' is the call without argument) → the rules it gets. */
  expect: Record<string, string[]>;
  /** `service+argument` → the engine's answer from work to vault: action and deciding rule. */
  verdicts: Record<string, string>;
  /** The weakened indexes this case catches. */
  catches: string[];
}

const CASES: readonly Case[] = [
  {
    name: 'a * service rule stands where it is written among a service\'s own rules',
    files: { '50-a.policy': 'svc * @anyvm @adminvm allow\n* * @anyvm @anyvm deny\nsvc * @anyvm @anyvm allow\n' },
    expect: {
      'svc+': ['50-a.policy:1', '50-a.policy:2', '50-a.policy:3'],
      'other+': ['50-a.policy:2'],
      'other+x': ['50-a.policy:2'],
    },
    verdicts: { 'svc+': 'deny 50-a.policy:2', 'other+': 'deny 50-a.policy:2' },
    catches: ['wildcard services last'],
  },
  {
    name: 'an argument\'s rules reach only calls with that argument',
    files: { '50-a.policy': 'svc +a @anyvm @anyvm allow\nsvc +b @anyvm @anyvm deny notify=no\nsvc * @anyvm @anyvm deny\n' },
    expect: {
      'svc+a': ['50-a.policy:1', '50-a.policy:3'],
      'svc+b': ['50-a.policy:2', '50-a.policy:3'],
      'svc+c': ['50-a.policy:3'],
      'svc+': ['50-a.policy:3'],
    },
    verdicts: { 'svc+a': 'allow 50-a.policy:1', 'svc+b': 'deny 50-a.policy:2', 'svc+c': 'deny 50-a.policy:3' },
    catches: ['argument ignored'],
  },
  {
    name: 'a bare + is the call without argument, and not a call with one',
    files: { '50-a.policy': 'svc + @anyvm @anyvm allow\nsvc * @anyvm @anyvm deny\n' },
    expect: {
      'svc+': ['50-a.policy:1', '50-a.policy:2'],
      'svc+x': ['50-a.policy:2'],
    },
    verdicts: { 'svc+': 'allow 50-a.policy:1', 'svc+x': 'deny 50-a.policy:2' },
    catches: ['bare + as any argument', 'bare + never reached'],
  },
  {
    name: 'rules keep their order across files: the first file\'s rule wins',
    files: {
      '10-a.policy': 'svc * @anyvm @anyvm deny\n',
      '20-b.policy': 'svc +a @anyvm @anyvm allow\n* * @anyvm @anyvm allow\n',
      '30-c.policy': 'other +a @anyvm @anyvm deny\n',
    },
    expect: {
      'svc+a': ['10-a.policy:1', '20-b.policy:1', '20-b.policy:2'],
      'svc+': ['10-a.policy:1', '20-b.policy:2'],
      'other+a': ['20-b.policy:2', '30-c.policy:1'],
    },
    verdicts: { 'svc+a': 'deny 10-a.policy:1', 'other+a': 'allow 20-b.policy:2', 'other+b': 'allow 20-b.policy:2' },
    catches: ['argument rules first', 'wildcard services last'],
  },
];

for (const c of CASES) {
  test(`rule index: ${c.name}`, () => {
    const rules = rulesOf(c.files);
    const calls = Object.keys(c.expect);
    assert.deepEqual(listed(real, rules, calls), c.expect);
    for (const [call, want] of Object.entries(c.verdicts)) assert.equal(verdict(c.files, call), want, call);
    for (const name of c.catches) {
      const weak = WEAKENED[name];
      assert.ok(weak, name);
      assert.notDeepEqual(listed(weak, rules, calls), c.expect, `weakened index "${name}" is not caught`);
    }
  });
}

test('rule index: every list is the scan of all rules, for every service and argument the policies name or not', () => {
  const files = Object.assign({}, ...CASES.map((c, i) => Object.fromEntries(Object.entries(c.files).map(([n, t]) => [`${n.slice(0, 3)}${i}-${n.slice(3)}`, t])))) as Record<string, string>;
  const rules = rulesOf(files);
  const calls = ['svc+', 'svc+a', 'svc+b', 'svc+c', 'svc+x', 'other+', 'other+a', 'other+b', 'nosuch+', 'nosuch+a'];
  const want = (build: Build): Record<string, string[]> => listed(build, rules, calls);
  const reference = Object.fromEntries(calls.map((call) => {
    const plus = call.indexOf('+');
    return [call, scanned(rules, call.slice(0, plus), call.slice(plus + 1)).map(where)];
  }));
  assert.deepEqual(want(real), reference);
  for (const [name, weak] of Object.entries(WEAKENED)) assert.notDeepEqual(want(weak), reference, `weakened index "${name}" is not caught`);
});
