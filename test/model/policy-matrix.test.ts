import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GateAnswer, Mode, Settings, Tier } from '../../src/shared/model/index.js';
import { BACKGROUND_SERVICES, DEFAULT_SETTINGS, ESCALATIONS, gateOf, operation, OPERATIONS, renderPolicy, TIERS } from '../../src/shared/model/index.js';
import type { DomainInfo, Policy, SystemInfo } from '../../src/shared/policy/index.js';
import { parsePolicy } from '../../src/shared/policy/index.js';
import { DEFAULT_POLICIES } from '../../src/sim/qrexec/default-policy.js';

const PRINCIPAL = 'mcp-control';

function domain(tags: string[], type: DomainInfo['type'] = 'AppVM', power = 'Running'): DomainInfo {
  return { tags, type, template_for_dispvms: false, default_dispvm: null, power_state: power, uuid: `00000000-0000-4000-8000-${String(Math.abs(tags.length * 7919 + type.length)).padStart(12, '0')}` };
}

/** Qubes by name with their tags; outside qubes carry none of ours. */
const FLEET: Record<string, string[]> = {
  'ai-read': ['ai-managed'],
  'ai-e': ['ai-managed', 'ai-exec'],
  'ai-n': ['ai-managed', 'ai-net'],
  'ai-f': ['ai-managed', 'ai-full'],
  'ai-double': ['ai-managed', 'ai-exec', 'ai-full'],
  'ai-incomplete': ['ai-managed', 'ai-full', 'qmcp-incomplete'],
  dump: ['ai-dump'],
  hybrid: ['ai-managed', 'ai-full', 'ai-dump'],
  work: ['operator-tag'],
  // what the agent removed: a tombstone, with an operator tag a clone kept
  tomb: ['qmcp-owner-mcp-control', 'qmcp-tombstone', 'qmcp-tombstone-20260101T000000Z', 'operator-tag'],
  // another's: a tombstone and a qube being created that the agent never made
  'op-tomb': ['qmcp-tombstone', 'qmcp-tombstone-20260101T000000Z', 'operator-tag'],
  'op-incomplete': ['qmcp-incomplete'],
  'sys-net': [],
  'sys-firewall': [],
};

function system(): SystemInfo {
  const domains: Record<string, DomainInfo> = { dom0: domain([], 'AdminVM'), [PRINCIPAL]: domain([]), 'ai-egress': domain([]) };
  for (const [name, tags] of Object.entries(FLEET)) domains[name] = { ...domain(tags), uuid: `00000000-0000-4000-8000-${name.length.toString().padStart(4, '0')}${Object.keys(domains).length.toString().padStart(8, '0')}` };
  // an outside disposable template, the operator's
  domains['ops-dvm'] = { ...domain([]), template_for_dispvms: true, uuid: '00000000-0000-4000-8000-00000000d0d0' };
  return { domains };
}

/** The tier a qube has for the agent, or null when the agent may not act on it at all. */
function tierOf(tags: string[], mode: Mode): Tier | null {
  if (!tags.includes('ai-managed') || tags.includes('ai-dump') || tags.includes('qmcp-incomplete')) return null;
  if (tags.includes('ai-full')) return 'full';
  if (tags.includes('ai-net')) return 'net';
  if (tags.includes('ai-exec')) return 'exec';
  return mode === 'compat' ? 'full' : 'read';
}

const rank = (t: Tier): number => TIERS.indexOf(t);

function settings(mode: Mode, extra: Partial<Settings> = {}): Settings {
  return { ...structuredClone(DEFAULT_SETTINGS), mode, ...extra };
}

/** The gate settings the matrix runs under: the model's defaults, every default turned round, and a malformed gate. */
const GATES: readonly [string, Settings['gate']][] = [
  ['default gate', {}],
  ['explicit gate', Object.fromEntries(OPERATIONS.filter((o) => o.gate !== null).map((o) => [o.id, (o.gate === 'ask' ? 'allow' : 'ask') as GateAnswer]))],
  ['malformed gate', null],
];

/**
 * Where POLICY disagrees with the model for the principal's policy-layer calls: each
 * is refused below its tier, and at it asks iff gateOf says ask, with the parameters
 * an allow has (qubesd for the Admin API, root in the qube, never a start).
 */
function gateMismatches(policy: Policy, s: Settings, mode: Mode): string[] {
  const sys = system();
  const out: string[] = [];
  for (const op of OPERATIONS.filter((o) => o.layer === 'policy')) {
    for (const [name, tags] of Object.entries(FLEET)) {
      const tier = tierOf(tags, mode);
      const want = tier === null || rank(tier) < rank(op.tier) ? 'deny' : gateOf(s, op) === 'ask' ? 'ask' : 'allow';
      const r = policy.evaluate({ service: op.service, argument: '', source: PRINCIPAL, target: name }, sys);
      const where = `${op.id} -> ${name}`;
      if (r.action !== want) out.push(`${where}: ${r.action}, not ${want}`);
      if (r.action === 'deny') continue;
      if (r.autostart) out.push(`${where}: may start the qube`);
      // the dialog's only choice for the Admin API is dom0, so an approval goes to qubesd as an allow does
      const goes = r.action === 'allow' ? [r.target] : r.targets;
      if (op.target === 'admin-api' && JSON.stringify(goes) !== '["dom0"]') out.push(`${where}: goes to ${goes.join(',')}, not qubesd`);
      if (op.target === 'in-qube' && (!goes.includes(name) || r.user !== 'root')) out.push(`${where}: not run as root in ${name}`);
      // the operator picks the qube in the dialog: it offers only qubes the agent may act on at this tier
      for (const t of op.target === 'in-qube' ? goes : []) {
        const offered = tierOf(FLEET[t] ?? [], mode);
        if (offered === null || rank(offered) < rank(op.tier)) out.push(`${where}: the dialog offers ${t}`);
      }
    }
  }
  return out;
}

for (const mode of ['least-privilege', 'compat'] as const) {
  for (const [gateName, gate] of GATES) {
    const s = settings(mode, { egressQube: 'ai-egress', gate });
    const text = renderPolicy(s);
    const policy = parsePolicy([{ name: '30-qmcp.policy', text }]);

    test(`${mode}, ${gateName}: policy-layer operations are reached exactly at their tier, asking iff the gate asks`, () => {
      assert.deepEqual(gateMismatches(policy, s, mode), []);
      if (gate === null) assert.ok(OPERATIONS.every((op) => op.layer === 'service' || (gateOf(s, op) === 'ask') === !op.readOnly), 'every write asks');
    });

    test(`${mode}, ${gateName}: a renderer that drops the gate's ask is caught`, () => {
      const weakened = text.replace(/ ask (target=dom0|user=root) /g, ' allow $1 ');
      const asks = OPERATIONS.some((op) => op.layer === 'policy' && gateOf(s, op) === 'ask');
      assert.equal(gateMismatches(parsePolicy([{ name: '30-qmcp.policy', text: weakened }]), s, mode).length > 0, asks);
    });

    // so a refusal of these is always the service's own, one byte-identical reply per way of serving (docs/threat-model.md)
    test(`${mode}, ${gateName}: the policy lets the principal reach every dom0 service whatever qube its argument names; a line refusing one is caught`, () => {
      const refused = (p: Policy): string[] => {
        const sys = system();
        const args = ['', ...Object.keys(FLEET), 'no-such-qube', 'dom0', 'ops-dvm', PRINCIPAL];
        return OPERATIONS.filter((o) => o.target === 'dom0-service').flatMap((op) =>
          args.flatMap((argument) =>
            ['@adminvm', 'dom0'].filter((target) => p.evaluate({ service: op.service, argument, source: PRINCIPAL, target }, sys).action !== 'allow').map((t) => `${op.service}+${argument} -> ${t}`),
          ),
        );
      };
      assert.deepEqual(refused(policy), []);
      const weakened = text.replace('\n# dom0 services', `\nqmcp.Info +work ${PRINCIPAL} @adminvm deny\n# dom0 services`);
      assert.deepEqual(refused(parsePolicy([{ name: '30-qmcp.policy', text: weakened }])), ['qmcp.Info+work -> @adminvm', 'qmcp.Info+work -> dom0']);
    });
  }

  const s = settings(mode, { egressQube: 'ai-egress' });
  const text = renderPolicy(s);
  const policy = parsePolicy([{ name: '30-qmcp.policy', text }]);
  const sys = system();
  const ev = (service: string, source: string, target: string, argument = '') => policy.evaluate({ service, argument, source, target }, sys);

  test(`${mode}: nothing reaches dom0, absent names or outside qubes but the dom0 services`, () => {
    for (const op of OPERATIONS) {
      for (const target of ['no-such-qube', 'work', 'sys-net', '@default', '@dispvm', '@dispvm:ai-f']) {
        assert.equal(ev(op.service, PRINCIPAL, target).action, 'deny', `${op.service} -> ${target}`);
      }
      // qrexec reads a call to `dom0` as a call to `@adminvm`.
      for (const target of ['@adminvm', 'dom0']) {
        const r = ev(op.service, PRINCIPAL, target, 'ai-f');
        assert.equal(r.action, op.target === 'dom0-service' ? 'allow' : 'deny', `${op.service} -> ${target}`);
      }
    }
      for (const svc of ['qubes.VMShell', 'qubes.Filecopy', 'qubes.OpenInVM', 'qubes.UpdatesProxy', 'qmcp.Unknown']) {
      for (const target of [...Object.keys(FLEET), '@adminvm', 'dom0']) assert.equal(ev(svc, PRINCIPAL, target).action, 'deny', `${svc} -> ${target}`);
    }
  });

  test(`${mode}: the principal's native kill, shutdown and firewall set are denied on every qube; a policy that still grants them is caught`, () => {
    const granted = (p: Policy): string[] =>
      ['admin.vm.Kill', 'admin.vm.Shutdown', 'admin.vm.firewall.Set'].flatMap((svc) =>
        [...Object.keys(FLEET), '@adminvm', 'dom0'].filter((t) => p.evaluate({ service: svc, argument: '', source: PRINCIPAL, target: t }, sys).action !== 'deny').map((t) => `${svc} -> ${t}`),
      );
    assert.deepEqual(granted(policy), []);
    // weakened: the allow line these calls once had, before the catch-all deny
    const weakened = text.replace('\n# Admin API families', `\nadmin.vm.Kill * ${PRINCIPAL} @tag:ai-exec allow target=dom0 autostart=no\n# Admin API families`);
    assert.notDeepEqual(granted(parsePolicy([{ name: '30-qmcp.policy', text: weakened }])), []);
  });

  test(`${mode}: escalation-class services are denied toward every qube and dom0`, () => {
    for (const e of ESCALATIONS) {
      for (const svc of e.denies) {
        for (const target of [...Object.keys(FLEET), '@adminvm', 'dom0']) assert.equal(ev(svc, PRINCIPAL, target).action, 'deny', `${svc} -> ${target}`);
      }
    }
  });

  test(`${mode}: calls from sandbox and sink qubes are denied but the enumerated ones`, () => {
    for (const [source, tags] of Object.entries(FLEET)) {
      const ours = tags.some((t) => ['ai-managed', 'ai-exec', 'ai-net', 'ai-full', 'ai-dump'].includes(t));
      if (!ours) continue;
      // qubes.ConnectTCP, the forward mesh, has a test of its own below
      for (const svc of ['qubes.VMShell', 'qubes.OpenInVM', 'qubes.GetDate', 'admin.vm.List', 'qmcp.List']) {
        for (const target of [...Object.keys(FLEET), PRINCIPAL, '@adminvm', '@dispvm', '@default']) {
          assert.equal(ev(svc, source, target).action, 'deny', `${source}: ${svc} -> ${target}`);
        }
      }
      const incomplete = tags.includes('qmcp-incomplete');
      for (const b of BACKGROUND_SERVICES) {
        const r = ev(b.service, source, b.to === 'egress' ? '@default' : '@adminvm');
        const sink = tags.includes('ai-dump');
        const want = !incomplete && (b.to === 'adminvm' || (b.to === 'egress' && !sink));
        assert.equal(r.action, want ? 'allow' : 'deny', `${source}: ${b.service}`);
        if (r.action === 'allow') assert.equal(r.target, b.to === 'adminvm' ? 'dom0' : 'ai-egress');
        // a refused background call is quiet, as every qube makes it routinely
        if (b.to === 'deny' && r.action === 'deny' && !incomplete) assert.equal(r.notify, false, `${source}: ${b.service} notifies`);
      }
    }
  });

  test(`${mode}: a tombstone that runs reaches nothing, not even the background services`, () => {
    // with a stock install's later files behind ours: nothing may fall through to them
    const stacked = parsePolicy([{ name: '30-qmcp.policy', text }, ...DEFAULT_POLICIES]);
    const ev = (service: string, source: string, target: string) => stacked.evaluate({ service, argument: '', source, target }, sys);
    const services = [...new Set([...OPERATIONS.map((o) => o.service), ...BACKGROUND_SERVICES.map((b) => b.service), 'qubes.Filecopy', 'qubes.VMShell', 'admin.vm.List'])];
    for (const svc of [...services, 'qubes.GetDate', 'qubes.OpenInVM', 'qubes.PdfConvert']) {
      for (const target of [...Object.keys(FLEET), PRINCIPAL, '@adminvm', 'dom0', '@dispvm', '@dispvm:ai-f', '@default', 'no-such-qube']) {
        assert.equal(ev(svc, 'tomb', target).action, 'deny', `tomb: ${svc} -> ${target}`);
      }
    }
  });

  test(`${mode}: a sandbox's update-proxy call answers alike for an outside qube, an absent name and @default`, () => {
    // qrexec turns an absent target into @default: a line for @default alone would deny only existing qubes;
    // and a tombstone or a qube being created, the agent's or not, must not answer otherwise
    const targets = ['work', 'sys-net', 'no-such-qube', '@default', 'ai-f', 'ops-dvm', 'tomb', 'op-tomb', 'ai-incomplete', 'op-incomplete'];
    const mismatches = (p: Policy): string[] =>
      ['ai-read', 'ai-e', 'ai-f'].flatMap((source) =>
        targets.flatMap((target) => {
          const r = p.evaluate({ service: 'qubes.UpdatesProxy', argument: '', source, target }, sys);
          return r.action === 'allow' && r.target === 'ai-egress' ? [] : [`${source} -> ${target}: ${r.action}`];
        }),
      );
    assert.deepEqual(mismatches(policy), []);
    // weakened: the denies toward tombstones and incomplete qubes ahead of the redirect
    const weakened = text.replace('\n# Incomplete qubes', '\n* * @anyvm @tag:qmcp-tombstone deny\n* * @anyvm @tag:qmcp-incomplete deny\n# Incomplete qubes');
    assert.notEqual(weakened, text);
    assert.deepEqual(
      mismatches(parsePolicy([{ name: '30-qmcp.policy', text: weakened }])),
      ['ai-read', 'ai-e', 'ai-f'].flatMap((source) => ['tomb', 'op-tomb', 'ai-incomplete', 'op-incomplete'].map((target) => `${source} -> ${target}: deny`)),
    );
  });

  test(`${mode}: a sandbox's push toward a tombstone or a qube being created is refused with a notification, toward an outside qube without; a push line ahead of their denies is caught`, () => {
    const pushers = ['ai-e', 'ai-f'];
    const closed = ['tomb', 'op-tomb', 'ai-incomplete', 'op-incomplete'];
    const notified = (p: Policy): string[] =>
      pushers.flatMap((source) =>
        [...closed, 'work'].flatMap((target) => {
          const r = p.evaluate({ service: 'qmcp.SinkPush', argument: '', source, target }, sys);
          assert.equal(r.action, 'deny', `${source} -> ${target}`);
          return r.notify ? [`${source} -> ${target}`] : [];
        }),
      );
    // nothing reaches a tombstone, and trying is loud
    assert.deepEqual(notified(policy), pushers.flatMap((source) => closed.map((target) => `${source} -> ${target}`)));
    // weakened: the push lines ahead of the denies toward tombstones and incomplete qubes, where their quiet deny would answer
    const pushes = text.split('\n').filter((l) => l.startsWith('qmcp.SinkPush ')).join('\n');
    const weakened = text.replace('\n# Incomplete qubes', `\n${pushes}\n# Incomplete qubes`);
    assert.notEqual(weakened, text);
    assert.deepEqual(notified(parsePolicy([{ name: '30-qmcp.policy', text: weakened }])), []);
  });

  test(`${mode}: a sandbox's update-proxy call to any @dispvm form is refused, whether it names an outside disposable template or nothing`, () => {
    // qrexec refuses @dispvm:X before any rule unless X is a disposable template: a line matching
    // @dispvm:X would allow exactly the outside disposable templates
    for (const source of ['ai-read', 'ai-e', 'ai-f']) {
      for (const target of ['@dispvm', '@dispvm:ops-dvm', '@dispvm:no-such-qube', '@dispvm:work', `@dispvm:uuid:${sys.domains['ops-dvm']?.uuid ?? ''}`]) {
        let action: string;
        try {
          action = ev('qubes.UpdatesProxy', source, target).action;
        } catch {
          action = 'deny';
        }
        assert.equal(action, 'deny', `${source}: qubes.UpdatesProxy -> ${target}`);
      }
    }
  });

  for (const [gateName, gate] of GATES) test(`${mode}, ${gateName}: the copy mesh`, () => {
    const gated = settings(mode, { egressQube: 'ai-egress', gate });
    const copy = gateOf(gated, operation('copy')) === 'ask' ? 'ask' : 'allow';
    const meshPolicy = parsePolicy([{ name: '30-qmcp.policy', text: renderPolicy(gated) }]);
    const ev = (service: string, source: string, target: string) => meshPolicy.evaluate({ service, argument: '', source, target }, sys);
    const names = Object.keys(FLEET);
    for (const source of names) {
      for (const target of names) {
        if (source === target) continue;
        const st = FLEET[source] ?? [];
        const tt = FLEET[target] ?? [];
        const sTier = tierOf(st, mode);
        const tTier = tierOf(tt, mode);
        const execCapable = (t: Tier | null): boolean => t !== null && rank(t) >= rank('exec');
        // nothing reaches a tombstone or a qube being created, and such a call is loud (notify)
        const closed = st.includes('ai-dump') || [...st, ...tt].some((t) => t === 'qmcp-incomplete' || t === 'qmcp-tombstone');
        let want: string;
        // a sink, hybrid or not, takes pushes (qmcp.SinkPush), never Qubes' receiver, which answers the sender
        if (closed || tt.includes('ai-dump')) want = 'deny';
        // a command in the source copies without the copy tool: a gated copy asks here too
        else if (execCapable(sTier) && execCapable(tTier)) want = copy;
        else if (st.includes('ai-managed') && tt.includes('ai-managed')) want = 'ask';
        else want = 'deny';
        assert.equal(ev('qubes.Filecopy', source, target).action, want, `${source} -> ${target}`);
        const push = ev('qmcp.SinkPush', source, target);
        const pushes = !closed && execCapable(sTier) && tt.includes('ai-dump');
        assert.equal(push.action, pushes ? copy : 'deny', `${source} -> ${target} qmcp.SinkPush`);
        // a halted sink is started; a push anywhere else is refused without a notification
        if (push.action !== 'deny') assert.equal(push.autostart, true);
        if (!pushes && execCapable(sTier) && !closed) assert.equal(push.action === 'deny' && push.notify, false, `${source} -> ${target} notify`);
      }
      for (const outside of ['work', 'dom0', '@adminvm', '@dispvm', 'no-such-qube']) {
        if (source !== outside) assert.equal(ev('qubes.Filecopy', source, outside).action, 'deny', `${source} -> ${outside}`);
        if (source !== outside) assert.equal(ev('qmcp.SinkPush', source, outside).action, 'deny', `${source} -> ${outside} qmcp.SinkPush`);
      }
    }
  });

  /** Where POLICY's qubes.ConnectTCP answers differ from the rule: exec-capable to exec-capable, any port, nothing else. */
  const forwardMismatches = (p: Policy, forward: string): string[] => {
    const out: string[] = [];
    const names = Object.keys(FLEET);
    const execCapable = (tags: string[]): boolean => {
      const tier = tierOf(tags, mode);
      return tier !== null && rank(tier) >= rank('exec');
    };
    for (const source of [...names, PRINCIPAL, 'ai-egress', 'ops-dvm']) {
      for (const target of [...names, PRINCIPAL, 'ai-egress', 'ops-dvm', 'dom0', '@adminvm', '@default', '@dispvm', '@dispvm:ai-f', 'no-such-qube']) {
        if (source === target) continue;
        const st = FLEET[source];
        const tt = FLEET[target];
        const want = st !== undefined && tt !== undefined && execCapable(st) && execCapable(tt) ? forward : 'deny';
        for (const argument of ['8080', '1', '65535', '']) {
          const r = p.evaluate({ service: 'qubes.ConnectTCP', argument, source, target }, sys);
          if (r.action !== want) out.push(`${source} -> ${target} +${argument}: ${r.action}, not ${want}`);
          else if (r.action !== 'deny' && r.autostart) out.push(`${source} -> ${target}: may start it`);
        }
      }
    }
    return out;
  };

  for (const [gateName, gate] of GATES) test(`${mode}, ${gateName}: the forward mesh joins exec-capable qubes only, on any port, asking iff the gate asks; a wider one is caught`, () => {
    const gated = settings(mode, { egressQube: 'ai-egress', gate });
    const forward = gateOf(gated, operation('port.forward')) === 'ask' ? 'ask' : 'allow';
    const rendered = renderPolicy(gated);
    assert.deepEqual(forwardMismatches(parsePolicy([{ name: '30-qmcp.policy', text: rendered }]), forward), []);
    // weakened: an exec-capable source may reach any qube, or a read-tier target is let in
    for (const line of [`qubes.ConnectTCP * @tag:ai-exec @anyvm ${forward}`, `qubes.ConnectTCP * @tag:ai-managed @tag:ai-managed ${forward} autostart=no`]) {
      const weakened = rendered.replace('\n# Port forwarding', `\n${line}\n# Port forwarding`);
      assert.notDeepEqual(forwardMismatches(parsePolicy([{ name: '30-qmcp.policy', text: weakened }]), forward), [], line);
    }
  });

  test(`${mode}: a halted sandbox qube is not started by a call into it, but Admin API calls still reach qubesd`, () => {
    const halted: SystemInfo = structuredClone(sys);
    const f = halted.domains['ai-f'];
    assert.ok(f);
    f.power_state = 'Halted';
    assert.equal(policy.evaluate({ service: 'qmcp.Exec', argument: '', source: PRINCIPAL, target: 'ai-f' }, halted).action, 'deny');
    const r = policy.evaluate({ service: 'admin.vm.CurrentState', argument: '', source: PRINCIPAL, target: 'ai-f' }, halted);
    assert.equal(r.action, 'allow');
    // but a push starts a halted sink, so that it reads the same as one into a running sink
    const dump = halted.domains['dump'];
    assert.ok(dump);
    dump.power_state = 'Halted';
    const pushed = policy.evaluate({ service: 'qmcp.SinkPush', argument: '', source: 'ai-e', target: 'dump' }, halted);
    const copy = gateOf(s, operation('copy')) === 'ask' ? 'ask' : 'allow';
    assert.deepEqual([pushed.action, pushed.action !== 'deny' && pushed.autostart], [copy, true]);
    assert.equal(policy.evaluate({ service: 'qubes.Filecopy', argument: '', source: 'ai-e', target: 'dump' }, halted).action, 'deny');
  });
}

test('the principal is a parameter', () => {
  const text = renderPolicy(settings('compat', { principal: 'mcp-other' }));
  assert.ok(!text.includes('mcp-control'));
  const policy = parsePolicy([{ name: '30-qmcp.policy', text }]);
  const sys = system();
  sys.domains['mcp-other'] = domain([]);
  assert.equal(policy.evaluate({ service: 'qmcp.Exec', argument: '', source: 'mcp-other', target: 'ai-read' }, sys).action, 'allow');
  assert.equal(policy.evaluate({ service: 'qmcp.Exec', argument: '', source: PRINCIPAL, target: 'ai-read' }, sys).action, 'deny');
});

test('a sandbox\'s update-proxy call does not start a halted egress qube (and its netvm chain)', () => {
  const policy = parsePolicy([{ name: '30-qmcp.policy', text: renderPolicy(settings('compat', { egressQube: 'ai-egress' })) }]);
  const sys = system();
  sys.domains['ai-egress'] = { ...domain([], 'AppVM', 'Halted'), uuid: sys.domains['ai-egress']?.uuid ?? '' };
  assert.equal(policy.evaluate({ service: 'qubes.UpdatesProxy', argument: '', source: 'ai-f', target: '@default' }, sys).action, 'deny');
  assert.equal(policy.evaluate({ service: 'qubes.UpdatesProxy', argument: '', source: 'ai-f', target: '@default' }, system()).action, 'allow');
});

test('without an egress qube, update-proxy calls from sandbox qubes are denied', () => {
  const policy = parsePolicy([{ name: '30-qmcp.policy', text: renderPolicy(settings('compat')) }]);
  assert.equal(policy.evaluate({ service: 'qubes.UpdatesProxy', argument: '', source: 'ai-f', target: '@default' }, system()).action, 'deny');
});
