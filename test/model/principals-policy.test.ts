// The policy of several principals: each block answers in its world as its principal alone would, and
// nothing from one world reaches another's but the sinks shared with it, every other call answered as
// toward an untagged qube. The fleet and settings are the three-principal corpus case's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FleetQube } from '../../src/cli/fleet-system-info.js';
import { fleetSystemInfo, parseFleet } from '../../src/cli/fleet-system-info.js';
import type { Principals, Settings } from '../../src/shared/model/index.js';
import { BACKGROUND_SERVICES, DEFAULT_SETTINGS, modelHash, onePrincipal, OPERATIONS, parsePrincipals, renderPolicies, renderPolicy, worldTags } from '../../src/shared/model/index.js';
import type { Policy, Resolution } from '../../src/shared/policy/index.js';
import { parsePolicy } from '../../src/shared/policy/index.js';
import type { Case } from '../policy/corpus.js';
import { loadCases } from '../policy/corpus.js';

const cases = loadCases();
const c = cases.find((x) => x.name === 'qmcp-principals') as Case;
const reading = parsePrincipals({ ...c.settings, model: modelHash() });
const P: Principals = reading.principals;
const fleet = parseFleet(JSON.parse(readFileSync(c.fleet, 'utf8')));
const sys = fleetSystemInfo(fleet);
const text = renderPolicies(P);
const load = (t: string): Policy => parsePolicy([{ name: '30-qmcp.policy', text: t }]);
const policy = load(text);

/** The principals whose world QUBE is in: theirs by name, or by any tag of their world. */
function worldsOf(q: FleetQube | string): string[] {
  const name = typeof q === 'string' ? q : q.name;
  const tags = typeof q === 'string' ? (fleet.qubes.find((x) => x.name === q)?.tags ?? []) : (q.tags ?? []);
  return P.list.filter((s) => s.principal === name || worldTags(s).some((t) => tags.includes(t))).map((s) => s.principal);
}

const shareTags = new Set(P.sinkShares.map((x) => x.tag));
const isShared = (name: string): boolean => (fleet.qubes.find((q) => q.name === name)?.tags ?? []).some((t) => shareTags.has(t));
const only = (s: Settings): string[] => fleet.qubes.map((q) => q.name).filter((n) => worldsOf(n).length === 1 && worldsOf(n)[0] === s.principal);
const outside = fleet.qubes.map((q) => q.name).filter((n) => worldsOf(n).length === 0);
const SPECIAL = ['@adminvm', 'dom0', '@default', 'no-such-qube', '@dispvm'];

/** Every service a line names, the background ones, and some no line names. */
const SERVICES = [
  ...new Set([
    ...text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(' ')[0] ?? '').filter((x) => x !== '*'),
    ...OPERATIONS.map((o) => o.service),
    ...BACKGROUND_SERVICES.map((b) => b.service),
    'qubes.VMShell',
    'qubes.OpenInVM',
    'admin.vm.List',
    'qmcp.Unknown',
  ]),
].sort();

/**
 * What the caller and the qubes see of an answer: the named target read as TARGET; NOTIFY whether the
 * operator's notification counts; OFFERED which of an ask's targets to keep.
 */
function seen(p: Policy, service: string, source: string, target: string, argument = '', notify = true, offered: (q: string) => boolean = () => true): string {
  let r: Resolution;
  try {
    r = p.evaluate({ service, argument, source, target }, sys);
  } catch {
    return 'refused';
  }
  const named = (x: string | null): string | null => (x === target ? 'TARGET' : x);
  if (r.action === 'deny') return notify ? `deny notify=${r.notify}` : 'deny';
  if (r.action === 'allow') return `allow ${named(r.target)} user=${r.user} autostart=${r.autostart}${notify ? ` notify=${r.notify}` : ''}`;
  return `ask ${r.targets.filter(offered).map(named).join(',')} default=${named(r.defaultTarget)} user=${r.user} autostart=${r.autostart}`;
}

/** Calls from S's world into another's answered otherwise than toward the untagged qube `work`. */
function crossMismatches(p: Policy, s: Settings): string[] {
  const out: string[] = [];
  const sources = [s.principal, ...only(s)];
  const targets = fleet.qubes.map((q) => q.name).filter((n) => worldsOf(n).some((w) => w !== s.principal) && !(isShared(n) && P.sinkShares.some((x) => x.from === s.principal)));
  for (const service of SERVICES) {
    for (const source of sources) {
      const untagged = seen(p, service, source, 'work', '', false);
      for (const target of targets) {
        const got = seen(p, service, source, target, '', false);
        if (got !== untagged) out.push(`${service} ${source} -> ${target}: ${got}, toward an untagged qube ${untagged}`);
      }
    }
  }
  return out;
}

/** Calls within S's world and toward outside qubes answered otherwise than by S's policy alone. */
function aloneMismatches(p: Policy, s: Settings): string[] {
  const alone = load(renderPolicy(s));
  const out: string[] = [];
  const names = [s.principal, ...only(s), ...outside];
  for (const service of SERVICES) {
    for (const source of names) {
      for (const target of [...names, ...SPECIAL]) {
        if (source === target) continue;
        // a qube tagged into two worlds is in neither: never offered in a dialog
        const want = seen(alone, service, source, target, '', true, (q) => worldsOf(q).length < 2);
        // and a sink shared with S is offered beside its own (the sharing test below)
        const got = seen(p, service, source, target, '', true, (q) => !(isShared(q) && P.sinkShares.some((x) => x.from === s.principal)));
        if (got !== want) out.push(`${service} ${source} -> ${target}: ${got}, alone ${want}`);
      }
    }
  }
  return out;
}

/** Asks from S's world whose dialog offers a qube outside it (a sink shared with S aside). */
function offeredElsewhere(p: Policy, s: Settings): string[] {
  const out: string[] = [];
  const mine = (q: string): boolean => (worldsOf(q).length === 1 && worldsOf(q)[0] === s.principal) || (isShared(q) && P.sinkShares.some((x) => x.from === s.principal));
  for (const service of SERVICES) {
    for (const source of [s.principal, ...only(s)]) {
      for (const target of [...fleet.qubes.map((q) => q.name), ...SPECIAL]) {
        let r: Resolution;
        try {
          r = p.evaluate({ service, argument: '', source, target }, sys);
        } catch {
          continue;
        }
        if (r.action === 'ask') for (const q of r.targets.filter((x) => !mine(x))) out.push(`${service} ${source} -> ${target}: offers ${q}`);
      }
    }
  }
  return out;
}

test('the three-principal settings read clean, and each world holds qubes at every tier, a sink, a hybrid and a tombstone', () => {
  assert.deepEqual(reading.problems, []);
  assert.equal(P.list.length, 3);
  for (const s of P.list) assert.ok(only(s).length >= 7, `${s.principal}: ${only(s).join(', ')}`);
  assert.ok(fleet.qubes.some((q) => worldsOf(q).length === 2), 'a qube in two worlds');
});

test('a list of one renders byte for byte as the single-principal policy recorded in the corpus', () => {
  const single = cases.filter((x) => x.name.startsWith('qmcp-rendered-'));
  assert.equal(single.length, 2);
  for (const x of single) {
    const stored = `${(x.files['etc/qubes/policy.d/30-qmcp.policy'] ?? []).join('\n')}\n`;
    const s = { ...structuredClone(DEFAULT_SETTINGS), ...x.settings, model: modelHash() } as Settings;
    assert.equal(renderPolicies(onePrincipal(s)), stored, x.name);
  }
});

for (const s of P.list) {
  test(`${s.principal}: in its world and toward outside qubes, the policy answers as ${s.principal}'s alone, update proxy and tombstones included`, () => {
    assert.deepEqual(aloneMismatches(policy, s), []);
  });

  test(`${s.principal}: every call from its world into another's, for every service, answers as toward an untagged qube`, () => {
    assert.deepEqual(crossMismatches(policy, s), []);
  });

  test(`${s.principal}: no dialog a call from its world opens offers a qube of another world`, () => {
    assert.deepEqual(offeredElsewhere(policy, s), []);
  });
}

test("weakened: the principals' single policies one after another are caught, each way", () => {
  const naive = load(P.list.map((s) => renderPolicy(s)).join('\n'));
  // another block's denies toward tombstones come before a later principal's update proxy
  assert.ok(aloneMismatches(naive, P.list[1] as Settings).some((m) => /^qubes\.UpdatesProxy b-\S+ -> b-tomb: deny/.test(m)));
  // a qube tagged into two worlds is in the first block's
  assert.ok(crossMismatches(naive, P.list[0] as Settings).some((m) => / ctl-a -> ab-dual: (allow|ask)/.test(m)));
  assert.ok(offeredElsewhere(naive, P.list[0] as Settings).some((m) => m.endsWith('offers ab-dual')));
});

test('weakened: a policy without the denies toward other worlds is caught', () => {
  const lines = text.split('\n');
  const weakened: string[] = [];
  let inside = false;
  for (const l of lines) {
    if (l.startsWith("# Other principals' worlds")) inside = true;
    else if (l === '') inside = false;
    else if (inside) continue;
    weakened.push(l);
  }
  assert.ok(weakened.length < lines.length - 100);
  assert.ok(crossMismatches(load(weakened.join('\n')), P.list[0] as Settings).some((m) => /ctl-a -> ab-dual: (allow|ask)/.test(m)));
});

test("sharing is one way: a's qubes push into b's sinks tagged for it and nothing else there; b's not into a's", () => {
  const push = (source: string, target: string): string => seen(policy, 'qmcp.SinkPush', source, target);
  // the default gate asks for copies: the dialog offers a's own sinks and the shared one, a halted one started
  assert.equal(push('a-e', 'b-shared'), 'ask a-dump,a-hybrid,TARGET default=null user=null autostart=true');
  assert.equal(push('b-e', 'b-shared'), 'ask b-dump,b-hybrid,TARGET default=null user=null autostart=true');
  for (const [source, target] of [['a-e', 'b-dump'], ['c-f', 'b-shared'], ['b-e', 'a-dump'], ['a-read', 'b-shared']]) {
    assert.match(push(source as string, target as string), /^deny/, `${source} -> ${target}`);
  }
  for (const service of SERVICES.filter((x) => x !== 'qmcp.SinkPush' && x !== 'qubes.UpdatesProxy')) {
    for (const source of ['ctl-a', 'a-e', 'a-f', 'a-hybrid']) assert.match(seen(policy, service, source, 'b-shared'), /^deny|^refused/, `${service} ${source}`);
  }
});

test("weakened: a share rendered after the denies toward other worlds is caught", () => {
  const lines = text.split('\n');
  const shareLines = lines.filter((l) => l.startsWith('qmcp.SinkPush ') && l.includes('@tag:share-a-b'));
  assert.ok(shareLines.length > 0);
  const rest = lines.filter((l) => !shareLines.includes(l));
  const at = rest.indexOf(rest.find((l) => l.startsWith('# Principal ctl-b: what it may do')) ?? '');
  const weakened = [...rest.slice(0, at), ...shareLines, ...rest.slice(at)].join('\n');
  assert.match(seen(load(weakened), 'qmcp.SinkPush', 'a-e', 'b-shared'), /^deny/);
  assert.match(seen(policy, 'qmcp.SinkPush', 'a-e', 'b-shared'), /^ask/);
  assert.match(seen(load(renderPolicies({ ...P, sinkShares: [] })), 'qmcp.SinkPush', 'a-e', 'b-shared'), /^deny/);
});
