// How one evaluation reads system info: by name, or by `uuid:UUID` as the
// policy daemon indexes it (a later domain with the same uuid wins, a domain
// without a uuid has no `uuid:` spelling), and never a property that is not
// the system info's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomainInfo, SystemInfo } from '../../src/shared/policy/index.js';
import { parsePolicy } from '../../src/shared/policy/index.js';
import { Domains } from '../../src/shared/policy/system.js';

function vm(uuid: string, over: Partial<DomainInfo> = {}): DomainInfo {
  return { tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', uuid, ...over };
}

const U1 = '10000000-0000-4000-8000-000000000001';
const U2 = '10000000-0000-4000-8000-000000000002';
const system: SystemInfo = {
  domains: {
    dom0: vm('00000000-0000-0000-0000-000000000000', { type: 'AdminVM' }),
    work: vm(U1),
    first: vm(U2),
    second: vm(U2),
    nouuid: vm(''),
  },
};

interface Reader {
  nameOf(key: string): string | undefined;
  get(key: string): DomainInfo | undefined;
}

function problems(domains: Reader): string[] {
  const want: [string, string | undefined][] = [
    ['work', 'work'],
    [`uuid:${U1}`, 'work'],
    [`uuid:${U2}`, 'second'],
    ['uuid:', undefined],
    ['uuid:10000000-0000-4000-8000-000000000009', undefined],
    ['nosuch', undefined],
    ['constructor', undefined],
    ['__proto__', undefined],
    ['toString', undefined],
  ];
  const out: string[] = [];
  for (const [key, name] of want) {
    if (domains.nameOf(key) !== name) out.push(`nameOf(${key}) is ${String(domains.nameOf(key))}, not ${String(name)}`);
    const got = domains.get(key);
    if (got !== (name === undefined ? undefined : system.domains[name])) out.push(`get(${key}) is not the domain of ${String(name)}`);
  }
  return out;
}

test('system info is read by name and by uuid:UUID as qrexec indexes it', () => {
  assert.deepEqual(problems(new Domains(system.domains)), []);
  // find, the lookup of a target the caller chose, answers as get does.
  const domains = new Domains(system.domains);
  assert.deepEqual(problems({ nameOf: (key) => domains.nameOf(key), get: (key) => domains.find(key) }), []);
});

test('weakened readers are caught: the first domain of a uuid, a property of the prototype', () => {
  const d = system.domains;
  const byScan = (key: string, pick: (names: string[]) => string | undefined): string | undefined =>
    key.startsWith('uuid:') ? pick(Object.keys(d).filter((n) => d[n]?.uuid === key.slice(5))) : key in d ? key : undefined;
  const firstWins: Reader = {
    nameOf: (key) => byScan(key, (names) => names[0]),
    get: (key) => d[byScan(key, (names) => names[0]) ?? ''],
  };
  const inherited: Reader = {
    nameOf: (key) => byScan(key, (names) => names[names.length - 1]),
    get: (key) => (d as Record<string, DomainInfo | undefined>)[byScan(key, (names) => names[names.length - 1]) ?? ''],
  };
  assert.ok(problems(firstWins).some((p) => p.startsWith(`nameOf(uuid:${U2})`)));
  assert.ok(problems(inherited).some((p) => p.startsWith('nameOf(constructor)')));
});

test('a target named after a property of Object.prototype is a qube that does not exist', () => {
  const policy = parsePolicy([{ name: '50-a.policy', text: 'svc * @anyvm @default allow target=dom0\nsvc * @anyvm @anyvm allow\n' }]);
  for (const target of ['constructor', '__proto__', 'hasOwnProperty']) {
    const r = policy.evaluate({ service: 'svc', argument: '', source: 'work', target }, system);
    assert.equal(r.action, 'allow', target);
    assert.equal(r.action === 'allow' && r.target, 'dom0', target);
  }
});
