// Where each token may stand: the rule's source and target columns, the
// target=/default_target= parameters, and the target a caller asks for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolicyRequest, SystemInfo } from '../../src/shared/policy/index.js';
import { parsePolicy, PolicySyntaxError } from '../../src/shared/policy/index.js';

type Where = 'source' | 'target' | 'redirect' | 'intended';

// token → [source, target, redirect, intended]: true where it is accepted.
const TABLE: readonly [string, boolean, boolean, boolean, boolean][] = [
  ['work', true, true, true, true],
  ['uuid:11111111-2222-3333-4444-555555555555', true, true, true, true],
  ['*', true, true, false, false],
  ['@adminvm', true, true, true, true],
  ['@anyvm', true, true, false, false],
  ['@default', false, true, false, true],
  ['@type:AppVM', true, true, false, false],
  ['@tag:work', true, true, false, false],
  ['@dispvm', false, true, true, true],
  ['@dispvm:dvm', true, true, true, true],
  ['@dispvm:@tag:work', true, true, false, false],
  ['@unknown', false, false, false, false],
  ['@tag:', false, false, false, false],
  ['@type:@x', false, false, false, false],
  ['@dispvm:@tag:', false, false, false, false],
  ['@dispvm:@type:AppVM', false, false, false, false],
  ['@ADMINVM', false, false, false, false],
];

const system: SystemInfo = {
  domains: {
    dom0: { tags: [], type: 'AdminVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', uuid: '00000000-0000-0000-0000-000000000000' },
    work: { tags: ['work'], type: 'AppVM', template_for_dispvms: false, default_dispvm: 'dvm', power_state: 'Running', uuid: '11111111-2222-3333-4444-555555555555' },
    dvm: { tags: [], type: 'AppVM', template_for_dispvms: true, default_dispvm: 'dvm', power_state: 'Halted', uuid: '66666666-2222-3333-4444-555555555555' },
    other: { tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: 'dvm', power_state: 'Running', uuid: '77777777-2222-3333-4444-555555555555' },
  },
};

function accepted(where: Exclude<Where, 'intended'>, token: string): boolean {
  const line =
    where === 'source' ? `svc * ${token} @anyvm ask`
      : where === 'target' ? `svc * @anyvm ${token} ask`
        : `svc * @anyvm @anyvm ask target=${token}`;
  try {
    parsePolicy([{ name: '50-t.policy', text: line + '\n' }]);
    return true;
  } catch (err) {
    assert.ok(err instanceof PolicySyntaxError);
    assert.equal(err.file, '/etc/qubes/policy.d/50-t.policy');
    assert.equal(err.line, 1);
    return false;
  }
}

/** A requested target is refused outright only when it is not a valid intended-target token. */
function requestable(token: string): boolean {
  const policy = parsePolicy([{ name: '50-t.policy', text: 'svc * @anyvm * allow target=other\n' }]);
  const req: PolicyRequest = { service: 'svc', argument: '', source: 'work', target: token };
  return policy.evaluate(req, system).action === 'allow';
}

for (const [token, source, target, redirect, intended] of TABLE) {
  test(`token ${token}: source ${source}, target ${target}, redirect ${redirect}, requested ${intended}`, () => {
    assert.equal(accepted('source', token), source, 'source');
    assert.equal(accepted('target', token), target, 'target');
    assert.equal(accepted('redirect', token), redirect, 'redirect');
    assert.equal(requestable(token), intended, 'requested');
  });
}

test('default_target= takes the same tokens as target=', () => {
  for (const [token, , , redirect] of TABLE) {
    const ok = (() => {
      try {
        parsePolicy([{ name: 'a.policy', text: `svc * @anyvm @anyvm ask default_target=${token}\n` }]);
        return true;
      } catch {
        return false;
      }
    })();
    assert.equal(ok, redirect, token);
  }
});
