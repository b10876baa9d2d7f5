// A refusal for a name outside the agent's world and for a name that exists
// nowhere takes one code path in the engine: the same rules are read, field
// by field, in the same order. Timing is measured in verify/timing; this is
// the structure that keeps it close.
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { fleetSystemInfo } from '../../src/cli/fleet-system-info.js';
import { POLICY_FILE, renderPolicy, stampSettings } from '../../src/dom0/install/policy.js';
import { RulePolicy } from '../../src/shared/policy/evaluate.js';
import { memoryFs } from '../../src/shared/policy/fs.js';
import type { DomainInfo, PolicyRequest, Resolution, SystemInfo } from '../../src/shared/policy/index.js';
import { PolicyLoader } from '../../src/shared/policy/loader.js';
import type { Rule } from '../../src/shared/policy/rule.js';
import { NO_DOMAIN } from '../../src/shared/policy/system.js';
import { BASE_SETTINGS, PRINCIPAL, TAGS, attackFleet } from '../../verify/malformed/host.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';

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

// System info is read the same way too: the domains visited, the fields read (of the outside
// qube's domain, or of NO_DOMAIN standing in for one that does not exist), each tag compared.

/** The engine's RulePolicy, or that of a copy whose tokens module has `guard` replaced by `weakened`. */
async function engine(weakened?: readonly [string, string]): Promise<typeof RulePolicy> {
  if (!weakened) return RulePolicy;
  const tokens = weakenedFile('shared/policy/tokens', weakened[0], weakened[1]);
  const evaluate = weakenedFile('shared/policy/evaluate', 'export class RulePolicy', 'export class RulePolicy', { [compiled('shared/policy/tokens')]: tokens });
  return ((await import(pathToFileURL(evaluate).href)) as { RulePolicy: typeof RulePolicy }).RulePolicy;
}

let sink: string[] = [];

function tracedArray(values: readonly string[], path: string): readonly string[] {
  return new Proxy(values, {
    get(target, key, receiver) {
      if (typeof key === 'string') sink.push(`${path}[${key}]`);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

function tracedDomain(domain: DomainInfo, name: string): DomainInfo {
  return new Proxy(domain, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof key !== 'string') return value;
      sink.push(`${name}.${key}`);
      return Array.isArray(value) ? tracedArray(value as string[], `${name}.${key}`) : value;
    },
  });
}

/**
 * System info whose every read goes to `sink`; the outside qube is called
 * `target`. Each qube but dom0 carries the two tags qubesd gives a qube whose
 * GUI and audio run in dom0, as NO_DOMAIN stands for (a qube with more tags
 * compares more: docs/verification.md).
 */
function tracedSystem(outside: string): SystemInfo {
  const qubesTags = (name: string, d: DomainInfo): DomainInfo => (name === 'dom0' ? d : { ...d, tags: [...d.tags, 'guivm-dom0', 'audiovm-dom0'] });
  const domains = Object.fromEntries(Object.entries(system.domains).map(([name, d]) => [name, tracedDomain(qubesTags(name, d), name === outside ? 'target' : name)]));
  const label = (key: string | symbol): string => (key === outside ? 'target' : String(key));
  return {
    domains: new Proxy(domains, {
      get(target, key, receiver) {
        sink.push(`get ${label(key)}`);
        return Reflect.get(target, key, receiver) as unknown;
      },
      getOwnPropertyDescriptor(target, key) {
        sink.push(`own ${label(key)}`);
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
      has(target, key) {
        sink.push(`has ${label(key)}`);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        sink.push('keys');
        return Reflect.ownKeys(target);
      },
    }),
  };
}

/** Reads of NO_DOMAIN go to `sink` as the outside qube's (`target`); `tags` replaces its tags. Returns the undo. */
function traceNoDomain(tags?: string[]): () => void {
  const saved = { ...NO_DOMAIN } as Record<string, unknown>;
  const set = (key: string, descriptor: PropertyDescriptor): void => {
    Object.defineProperty(NO_DOMAIN, key, { enumerable: true, configurable: true, ...descriptor });
  };
  for (const [key, value] of Object.entries(saved)) {
    const shown = key === 'tags' ? (tags ?? value) : value;
    set(key, {
      get: () => {
        sink.push(`target.${key}`);
        return Array.isArray(shown) ? tracedArray(shown as string[], `target.${key}`) : shown;
      },
    });
  }
  return () => {
    for (const [key, value] of Object.entries(saved)) set(key, { value, writable: true });
  };
}

/** The qube an outside target names, in any form. */
function qubeOf(target: string): string {
  const spelled = target.replace(/^@dispvm:/, '');
  if (!spelled.startsWith('uuid:')) return spelled;
  return Object.keys(system.domains).find((name) => `uuid:${uuidOf(name)}` === spelled) ?? assert.fail(target);
}

/** The forms and seats whose absent target reads system info otherwise than the outside one. */
async function systemReadsDiffer(weakened?: readonly [string, string], placeholderTags?: string[]): Promise<string[]> {
  const Engine = await engine(weakened);
  const policy = new Engine(rendered);
  const undo = traceNoDomain(placeholderTags);
  const differ: string[] = [];
  try {
    for (const [source, service] of SEATS) {
      for (const [form, outside, absent] of FORMS) {
        const qube = qubeOf(outside);
        const reads = (target: string): string[] => {
          sink = [];
          policy.evaluate({ service, argument: '', source, target }, tracedSystem(qube));
          return sink;
        };
        const [a, b] = [reads(outside), reads(absent)];
        assert.ok(a.some((r) => r.startsWith('target.')), `${form}: the outside qube's domain is read`);
        if (JSON.stringify(a) !== JSON.stringify(b)) differ.push(`${source} ${service} ${form}`);
      }
    }
  } finally {
    undo();
  }
  return differ;
}

test('outside and absent targets read the same system info, NO_DOMAIN standing in for the absent one', async () => {
  assert.deepEqual(await systemReadsDiffer(), []);
});

test('weakened lookups are caught: an own-property test for the target, no stand-in, a stand-in without tags', async () => {
  // An own-property test for a missing key costs more than for a present one.
  const ownProperty = await systemReadsDiffer(['domains.find(token.text)', 'domains.get(token.text)']);
  // What the engine read before NO_DOMAIN: fields of a small literal of another shape.
  const literal = await systemReadsDiffer(['const seen = domain ?? NO_DOMAIN;', "const seen = domain ?? { type: '', tags: [], uuid: '' };"]);
  const tagless = await systemReadsDiffer(undefined, []);
  for (const [name, differ] of Object.entries({ ownProperty, literal, tagless })) assert.ok(differ.length > 0, `weakened variant "${name}" is not caught`);
  assert.ok(ownProperty.some((d) => d.endsWith(' name')));
});
