import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Mode, Settings } from '../../src/shared/model/index.js';
import { BACKGROUND_SERVICES, DEFAULT_SETTINGS, gateOf, OPERATIONS, renderPolicy } from '../../src/shared/model/index.js';

interface Line {
  no: number;
  service: string;
  argument: string;
  source: string;
  target: string;
  action: string;
  params: Map<string, string>;
}

/** The rule lines of a rendered policy, split into columns. */
function lines(text: string): Line[] {
  const out: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const [service, argument, source, target, action, ...rest] = l.split(/\s+/);
    assert.ok(service && argument && source && target && action, `line ${i + 1}`);
    out.push({ no: i + 1, service, argument, source, target, action, params: new Map(rest.map((p) => p.split('=', 2) as [string, string])) });
  });
  return out;
}

const granting = (l: Line): boolean => l.action === 'allow' || l.action === 'ask';

for (const mode of ['least-privilege', 'compat'] as const) {
  for (const egress of [null, 'ai-egress']) {
    const s: Settings = { ...structuredClone(DEFAULT_SETTINGS), mode: mode as Mode, egressQube: egress, principal: 'mcp-p1' };
    const t = s.tags;
    const ours = new Set([t.umbrella, t.exec, t.net, t.full, t.sink].map((x) => `@tag:${x}`));
    const sandbox = new Set([t.umbrella, t.exec, t.net, t.full].map((x) => `@tag:${x}`));
    const rules = lines(renderPolicy(s));
    const name = `${mode}${egress ? ', egress' : ''}`;

    test(`${name}: invariant 2, no tag mutation is granted to the principal`, () => {
      for (const l of rules.filter((r) => r.source === s.principal && granting(r))) {
        assert.ok(!l.service.startsWith('admin.vm.tag.') && !l.service.includes('*'), `line ${l.no}`);
      }
      for (const svc of ['admin.vm.tag.Set', 'admin.vm.tag.Remove']) {
        assert.ok(rules.some((r) => r.service === svc && r.source === s.principal && r.target === '@anyvm' && r.action === 'deny'));
      }
    });

    test(`${name}: invariant 16, sandbox and sink qubes call only the enumerated services`, () => {
      const background = new Map(BACKGROUND_SERVICES.map((b) => [b.service, b]));
      for (const l of rules.filter((r) => ours.has(r.source) && granting(r))) {
        if (l.service === 'qubes.Filecopy') {
          assert.ok(ours.has(l.target) && sandbox.has(l.source), `line ${l.no}: copies stay inside`);
          assert.notEqual(l.target, `@tag:${t.sink}`, `line ${l.no}: Qubes' receiver answers the sender, so never a sink`);
          continue;
        }
        if (l.service === 'qubes.ConnectTCP') {
          // which tiers, exactly, is the policy matrix's forward test
          assert.ok(sandbox.has(l.target) && sandbox.has(l.source), `line ${l.no}: forwards stay between sandbox qubes`);
          assert.equal(l.params.get('autostart'), 'no', `line ${l.no}: a connection never starts the target`);
          continue;
        }
        if (l.service === 'qmcp.SinkPush') {
          assert.ok(l.target === `@tag:${t.sink}` && sandbox.has(l.source), `line ${l.no}: pushes go to sinks only`);
          continue;
        }
        const b = background.get(l.service);
        assert.ok(b, `line ${l.no}: ${l.service} is not a background service`);
        assert.notEqual(b.to, 'deny', `line ${l.no}: ${l.service} is refused to sandbox and sink qubes`);
        assert.equal(l.action, 'allow');
        if (b.to === 'adminvm') assert.equal(l.target, '@adminvm', `line ${l.no}`);
        else {
          assert.equal(l.params.get('target'), s.egressQube, `line ${l.no}: update proxy goes to the egress qube`);
          assert.equal(l.params.get('autostart'), 'no', `line ${l.no}: a sandbox's call never starts the egress qube`);
          assert.notEqual(s.egressQube, null);
        }
      }
      for (const src of ours) {
        for (const tgt of ['@anyvm', '@adminvm']) {
          assert.ok(rules.some((r) => r.service === '*' && r.source === src && r.target === tgt && r.action === 'deny'), `${src} -> ${tgt} catch-all`);
        }
      }
      const sinkDeny = rules.findIndex((r) => r.source === `@tag:${t.sink}` && r.service === '*' && r.action === 'deny');
      const firstSandbox = rules.findIndex((r) => sandbox.has(r.source));
      assert.ok(sinkDeny >= 0 && sinkDeny < firstSandbox, 'sink denies come before umbrella lines');
    });

    test(`${name}: invariant 17, the principal's grants stay inside the umbrella`, () => {
      const dom0Services = new Set(OPERATIONS.filter((o) => o.target === 'dom0-service').map((o) => o.service));
      const gatedServices = new Set(OPERATIONS.filter((o) => o.layer === 'policy' && gateOf(s, o) === 'ask').map((o) => o.service));
      for (const l of rules.filter((r) => r.source === s.principal && granting(r))) {
        if (l.target === '@adminvm') assert.ok(dom0Services.has(l.service), `line ${l.no}`);
        else assert.ok(sandbox.has(l.target), `line ${l.no}: ${l.target}`);
        // the principal's dialogs are the gate's, and only the gate's
        if (l.action === 'ask') assert.ok(gatedServices.has(l.service), `line ${l.no}: ${l.service} asks, but the gate does not ask for it`);
        const redirect = l.params.get('target');
        assert.ok(redirect === undefined || redirect === 'dom0', `line ${l.no}`);
      }
      const mine = rules.filter((r) => r.source === s.principal);
      const lastTwo = mine.slice(-2).map((r) => `${r.service} ${r.argument} ${r.target} ${r.action}`);
      assert.deepEqual(lastTwo.sort(), ['* * @adminvm deny', '* * @anyvm deny']);
    });

    test(`${name}: invariant 18, no implicit start but of a sink by a push; exec lines run as root`, () => {
      for (const l of rules.filter((r) => granting(r) && r.target.startsWith('@tag:'))) {
        // a halted sink is started by a push, so that a push reads the same whatever its state
        if (l.service === 'qmcp.SinkPush') assert.ok(!l.params.has('autostart') && l.target === `@tag:${t.sink}`, `line ${l.no}`);
        else assert.equal(l.params.get('autostart'), 'no', `line ${l.no}`);
      }
      const inQube = new Set(OPERATIONS.filter((o) => o.target === 'in-qube').map((o) => o.service));
      for (const l of rules.filter((r) => granting(r) && inQube.has(r.service))) assert.equal(l.params.get('user'), 'root', `line ${l.no}`);
    });

    test(`${name}: the incomplete guards precede every grant that could reach or leave a qube being created`, () => {
      const guard = (source: string, target: string): number => rules.findIndex((r) => r.service === '*' && r.source === source && r.target === target && r.action === 'deny');
      const leaving = Math.max(guard(`@tag:${t.incomplete}`, '@anyvm'), guard(`@tag:${t.incomplete}`, '@adminvm'));
      const reaching = guard('@anyvm', `@tag:${t.incomplete}`);
      const firstGrant = rules.findIndex(granting);
      assert.ok(guard(`@tag:${t.incomplete}`, '@anyvm') >= 0 && guard(`@tag:${t.incomplete}`, '@adminvm') >= 0 && leaving < firstGrant);
      assert.ok(reaching >= 0);
      // before the guard toward it, only grants that never reach the qube named: dom0's, or the update proxy's redirect
      rules.slice(0, reaching).forEach((r, i) => {
        if (granting(r)) assert.ok(r.target === '@adminvm' || (s.egressQube !== null && r.params.get('target') === s.egressQube), `rule ${i}: ${r.service} ${r.source} ${r.target}`);
      });
    });
  }
}
