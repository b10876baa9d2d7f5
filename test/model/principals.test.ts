// The settings list of several principals: read fail-closed, every overlap between two worlds refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SettingsProblem } from '../../src/shared/model/index.js';
import { hasFatal, onePrincipal, parsePrincipals, parseSettings, principalsDigest, settingsDigest } from '../../src/shared/model/index.js';

const entry = (w: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  principal: `ctl-${w}`,
  tags: { umbrella: `${w}-managed`, exec: `${w}-exec`, net: `${w}-net`, full: `${w}-full`, sink: `${w}-dump` },
  mode: 'least-privilege',
  namePrefix: `${w}-`,
  egressQube: `egress-${w}`,
  poolCapBytes: 2 ** 36,
  privateCapBytes: 2 ** 33,
  tombstoneRetentionDays: 7,
  ...extra,
});

function list(...entries: Record<string, unknown>[]): Record<string, unknown> {
  return { rate: { perSecond: 50, burst: 500 }, principals: entries };
}

const GOOD = list(entry('a'), entry('b', { birthCeiling: 'exec', gate: { copy: 'ask' } }), entry('c', { mode: 'compat' }));

const fatalKeys = (problems: readonly SettingsProblem[]): string[] => problems.filter((p) => p.fatal).map((p) => `${p.key}: ${p.message}`);

test('a list reads as each principal over the machine settings, in the file order', () => {
  const r = parsePrincipals(GOOD);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.principals.list.map((s) => [s.principal, s.tags.umbrella, s.mode, s.birthCeiling, s.rate.perSecond]), [
    ['ctl-a', 'a-managed', 'least-privilege', 'read', 50],
    ['ctl-b', 'b-managed', 'least-privilege', 'exec', 50],
    ['ctl-c', 'c-managed', 'compat', 'read', 50],
  ]);
  assert.deepEqual(r.principals.list[1]?.gate, { copy: 'ask' });
});

test('a single-principal file reads as a list of one, with the same settings and problems', () => {
  for (const file of [{}, { principal: 'mcp-x', mode: 'compat', egressQube: 'e', poolCapBytes: 1, privateCapBytes: 1, tombstoneRetentionDays: 3 }, { mode: 'nonsense', rate: 5 }, []]) {
    const one = parseSettings(file);
    const r = parsePrincipals(file);
    assert.deepEqual(r.principals, onePrincipal(one.settings));
    assert.deepEqual(r.problems, one.problems);
  }
});

test("the single-principal reader refuses a list: served as one, the others' worlds would go unguarded", () => {
  for (const file of [GOOD, { ...entry('a'), shared: {} }]) {
    const r = parseSettings(file);
    assert.ok(hasFatal(r.problems), JSON.stringify(file).slice(0, 60));
  }
  assert.ok(!hasFatal(parseSettings(entry('a')).problems));
});

test("a machine setting's problem is reported once, not once per principal", () => {
  const r = parsePrincipals({ ...GOOD, rate: 'fast' });
  assert.deepEqual(r.problems.map((p) => p.key), ['rate']);
  assert.ok(r.principals.list.every((s) => s.rate.perSecond === 1));
});

test("a principal's own malformed setting is reported under its entry, fail-closed as for one principal", () => {
  const r = parsePrincipals(list(entry('a'), entry('b', { birthCeiling: 'root' })));
  assert.deepEqual(r.problems.map((p) => [p.key, p.fatal]), [['principals[1].birthCeiling', false]]);
  assert.equal(r.principals.list[1]?.birthCeiling, 'read');
});

test('sharing is explicit: two principals may name one egress qube and one may push into sinks of another tagged for it', () => {
  const r = parsePrincipals({
    ...list(entry('a', { egressQube: 'egress-ab' }), entry('b', { egressQube: 'egress-ab' }), entry('c')),
    shared: { egressQubes: ['egress-ab'], sinks: [{ from: 'ctl-a', into: 'ctl-b', tag: 'share-a-b' }] },
  });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.principals.sinkShares, [{ from: 'ctl-a', into: 'ctl-b', tag: 'share-a-b' }]);
});

/** Each overlap the list could hold, each a fatal problem naming where it is; without it the list reads clean. */
const REFUSALS: [string, Record<string, unknown>, RegExp][] = [
  ['no list', { principals: [] }, /^principals: must be a non-empty list/],
  ['a list of something else', { principals: 'ctl-a' }, /^principals: must be a non-empty list/],
  ['an entry that is no object', list(entry('a'), 'ctl-b' as unknown as Record<string, unknown>), /^principals\[1\]: must be an object/],
  ['an entry naming no principal', list(entry('a'), Object.fromEntries(Object.entries(entry('b')).filter(([k]) => k !== 'principal'))), /^principals\[1\]\.principal: absent/],
  ["a machine setting in an entry", list(entry('a'), entry('b', { rate: { perSecond: 5, burst: 50 } })), /^principals\[1\]\.rate: the machine's setting/],
  ["a principal's setting at the top", { ...GOOD, mode: 'compat' }, /^mode: a principal's setting/],
  ['a principal named twice', list(entry('a'), entry('b', { principal: 'ctl-a' })), /^principals\[0\]\.principal: ctl-a is named twice/],
  ['two principals with one owner tag', list(entry('a', { principal: 'ctl.x' }), entry('b', { principal: 'ctl_x' })), /same owner tag qmcp-owner-ctl_x/],
  ['one umbrella', list(entry('a'), entry('b', { tags: { umbrella: 'a-managed', exec: 'b-exec', net: 'b-net', full: 'b-full', sink: 'b-dump' } })), /ctl-a and ctl-b share a-managed/],
  ['one sink tag', list(entry('a'), entry('b', { tags: { umbrella: 'b-managed', exec: 'b-exec', net: 'b-net', full: 'b-full', sink: 'a-dump' } })), /share a-dump/],
  ["one's tier tag as the other's sink", list(entry('a'), entry('b', { tags: { umbrella: 'b-managed', exec: 'b-exec', net: 'b-net', full: 'b-full', sink: 'a-exec' } })), /share a-exec/],
  ["one's tag as the other's owner tag", list(entry('a'), entry('b', { tags: { umbrella: 'qmcp-owner-ctl-a', exec: 'b-exec', net: 'b-net', full: 'b-full', sink: 'b-dump' } })), /share qmcp-owner-ctl-a/],
  ['two incomplete tags', list(entry('a'), entry('b', { tags: { umbrella: 'b-managed', exec: 'b-exec', net: 'b-net', full: 'b-full', sink: 'b-dump', incomplete: 'b-half' } })), /^principals\[1\]\.tags\.incomplete: differs/],
  ['one name prefix', list(entry('a'), entry('b', { namePrefix: 'a-' })), /overlapping name prefixes a- and a-/],
  ['a prefix inside another', list(entry('a'), entry('b', { namePrefix: 'a-b-' })), /overlapping name prefixes a- and a-b-/],
  ['one egress qube, unshared', list(entry('a', { egressQube: 'egress-ab' }), entry('b', { egressQube: 'egress-ab' })), /both name egress-ab; list it in shared\.egressQubes/],
  ['a shared egress qube only one names', { ...GOOD, shared: { egressQubes: ['egress-a'] } }, /^shared\.egressQubes: egress-a is not the egress qube of two/],
  ["a principal qube under another's prefix", list(entry('a'), entry('b', { principal: 'a-ctl' })), /^principals\[1\]\.principal: a-ctl starts with ctl-a's name prefix/],
  ["an egress qube under another's prefix", list(entry('a'), entry('b', { egressQube: 'a-egress' })), /^principals\[1\]\.egressQube: a-egress starts with ctl-a's name prefix/],
  ["an egress qube that is another's principal", list(entry('a'), entry('b', { egressQube: 'ctl-a' })), /^principals\[1\]\.egressQube: ctl-a is ctl-a's principal qube/],
  ["children carrying another's tag", list(entry('a', { propagatingTags: ['b-managed'] }), entry('b')), /^principals\[0\]\.propagatingTags: b-managed would put ctl-a's children in ctl-b's world/],
  ["children carrying a share's tag", { ...list(entry('a'), entry('b'), entry('c', { restrictionTags: ['share-a-b'] })), shared: { sinks: [{ from: 'ctl-a', into: 'ctl-b', tag: 'share-a-b' }] } }, /^principals\[2\]\.restrictionTags: share-a-b would make ctl-c's children shared sinks/],
  ['a malformed share', { ...GOOD, shared: { sinks: [{ from: 'ctl-a', into: 'ctl-b' }] } }, /^shared\.sinks: must be a list/],
  ['an unknown sharing key', { ...GOOD, shared: { qubes: [] } }, /^shared: must be/],
  ['a share from a stranger', { ...GOOD, shared: { sinks: [{ from: 'ctl-x', into: 'ctl-b', tag: 'share-x' }] } }, /^shared\.sinks\[0\]: from and into must name principal qubes/],
  ['a share into oneself', { ...GOOD, shared: { sinks: [{ from: 'ctl-b', into: 'ctl-b', tag: 'share-b' }] } }, /^shared\.sinks\[0\]: from and into are the same/],
  ["a share on a world's tag", { ...GOOD, shared: { sinks: [{ from: 'ctl-a', into: 'ctl-b', tag: 'b-dump' }] } }, /^shared\.sinks\[0\]\.tag: b-dump is one of ctl-b's tags/],
  ['a share on a dom0 mark', { ...GOOD, shared: { sinks: [{ from: 'ctl-a', into: 'ctl-b', tag: 'qmcp-tombstone-x' }] } }, /^shared\.sinks\[0\]\.tag: qmcp-tombstone-x is a mark dom0 stamps/],
  ['a share tag into two principals', { ...GOOD, shared: { sinks: [{ from: 'ctl-a', into: 'ctl-b', tag: 'share' }, { from: 'ctl-a', into: 'ctl-c', tag: 'share' }] } }, /^shared\.sinks\[0\]\.tag: share shares sinks of two principals/],
];

for (const [what, file, want] of REFUSALS) {
  test(`refused, fatally: ${what}`, () => {
    const problems = fatalKeys(parsePrincipals(file).problems);
    assert.ok(problems.some((p) => want.test(p)), `${what}: ${JSON.stringify(problems)}`);
  });
}

/** Rows whose overlap is also a second one, each refused on its own. */
const TWOFOLD = new Set(['a principal named twice', 'two principals with one owner tag', 'a share tag into two principals']);

test('each refusal above is the only fatal problem of its list but where it is twofold, so each row is caught by its own check', () => {
  const counts = REFUSALS.map(([what, file]) => [what, fatalKeys(parsePrincipals(file).problems).length] as const);
  assert.deepEqual(counts.filter(([what, n]) => n !== (TWOFOLD.has(what) ? 2 : 1)), []);
  assert.deepEqual(fatalKeys(parsePrincipals(GOOD).problems), []);
});

test("the policy's settings digest: a list of one carries its principal's; any principal or share changes it", () => {
  const one = parseSettings(entry('a')).settings;
  assert.equal(principalsDigest(onePrincipal(one)), settingsDigest(one));
  const base = parsePrincipals(GOOD).principals;
  const digests = new Set([
    principalsDigest(base),
    principalsDigest(parsePrincipals(list(entry('a'), entry('b', { birthCeiling: 'net', gate: { copy: 'ask' } }), entry('c', { mode: 'compat' }))).principals),
    principalsDigest({ ...base, list: [...base.list].reverse() }),
    principalsDigest({ ...base, sinkShares: [{ from: 'ctl-a', into: 'ctl-b', tag: 'share' }] }),
    principalsDigest({ ...base, sharedEgress: ['egress-a'] }),
  ]);
  assert.equal(digests.size, 5);
});
