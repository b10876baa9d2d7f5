// Evaluation semantics, case by case, against in-memory policies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomainInfo, MemoryPolicyOptions, Resolution, SystemInfo } from '../../src/shared/policy/index.js';
import { parsePolicy, PolicySyntaxError } from '../../src/shared/policy/index.js';

function vm(over: Partial<DomainInfo> & { uuid: string }): DomainInfo {
  return { tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: 'dvm', power_state: 'Running', ...over };
}

const system: SystemInfo = {
  domains: {
    dom0: vm({ type: 'AdminVM', default_dispvm: null, uuid: '00000000-0000-0000-0000-000000000000', tags: ['admin-tag'] }),
    work: vm({ tags: ['work'], uuid: '10000000-0000-4000-8000-000000000001' }),
    personal: vm({ power_state: 'Halted', uuid: '10000000-0000-4000-8000-000000000002' }),
    vault: vm({ default_dispvm: null, power_state: 'Halted', uuid: '10000000-0000-4000-8000-000000000003' }),
    dvm: vm({ template_for_dispvms: true, tags: ['dvm-tag'], power_state: 'Halted', uuid: '10000000-0000-4000-8000-000000000004' }),
    fedora: vm({ type: 'TemplateVM', power_state: 'Halted', uuid: '10000000-0000-4000-8000-000000000005' }),
    hidden: vm({ internal: true, uuid: '10000000-0000-4000-8000-000000000006' }),
  },
};

interface Case {
  name: string;
  policy: string | { name: string; text: string }[];
  options?: MemoryPolicyOptions;
  /** source target service[+arg] */
  call: string;
  expect: Partial<Resolution> & { action: Resolution['action'] };
}

function evaluate(c: Pick<Case, 'policy' | 'options' | 'call'>): Resolution {
  const files = typeof c.policy === 'string' ? [{ name: '50-test.policy', text: c.policy }] : c.policy;
  const [source = '', target = '', call = ''] = c.call.split(' ');
  const plus = call.indexOf('+');
  const policy = parsePolicy(files, c.options);
  return policy.evaluate({
    source,
    target: target === '-' ? '' : target,
    service: plus < 0 ? call : call.slice(0, plus),
    argument: plus < 0 ? '' : call.slice(plus + 1),
  }, system);
}

const CASES: Case[] = [
  // matching and order
  { name: 'no rule matches', policy: 'other * @anyvm @anyvm allow\n', call: 'work personal svc', expect: { action: 'deny', rule: null } },
  { name: 'first match wins', policy: 'svc * @anyvm @anyvm deny\nsvc * @anyvm @anyvm allow\n', call: 'work personal svc', expect: { action: 'deny', rule: { file: '/etc/qubes/policy.d/50-test.policy', line: 1 } } },
  { name: 'files in bytewise order', policy: [{ name: 'a.policy', text: 'svc * @anyvm @anyvm allow target=vault\n' }, { name: 'a-b.policy', text: 'svc * @anyvm @anyvm allow target=fedora\n' }], call: 'work personal svc', expect: { action: 'allow', target: 'fedora' } },
  { name: 'dotfiles and other names are ignored', policy: [{ name: '.x.policy', text: 'garbage\n' }, { name: 'x.conf', text: 'garbage\n' }, { name: 'b.policy', text: 'svc * @anyvm @anyvm allow\n' }], call: 'work personal svc', expect: { action: 'allow', target: 'personal' } },
  // dom0 spellings
  { name: '@adminvm request meets a dom0 rule', policy: 'svc * @anyvm dom0 allow\n', call: 'work @adminvm svc', expect: { action: 'allow', target: 'dom0' } },
  { name: 'uuid:0 request meets an @adminvm rule', policy: 'svc * @anyvm @adminvm allow\n', call: 'work uuid:00000000-0000-0000-0000-000000000000 svc', expect: { action: 'allow', target: 'dom0' } },
  { name: 'dom0 request meets a uuid:0 rule', policy: 'svc * @anyvm uuid:00000000-0000-0000-0000-000000000000 allow\n', call: 'work dom0 svc', expect: { action: 'allow', target: 'dom0' } },
  { name: '@anyvm never matches dom0', policy: 'svc * @anyvm @anyvm allow\n', call: 'work dom0 svc', expect: { action: 'deny' } },
  { name: '@tag matches a tagged dom0', policy: 'svc * @anyvm @tag:admin-tag allow\n', call: 'work dom0 svc', expect: { action: 'allow', target: 'dom0' } },
  { name: 'uuid: rule matches the name', policy: 'svc * uuid:10000000-0000-4000-8000-000000000001 @anyvm allow\n', call: 'work personal svc', expect: { action: 'allow' } },
  { name: 'uuid: request connects by uuid', policy: 'svc * @anyvm personal allow\n', call: 'work uuid:10000000-0000-4000-8000-000000000002 svc', expect: { action: 'allow', target: 'uuid:10000000-0000-4000-8000-000000000002' } },
  { name: '@type matches', policy: 'svc * @anyvm @type:TemplateVM allow\n', call: 'work fedora svc', expect: { action: 'allow', target: 'fedora' } },
  // requested targets
  { name: 'unknown target becomes @default', policy: 'svc * @anyvm @default allow target=vault\n', call: 'work nosuch svc', expect: { action: 'allow', target: 'vault' } },
  { name: 'empty target is @default', policy: 'svc * @anyvm @default ask default_target=work\nsvc * @anyvm work allow\n', call: 'personal - svc', expect: { action: 'ask', targets: ['work'], defaultTarget: 'work' } },
  { name: 'allow to @default without a target is refused', policy: 'svc * @anyvm * allow\n', call: 'work @default svc', expect: { action: 'deny' } },
  { name: 'a keyword that is not a target is refused', policy: 'svc * @anyvm * allow target=vault\n', call: 'work @anyvm svc', expect: { action: 'deny' } },
  { name: 'loopback is refused', policy: 'svc * @anyvm @anyvm allow\n', call: 'work work svc', expect: { action: 'deny' } },
  { name: 'loopback through target= is refused', policy: 'svc * @anyvm @anyvm allow target=work\n', call: 'work personal svc', expect: { action: 'deny' } },
  // disposables
  { name: '@dispvm uses the source default_dispvm', policy: 'svc * @anyvm @dispvm allow\n', call: 'work @dispvm svc', expect: { action: 'allow', target: '@dispvm:dvm' } },
  { name: '@dispvm without default_dispvm is refused', policy: 'svc * @anyvm @dispvm allow\n', call: 'vault @dispvm svc', expect: { action: 'deny' } },
  { name: '@dispvm:X needs template_for_dispvms', policy: 'svc * @anyvm * allow\n', call: 'vault @dispvm:work svc', expect: { action: 'deny' } },
  { name: '@dispvm:X rule matches a plain @dispvm by default_dispvm', policy: 'svc * @anyvm @dispvm:dvm allow\n', call: 'work @dispvm svc', expect: { action: 'allow', target: '@dispvm:dvm' } },
  { name: '@dispvm:@tag matches by the template tag', policy: 'svc * @anyvm @dispvm:@tag:dvm-tag allow\n', call: 'work @dispvm:dvm svc', expect: { action: 'allow', target: '@dispvm:dvm' } },
  { name: '@tag does not match @dispvm requests', policy: 'svc * @anyvm @tag:dvm-tag allow\n', call: 'work @dispvm:dvm svc', expect: { action: 'deny' } },
  { name: '@dispvm:X never matches as a source', policy: 'svc * @dispvm:dvm @anyvm allow\n', call: 'dvm work svc', expect: { action: 'deny' } },
  // actions and parameters
  { name: 'target= redirects', policy: 'svc * @anyvm @anyvm allow target=vault\n', call: 'work personal svc', expect: { action: 'allow', target: 'vault' } },
  { name: 'target=@adminvm connects to dom0', policy: 'svc * @anyvm @anyvm allow target=@adminvm\n', call: 'work personal svc', expect: { action: 'allow', target: 'dom0' } },
  { name: 'target= to a missing qube is refused', policy: 'svc * @anyvm @anyvm allow target=nosuch\n', call: 'work personal svc', expect: { action: 'deny' } },
  { name: 'user= and notify=', policy: 'svc * @anyvm @anyvm allow user=root notify=yes\n', call: 'work personal svc', expect: { action: 'allow', user: 'root', notify: true, autostart: true } },
  { name: 'autostart=no refuses a halted target', policy: 'svc * @anyvm @anyvm allow autostart=no\n', call: 'work personal svc', expect: { action: 'deny' } },
  { name: 'autostart=no allows a running target', policy: 'svc * @anyvm @anyvm allow autostart=no\n', call: 'personal work svc', expect: { action: 'allow', target: 'work', autostart: false } },
  { name: 'deny notifies by default', policy: 'svc * @anyvm @anyvm deny\n', call: 'work personal svc', expect: { action: 'deny', notify: true } },
  { name: 'deny notify=no', policy: 'svc * @anyvm @anyvm deny notify=no\n', call: 'work personal svc', expect: { action: 'deny', notify: false } },
  { name: 'ask lists what the rules allow, minus denies above them and the caller', policy: 'svc * @anyvm personal ask default_target=personal\nsvc * @anyvm vault deny\nsvc * @anyvm @anyvm allow\n', call: 'work personal svc', expect: { action: 'ask', targets: ['@dispvm:dvm', 'dvm', 'fedora', 'personal'], defaultTarget: 'personal' } },
  { name: 'ask target= offers only that target', policy: 'svc * @anyvm @anyvm ask target=@adminvm default_target=@adminvm\n', call: 'work personal svc', expect: { action: 'ask', targets: ['dom0'], defaultTarget: 'dom0' } },
  { name: 'ask default_target=@dispvm resolves the template', policy: 'svc * @anyvm @anyvm ask default_target=@dispvm\n', call: 'work personal svc', expect: { action: 'ask', defaultTarget: '@dispvm:dvm' } },
  { name: 'ask drops a default it cannot offer', policy: 'svc * @anyvm @type:TemplateVM ask default_target=work\n', call: 'personal fedora svc', expect: { action: 'ask', targets: ['fedora'], defaultTarget: null } },
  { name: 'ask autostart=no offers running targets only', policy: 'svc * @anyvm @anyvm ask autostart=no\n', call: 'personal work svc', expect: { action: 'ask', targets: ['work'] } },
  { name: 'ask with nothing to offer is refused', policy: 'svc * @anyvm @default ask\n', call: 'work - svc', expect: { action: 'deny' } },
  // arguments
  { name: '+ matches only the empty argument', policy: 'svc + @anyvm @anyvm allow\n', call: 'work personal svc+x', expect: { action: 'deny' } },
  { name: '+ matches no argument', policy: 'svc + @anyvm @anyvm allow\n', call: 'work personal svc', expect: { action: 'allow' } },
  { name: 'exact argument', policy: 'svc +x @anyvm @anyvm allow\n', call: 'work personal svc+x', expect: { action: 'allow' } },
  { name: '* argument matches any', policy: 'svc * @anyvm @anyvm allow\n', call: 'work personal svc+anything', expect: { action: 'allow' } },
  { name: '* service matches any', policy: '* * @anyvm @anyvm allow\n', call: 'work personal other.Svc+a', expect: { action: 'allow' } },
  // directives
  { name: '!include', policy: '!include include/x\n', options: { includes: { 'include/x': 'svc * @anyvm @anyvm allow target=vault\n' } }, call: 'work personal svc', expect: { action: 'allow', target: 'vault', rule: { file: '/etc/qubes/policy.d/include/x', line: 1 } } },
  { name: '!include-dir', policy: '!include-dir d\n', options: { includes: { 'd/b.policy': 'svc * @anyvm @anyvm allow target=vault\n', 'd/a.policy': 'svc * @anyvm @anyvm allow target=fedora\n' } }, call: 'work personal svc', expect: { action: 'allow', target: 'fedora' } },
  { name: '!include-service (old format)', policy: '!include-service svc * old\n', options: { includes: { old: '$anyvm $anyvm allow,target=vault\n' } }, call: 'work personal svc', expect: { action: 'allow', target: 'vault' } },
  { name: '!compat-4.0 reads the old files, argument files closed by denies', policy: '!compat-4.0\nsvc * @anyvm @anyvm allow target=fedora\n', options: { legacy: { 'svc+a': 'work vault allow\n', svc: '$anyvm $anyvm allow,target=vault\n' } }, call: 'work personal svc+a', expect: { action: 'deny' } },
  { name: '!compat-4.0 falls through for other calls', policy: '!compat-4.0\nother * @anyvm @anyvm allow target=fedora\n', options: { legacy: { svc: 'vault $anyvm allow\n' } }, call: 'work personal other', expect: { action: 'allow', target: 'fedora' } },
];

for (const c of CASES) {
  test(c.name, () => {
    const got = evaluate(c) as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(c.expect)) assert.deepEqual(got[key], value, `${key} in ${JSON.stringify(got)}`);
  });
}

// Malformed policies: qrexec refuses to load them, so every call is denied.
const MALFORMED: [string, string | { name: string; text: string }[], number, MemoryPolicyOptions?][] = [
  ['unknown token', 'svc * @anyvm @foo allow\n', 1],
  ['@default as a source', 'svc * @default @anyvm allow\n', 1],
  ['unknown action', 'svc * @anyvm @anyvm permit\n', 1],
  ['parameter of another action', 'svc * @anyvm @anyvm deny target=work\n', 1],
  ['default_target= on allow', 'svc * @anyvm @anyvm allow default_target=work\n', 1],
  ['unknown parameter', '\nsvc * @anyvm @anyvm allow foo=bar\n', 2],
  ['parameter twice', 'svc * @anyvm @anyvm allow user=a user=b\n', 1],
  ['parameter without =', 'svc * @anyvm @anyvm allow user\n', 1],
  ['notify not yes/no', 'svc * @anyvm @anyvm allow notify=true\n', 1],
  ['autostart not yes/no', 'svc * @anyvm @anyvm allow autostart=1\n', 1],
  ['* service with an argument', '* +x @anyvm @anyvm allow\n', 1],
  ['argument without +', 'svc x @anyvm @anyvm allow\n', 1],
  ['bad argument characters', 'svc +a/b @anyvm @anyvm allow\n', 1],
  ['bad service characters', 'a+b * @anyvm @anyvm allow\n', 1],
  ['too few fields', 'svc * @anyvm @anyvm\n', 1],
  ['trailing comment', 'svc * @anyvm @anyvm allow # note\n', 1],
  ['allow to @default without target=', 'svc * @anyvm @default allow\n', 1],
  ['missing include', '!include nothing\n', 1],
  ['missing include dir', '!include-dir nothing\n', 1],
  ['unknown directive', '!frobnicate\n', 1],
  ['!compat-4.0 with a parameter', '!compat-4.0 x\n', 1],
  ['!compat-4.0 without legacy files', '!compat-4.0\n', 0],
  ['bad file name', [{ name: 'Bad.policy', text: '' }], 0],
  ['bad file name with a space', [{ name: 'a b.policy', text: '' }], 0],
  ['bad file name in an included dir', '!include-dir d\n', 0, { includes: { 'd/X.policy': '' } }],
];

for (const [name, policy, line, options] of MALFORMED) {
  test(`malformed: ${name}`, () => {
    const files = typeof policy === 'string' ? [{ name: '50-test.policy', text: policy }] : policy;
    assert.throws(() => parsePolicy(files, options), (err: unknown) => {
      assert.ok(err instanceof PolicySyntaxError, String(err));
      assert.equal(err.line, line, err.message);
      return true;
    });
  });
}

test('an earlier matching rule adds back what a later deny took away', () => {
  const got = evaluate({ policy: 'svc * @anyvm @anyvm ask\nsvc * @anyvm vault deny\nsvc * @anyvm @anyvm allow\n', call: 'work personal svc' });
  assert.ok(got.action === 'ask' && got.targets.includes('vault'));
});
