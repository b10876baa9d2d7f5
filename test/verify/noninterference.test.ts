import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isBusyQube } from '../../verify/noninterference/busy.js';
import { makeNoninterferenceCheck, noninterferenceCheck } from '../../verify/noninterference/check.js';
import { LEAKED_TO_EVENTS } from '../../verify/noninterference/weakened.js';
import type { ServerFactory } from '../../verify/noninterference/notifications.js';
import type { McpServer } from '@modelcontextprotocol/server';
import { createServer } from '../../src/principal/server.js';
import type { FiredEvent } from '../../src/sim/qubesd/app.js';

const SEED = 4242;

// each run has its own machines and mostly waits on them (starts, windows, the operator): several run at once
describe('noninterference', { concurrency: 4 }, () => {
  test('machines that differ only outside the agent’s world answer alike: raw qrexec, events, MCP', async () => {
    const progress: string[] = [];
    const r = await noninterferenceCheck.run({ scale: 1, progress: (line) => progress.push(line) }, SEED);
    assert.deepEqual(r.failures, []);
    // a long run says how far it has come: each pair once
    assert.deepEqual(progress.map((l) => /^pair (\d+) alike \((\d+) of 3 done\)$/.exec(l)?.[2]), ['1', '2', '3']);
    const figure = (label: string): number => Number(r.figures.find((f) => f.label.startsWith(label))?.value ?? 0);
    assert.equal(figure('machines compared'), 6);
    assert.ok(figure('outside edits') >= 2);
    assert.ok(figure('raw calls compared') >= 40);
    assert.ok(figure('calls from sandbox qubes') >= 3);
    assert.ok(figure('calls to special targets') >= 3);
    assert.ok(figure('calls naming a qube the machines differ in') >= 5);
    assert.ok(figure('calls compared while the operator worked outside') >= 20);
    assert.ok(figure('operator actions outside during those calls') >= 10);
    assert.ok(figure('event windows compared') >= 1);
    assert.ok(figure('MCP results compared') >= 20);
    // each session told of the marker's label in every window, and of ai-peer's memory and ai-execbox's start where they changed
    assert.ok(figure('resource notifications to live sessions compared') >= 6, JSON.stringify(r.figures));
    assert.equal(figure("machines compared with two other principals' worlds"), 2);
    assert.ok(figure("edits in other principals' worlds") >= 1);
    assert.ok(figure("calls naming a qube of another principal's world") >= 1);
    assert.equal(figure('machines compared with the gate on'), 2);
    assert.ok(figure('gate: requests answered') >= 2);
    assert.ok(figure('gate: dialogs answered') >= 2);
    assert.ok(figure('gate: of them allowed') >= 1);
    // every actionable code a simulated machine can reach, reached alike on both machines (each probe checks its code)
    const codes = /^(\d+) of (\d+)$/.exec(r.figures.find((f) => f.label.startsWith('actionable codes'))?.value ?? '');
    assert.ok(codes && codes[1] === codes[2] && Number(codes[2]) >= 15, JSON.stringify(codes));
  });

  test('a memory range bounded by what the host has free (what outside qubes leave) is caught by the actionable probes', async () => {
    const weak = makeNoninterferenceCheck({ weakened: ['property.set'], operations: ['property.set'], rawOnly: true, busyOnly: true, shrinkRuns: 0 });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures.find((f) => f.what.startsWith('call '));
    assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
    assert.match(hit.what, /qmcp\.SetProperty\+ai-box/);
    assert.match(hit.what, /out_of_range.+at most \d+ MiB, what the host has free/);
  });

  test('a gate that asks about a qube because it exists (an outside one waits for the operator, an absent name is refused at once) is caught by the requests compared', async () => {
    const weak = makeNoninterferenceCheck({ existenceGate: ['remove'], operations: ['remove'], rawOnly: true, gateOnly: true, shrinkRuns: 0 });
    const progress: string[] = [];
    const r = await weak.run({ scale: 1, progress: (line) => progress.push(line) }, SEED);
    // what differed is on the progress line too, for a run stopped before its report
    assert.match(progress.join('\n'), /^pair \d+ differs \(1 of 1 done\): call \d+ \{"seat":"mcp-control","target":"@adminvm","service":"qmcp\.Remove\+/m);
    const hit = r.failures[0];
    assert.ok(hit, 'the gate asking about outside qubes was not caught');
    assert.match(hit.what, /^call \{"seat":"mcp-control","target":"@adminvm","service":"qmcp\.Remove\+/);
    // the bytes alike, the operator asked on one machine only
    assert.match(hit.what, /"gate":""/);
    assert.match(hit.what, /"gate":"request remove (allow|deny)"/);
    assert.match(hit.reproduction, /gate every answered with seed \d+/);
  });

  test('an Info whose guard asks whether a qube exists, not whether the agent sees it, is caught through the machines and shrunk', async () => {
    // one fresh pair is enough to show a shrink: it drops the first half of the calls, and the Info naming an outside qube still differs
    const weak = makeNoninterferenceCheck({ weakened: ['info'], operations: ['info'], rawOnly: true, busyOnly: true, shrinkRuns: 1 });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures[0];
    assert.ok(hit, 'the weakened Info was not caught');
    assert.match(hit.what, /^call \{"seat":"mcp-control","target":"@adminvm","service":"qmcp\.Info\+/);
    assert.match(hit.reproduction, /--seed 4242 --scale 1 --only noninterference/);
    assert.match(hit.reproduction, /machine B edits/);
    const shrunk = /shrunk calls \((\d+) of (\d+)\)/.exec(hit.reproduction);
    assert.ok(shrunk, hit.reproduction);
    assert.ok(Number(shrunk[1]) < Number(shrunk[2]) || Number(shrunk[2]) === 1, hit.reproduction);
  });

  test('a List that names as sinks qubes outside the umbrella without the sink tag is caught', async () => {
    const weak = makeNoninterferenceCheck({ weakened: ['list'], operations: ['list'], rawOnly: true, busyOnly: true, shrinkRuns: 0 });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures[0];
    assert.ok(hit, 'the weakened List was not caught');
    assert.match(hit.what, /^call \{"seat":"mcp-control","target":"@adminvm","service":"qmcp\.List"/);
  });

  test('a policy line that lets the principal read outside power states is caught', async () => {
    const weak = makeNoninterferenceCheck({
      rawOnly: true,
      busyOnly: true,
      operations: ['state', 'firewall.get'],
      shrinkRuns: 0,
      extraPolicy: 'admin.vm.CurrentState * mcp-control @anyvm allow target=dom0\nadmin.vm.firewall.Get * mcp-control @anyvm allow target=dom0\n',
    });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures.find((f) => /admin\.vm\.(CurrentState|firewall\.Get)/.test(f.what));
    assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
  });

  test('dom0 services whose answers show what the operator is making while the agent calls are caught on the busy pair', async () => {
    const weak = makeNoninterferenceCheck({
      rawOnly: true,
      busyOnly: true,
      operations: ['list', 'info', 'pool.figures'],
      shrinkRuns: 0,
      call: async (m, c, real) => {
        const o = await real(m, c);
        if (c.target !== '@adminvm' || !c.service.startsWith('qmcp.')) return o;
        const busy = [...m.host.qubesd.app.vms.keys()].filter(isBusyQube);
        return busy.length ? { ...o, stdout: `${o.stdout}${busy.join(',')}` } : o;
      },
    });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures.find((f) => /qmcp\./.test(f.what));
    assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
    assert.match(hit.reproduction, /B's operator busy outside during the calls/);
  });

  test('an event filter that takes one outside qube for the agent’s is caught by the event windows', async () => {
    const weak = makeNoninterferenceCheck({ weakened: ['events'], busyOnly: true, shrinkRuns: 0 });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures.find((f) => f.what.startsWith('the event windows differ'));
    assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
    assert.match(hit.what, new RegExp(`B .*${LEAKED_TO_EVENTS}`));
    assert.equal(r.failures.filter((f) => f.what.startsWith('call ')).length, 0, 'the raw calls saw no difference: the windows caught it');
  });

  test('a feed that loses the property changes on one machine (so every window there is late) is caught as a run that compared no window', async () => {
    // the rows B's feed loses are the ones each window waits for (the agent's memory change, the marker): late at any length
    const lossy = (stdout: string): string => {
      const [first = '', ...rest] = stdout.split('\n');
      const body = JSON.parse(first) as { events?: { event: string }[] };
      return [JSON.stringify({ ...body, events: (body.events ?? []).filter((e) => e.event !== 'property-changed') }), ...rest].join('\n');
    };
    const weak = makeNoninterferenceCheck({
      operations: ['list'],
      busyOnly: true,
      shrinkRuns: 0,
      windows: [6, 6],
      call: async (m, c, real) => {
        const o = await real(m, c);
        return m.label === 'B' && o.status === 0 && c.service.startsWith('qmcp.Events+') ? { ...o, stdout: lossy(o.stdout) } : o;
      },
    });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures.find((f) => f.what.startsWith('no event window was compared'));
    assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
    assert.match(hit.what, /of 2 windows, A was late in \d, B in 2,/);
  });

  test("a tombstone list built on the operator's (every tombstone, whoever removed it) is caught on a pair where one machine holds the operator's tombstone", async () => {
    // seed 3: pair 0's machine A adds ai-box-old, a tombstone the operator marked
    const weak = makeNoninterferenceCheck({ weakened: ['tombstone.list'], operations: ['tombstone.list'], rawOnly: true, shrinkRuns: 0, pairs: [0] });
    const r = await weak.run({ scale: 1 }, 3);
    const hit = r.failures[0];
    assert.ok(hit, 'the weakened tombstone list was not caught');
    assert.match(hit.what, /qmcp\.TombstoneList/);
    assert.match(hit.what, /ai-box-old/);
  });

  test("a restore that asks only whether a name is a tombstone, not whose, is caught on a pair where one machine holds another principal's tombstone", async () => {
    // seed 777: pair 0's machine A adds ai-hidden, another principal's tombstone
    const weak = makeNoninterferenceCheck({ weakened: ['tombstone.restore'], operations: ['tombstone.restore'], rawOnly: true, shrinkRuns: 0, pairs: [0] });
    const r = await weak.run({ scale: 1 }, 777);
    const hit = r.failures[0];
    assert.ok(hit, 'the weakened restore was not caught');
    assert.match(hit.what, /qmcp\.TombstoneRestore\+ai-hidden/);
  });

  test("a dom0 that serves every caller with the first principal's settings is caught on a pair with two other principals", async () => {
    // pair 1 lists two other principals before the agent's; its machine B holds one more qube of the first one's world
    const weak = makeNoninterferenceCheck({ firstsSettings: ['list', 'info'], operations: ['list', 'info'], rawOnly: true, shrinkRuns: 0, pairs: [1] });
    const r = await weak.run({ scale: 1 }, SEED);
    const hit = r.failures[0];
    assert.ok(hit, "the first principal's settings for every caller were not caught");
    assert.match(hit.what, /qmcp\.(List|Info)/);
    assert.match(hit.reproduction, /two other principals/);
  });

  test('the real tombstone list and restore answer alike on those pairs', async () => {
    for (const seed of [3, 777]) {
      const r = await makeNoninterferenceCheck({ operations: ['tombstone.list', 'tombstone.restore', 'remove'], rawOnly: true, shrinkRuns: 0, pairs: [0] }).run({ scale: 1 }, seed);
      assert.deepEqual(r.failures, [], `seed ${seed}`);
    }
  });

  /** A live session's server that also takes qubesd's own, unfiltered events: LEAK says what it sends for one. */
  function leakyServer(leak: (ev: FiredEvent, server: McpServer) => void): ServerFactory {
    return (m, qrexec, options) => {
      const server = createServer(qrexec, options);
      m.host.qubesd.app.subscribe((ev) => leak(ev, server));
      return server;
    };
  }

  for (const [what, leak] of [
    ['an updated for every qube a property changed on, visible or not', (ev: FiredEvent, s: McpServer) => void (ev.subject !== '' && ev.event.startsWith('property-set:') && s.server.sendResourceUpdated({ uri: `qube://${ev.subject}` }).catch(() => undefined))],
    ['a list_changed on every create, inside or outside', (ev: FiredEvent, s: McpServer) => void (ev.event === 'domain-add' && s.server.sendResourceListChanged().catch(() => undefined))],
  ] as const) {
    test(`a live session's feed that sends ${what} is caught by the notifications compared`, async () => {
      const weak = makeNoninterferenceCheck({ server: leakyServer(leak), operations: ['list'], busyOnly: true, shrinkRuns: 0 });
      const r = await weak.run({ scale: 1 }, SEED);
      const hit = r.failures.find((f) => f.what.startsWith('the resource notifications to a live 2025-11-25 session differ'));
      assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
      assert.equal(r.failures.length, 1, 'the windows, the raw calls and the MCP results saw no difference: the notifications caught it');
    });
  }
});
