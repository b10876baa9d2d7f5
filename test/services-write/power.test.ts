/**
 * qmcp.Shutdown, qmcp.Kill and qmcp.FirewallSet through the real runner:
 * what they do on a qube of the agent's world at their tier, what they tell
 * the agent, and the uniform refusal for everything else, with nothing
 * changed. Rules qubesd would refuse never reach the operator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runService } from '../../src/dom0/service/run.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { ASKING, answerNext, pendingRequest } from '../gate/helpers.js';
import { weakened } from '../plans/helpers.js';
import { REFUSED, auditValid, call, json, startHost } from './helpers.js';
import type { Host } from './helpers.js';

const RULES = 'action=accept dsthost=example.com proto=tcp dstports=443-443\naction=drop\n';

/** Rules whose shape is right but which qubesd would refuse. */
const REFUSED_BY_QUBESD = ['action=accept dstports=443\n', 'action=accept proto=icmp icmptype=256\n', 'action=accept dst4=192.0.2.0/33\n', 'action=accept dst4=192.0.2.1 dsthost=example.com\n'];

const state = (h: Host): string => JSON.stringify([...['ai-box', 'ai-execbox', 'ai-read', 'vault', 'ai-outside'].map((q) => [h.vm(q)?.power, h.vm(q)?.firewall])]);

test('kill and shutdown stop a running qube of the agent at exec tier; a halted one is an error the agent can act on', async () => {
  const h = await startHost();
  try {
    for (const [service, qube] of [['qmcp.Kill', 'ai-execbox'], ['qmcp.Shutdown', 'ai-box']] as const) {
      await h.qubesd.call('admin.vm.Start', qube);
      const r = await call(h, `${service}+${qube}`);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(json(r), { name: qube });
      assert.equal(h.vm(qube)?.power, 'Halted');
      const again = await call(h, `${service}+${qube}`);
      assert.equal(again.status, 1);
      assert.deepEqual(json(again), { error: { code: 'not_running', message: 'the qube is not running' } });
    }
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('firewall set replaces the rules of a net-tier qube with the exact bytes, and echoes them', async () => {
  const h = await startHost();
  try {
    const r = await call(h, 'qmcp.FirewallSet+ai-box', RULES);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { name: 'ai-box', rules: RULES.trimEnd().split('\n') });
    assert.equal(await h.qubesd.call('admin.vm.firewall.Get', 'ai-box'), RULES);
  } finally {
    await h.done();
  }
});

test('hidden, out-of-tier and malformed calls are the uniform refusal and change nothing', async () => {
  const h = await startHost();
  try {
    await h.qubesd.call('admin.vm.Start', 'ai-read');
    await h.qubesd.call('admin.vm.Start', 'vault');
    const before = state(h);
    const cases: [string, string, string][] = [
      ['an outside qube', 'qmcp.Kill+vault', ''],
      ['an outside qube with an elevation tag', 'qmcp.Shutdown+ai-outside', ''],
      ['an absent qube', 'qmcp.Kill+ai-nosuch', ''],
      ['dom0', 'qmcp.Kill+dom0', ''],
      ['below exec tier', 'qmcp.Kill+ai-read', ''],
      ['below exec tier, shut down', 'qmcp.Shutdown+ai-read', ''],
      ['below net tier', 'qmcp.FirewallSet+ai-execbox', RULES],
      ['firewall of an outside qube', 'qmcp.FirewallSet+vault', RULES],
      ['no argument', 'qmcp.Kill', ''],
      ['a payload on kill', 'qmcp.Kill+ai-box', 'force'],
      ['a payload on shutdown', 'qmcp.Shutdown+ai-box', '{}'],
      ['no rules', 'qmcp.FirewallSet+ai-box', ''],
      ['rules as JSON', 'qmcp.FirewallSet+ai-box', JSON.stringify({ rules: ['action=drop'] })],
      ['no final newline', 'qmcp.FirewallSet+ai-box', 'action=drop'],
      ['a carriage return', 'qmcp.FirewallSet+ai-box', 'action=drop\r\n'],
      ...REFUSED_BY_QUBESD.map((rules): [string, string, string] => [`qubesd would refuse ${JSON.stringify(rules)}`, 'qmcp.FirewallSet+ai-box', rules]),
    ];
    for (const [what, service, payload] of cases) assert.deepEqual(await call(h, service, payload), REFUSED, what);
    assert.equal(state(h), before);
  } finally {
    await h.done();
  }
});

test('the gate asks about a kill and a firewall set only once every guard passed; rules qubesd would refuse never reach the operator', async () => {
  const h = await startHost(ASKING);
  try {
    for (const rules of REFUSED_BY_QUBESD) assert.deepEqual(await call(h, 'qmcp.FirewallSet+ai-box', rules), REFUSED, rules);
    assert.deepEqual(await call(h, 'qmcp.Kill+vault'), REFUSED);
    // a well-formed call asks, and the next request the store sees is this one
    const pending = call(h, 'qmcp.FirewallSet+ai-box', RULES);
    const r = await answerNext(h.root, 'deny', () => true);
    assert.equal(r.operation, 'firewall.set');
    assert.deepEqual(await pending, REFUSED);

    // weakened: a service that takes any payload as rules asks the operator about rules qubesd refuses
    const url = weakened('dom0/services/firewall-set.js', 'const rules = isQubeName(argument) ? decodeRules(payload) : null;', "const rules = isQubeName(argument) ? [payload.toString('utf8')] : null;");
    const { firewallSetService: weak } = (await import(url)) as { firewallSetService: ServiceSpec<unknown> };
    const swapped: typeof runService = (table, rt) => runService(new Map([...table].map(([s, spec]) => [s, spec.operation === 'firewall.set' ? weak : spec])), rt);
    const bad = call(h, 'qmcp.FirewallSet+ai-box', REFUSED_BY_QUBESD[0], { runService: swapped });
    const asked = await pendingRequest(h.root, (q) => q.operation === 'firewall.set');
    await answerNext(h.root, 'deny', (q) => q.id === asked.id);
    await bad;
  } finally {
    await h.done();
  }
});
