import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OUTSIDE } from '../../src/dom0/services/redact.js';
import { envServiceMode } from '../../src/sim/host.js';
import { GiB, json, startWorld } from './helpers.js';
import type { Reply, World } from './helpers.js';

const REFUSED = { status: 126, stdout: '', stderr: 'Request refused\n' };
/**
 * Served by the resident process unless QMCP_DOM0_SERVICE_MODE says
 * otherwise, its replies read as the executable's: these are the services'
 * answers, not how a service is started (test/boundary/invariants.test.ts
 * runs per call), and per call each starts a Node process.
 */
const serviceMode = envServiceMode() ?? 'resident';
const HIDDEN_TAGS = ['"ai-exec"', '"ai-net"', '"ai-full"', '"ai-dump"', '"qmcp-'];

function assertRefused(r: Reply, what: string): void {
  assert.deepEqual({ status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') }, REFUSED, what);
}

function assertNoTierTags(r: Reply): void {
  const text = r.stdout.toString('utf8');
  for (const t of HIDDEN_TAGS) assert.ok(!text.includes(t), `answer names ${t}: ${text}`);
}

async function power(w: World, qube: string): Promise<string> {
  return w.qubesd.app.get(qube)?.power ?? 'absent';
}

for (const mode of ['least-privilege', 'compat'] as const) {
  describe(`read services, ${mode}`, () => {
    let w: World;
    before(async () => {
      w = await startWorld({ mode, serviceMode });
    });
    after(async () => {
      await w.close();
    });

    test('List shows the visible qubes only, sorted, columns allowlisted and redacted', async () => {
      const r = await w.call('qmcp.List');
      assert.equal(r.status, 0, r.stderr.toString());
      const { qubes, sinks } = json(r) as { qubes: Record<string, unknown>[]; sinks: unknown };
      assert.deepEqual(
        qubes.map((q) => q['name']),
        ['ai-dvm', 'ai-gw', 'ai-netq', 'ai-runner', 'ai-tpl', 'ai-viewer'],
      );
      // the sink a push reaches, by name only; the hybrid is seen as neither
      assert.deepEqual(sinks, ['drop']);
      for (const q of qubes) assert.deepEqual(Object.keys(q), ['name', 'class', 'state', 'label', 'template', 'netvm']);
      const byName = new Map(qubes.map((q) => [q['name'], q]));
      assert.deepEqual(byName.get('ai-viewer'), { name: 'ai-viewer', class: 'AppVM', state: 'Halted', label: 'blue', template: OUTSIDE, netvm: 'ai-gw' });
      assert.deepEqual(byName.get('ai-gw'), { name: 'ai-gw', class: 'AppVM', state: 'Halted', label: 'orange', template: 'ai-tpl', netvm: OUTSIDE });
      assert.deepEqual(byName.get('ai-tpl'), { name: 'ai-tpl', class: 'TemplateVM', state: 'Halted', label: 'gray', template: null, netvm: null });
      assertNoTierTags(r);
      assert.ok(!r.stdout.toString().includes('dom0'));
    });

    test('Info: allowlisted properties, every qube reference redacted, only the umbrella tag', async () => {
      const viewer = json(await w.call('qmcp.Info+ai-viewer')) as Record<string, unknown>;
      assert.equal(viewer['template'], OUTSIDE);
      assert.equal(viewer['netvm'], 'ai-gw');
      assert.equal(viewer['default_dispvm'], 'ai-dvm');
      assert.equal(viewer['guivm'], OUTSIDE, 'dom0 is outside the umbrella');
      assert.equal(viewer['audiovm'], OUTSIDE);
      assert.equal(viewer['management_dispvm'], null);
      assert.deepEqual(viewer['tags'], ['ai-managed']);
      assert.equal(viewer['state'], 'Halted');
      assert.ok(!('ip' in viewer) && !('visible_ip' in viewer) && !('uuid' in viewer) && !('qid' in viewer));
      assert.ok(!('auto_cleanup' in viewer), 'only where the class has it');

      const runner = json(await w.call('qmcp.Info+ai-runner')) as Record<string, unknown>;
      assert.equal(runner['default_dispvm'], OUTSIDE);
      assert.equal(runner['management_dispvm'], OUTSIDE);
      assert.equal(runner['netvm'], OUTSIDE);
      assert.equal(runner['template'], 'ai-tpl');
      assert.deepEqual(runner['tags'], ['ai-managed']);

      const dvm = json(await w.call('qmcp.Info+ai-dvm')) as Record<string, unknown>;
      assert.equal(dvm['guivm'], 'ai-gw');
      assert.equal(dvm['audiovm'], 'ai-gw');
      assert.equal(dvm['template_for_dispvms'], true);

      const tpl = json(await w.call('qmcp.Info+ai-tpl')) as Record<string, unknown>;
      assert.ok(!('template' in tpl) && !('template_for_dispvms' in tpl));
      assert.equal(tpl['updateable'], true);
      for (const q of ['ai-viewer', 'ai-runner', 'ai-netq', 'ai-gw', 'ai-dvm', 'ai-tpl']) assertNoTierTags(await w.call(`qmcp.Info+${q}`));
    });

    test('absent, outside, dom0, sink, incomplete and tombstone qubes get one byte-identical refusal', async () => {
      for (const service of ['qmcp.Info', 'qmcp.Start']) {
        for (const q of ['nosuch', 'vault', 'dom0', 'drop', 'ai-hybrid', 'ai-half', 'ai-gone', 'sys-net', 'mcp-control']) {
          assertRefused(await w.call(`${service}+${q}`), `${service}+${q}`);
        }
      }
      assert.equal(await power(w, 'ai-half'), 'Halted', 'an incomplete qube is never started');
      assert.equal(await power(w, 'vault'), 'Halted');
    });

    test('Start: exec tier starts, running again is success; read tier only in compat', async () => {
      const r = await w.call('qmcp.Start+ai-runner');
      assert.equal(r.status, 0, r.stderr.toString());
      assert.deepEqual(json(r), { name: 'ai-runner', state: 'Running' });
      assert.deepEqual(json(await w.call('qmcp.Start+ai-runner')), { name: 'ai-runner', state: 'Running' });
      const viewer = await w.call('qmcp.Start+ai-viewer');
      if (mode === 'compat') {
        assert.deepEqual(json(viewer), { name: 'ai-viewer', state: 'Running' });
      } else {
        assertRefused(viewer, 'read tier cannot start');
        assert.equal(await power(w, 'ai-viewer'), 'Halted');
        // below tier looks exactly like absent
        const absent = await w.call('qmcp.Start+nosuch');
        assert.deepEqual(viewer, absent);
      }
    });

    test('Start failure on a visible qube is actionable and says nothing else', async () => {
      const app = w.qubesd.app;
      const netq = app.get('ai-netq');
      assert.ok(netq);
      netq.features['prohibit-start'] = 'operator hold on /secret/path';
      try {
        const r = await w.call('qmcp.Start+ai-netq');
        assert.equal(r.status, 1);
        assert.deepEqual(json(r), { error: { code: 'start_failed', message: 'the qube could not be started' } });
        assert.equal(r.stderr.length, 0);
      } finally {
        delete netq.features['prohibit-start'];
      }
    });

    test('PoolFigures: umbrella private volumes, template roots and own tombstones against the cap', async () => {
      const r = await w.call('qmcp.PoolFigures');
      assert.equal(r.status, 0, r.stderr.toString());
      // 5 AppVMs x 2 GiB private + ai-tpl (2 GiB private + 10 GiB root) + own tombstone 2 GiB, and
      // ai-half: hidden while incomplete, but in the umbrella, so the create's budget check counts it too;
      // never the umbrella+sink hybrid, which is outside the agent's world
      const used = 5 * 2 * GiB + 12 * GiB + 2 * GiB + 2 * GiB;
      // the own tombstone apart; ai-half (incomplete, in the umbrella) is live
      assert.deepEqual(json(r), { used, live: used - 2 * GiB, tombstoned: 2 * GiB, cap: 40 * GiB, headroom: 40 * GiB - used });
      assert.deepEqual(Object.keys(json(r) as object), ['used', 'live', 'tombstoned', 'cap', 'headroom']);
    });

    test('DeviceList: devices of visible backends only, frontends redacted', async () => {
      assert.equal((await w.call('qmcp.Start+ai-gw')).status, 0);
      // an outside qube holds the visible backend's disk; outside backends' devices never show
      const app = w.qubesd.app;
      const vault = app.get('vault');
      assert.ok(vault);
      vault.power = 'Running';
      (vault.attached['block'] ??= []).push({ backend: 'ai-gw', port: 'xvdi', devid: 'disk1', mode: 'manual', options: {} });
      const sysNet = app.get('sys-net');
      assert.ok(sysNet);
      sysNet.power = 'Running';
      const r = await w.call('qmcp.DeviceList');
      assert.equal(r.status, 0);
      assert.deepEqual(json(r), {
        devices: [{ class: 'block', backend: 'ai-gw', port: 'xvdi', device_id: 'disk1', description: 'scratch disk', attached_to: OUTSIDE }],
      });
      assert.ok(!r.stdout.toString().includes('Operator'));
    });

    test('malformed arguments and payloads are refused uniformly and change nothing', async () => {
      const before = await power(w, 'ai-dvm');
      const cases: [string, string | Buffer][] = [
        ['qmcp.List+x', ''],
        ['qmcp.List', '{}'],
        ['qmcp.PoolFigures', '{"a":'],
        ['qmcp.DeviceList', Buffer.from([0])],
        ['qmcp.Info', ''],
        ['qmcp.Info+ai-dvm', 'x'],
        ['qmcp.Info+ai-dvm+x', ''],
        ['qmcp.Start+ai-dvm', '{"force":true}'],
        ['qmcp.Start+ai-dvm', Buffer.alloc(70 * 1024, 0x41)],
        ['qmcp.Start+ai-dvm', '\x1b[2J\x07'],
        ['qmcp.Start+..', ''],
        ['qmcp.Start+-ai-dvm', ''],
        ['qmcp.Start+ai-dvm.', ''],
        ['qmcp.Start+@anyvm', ''],
        ['qmcp.Start+a@b', ''],
        ['qmcp.Start+' + 'a'.repeat(40), ''],
        ['qmcp.Start+ai-dvm-dm', ''],
        ['qmcp.Nothing', ''],
      ];
      for (const [service, payload] of cases) assertRefused(await w.call(service, payload), `${service} ${JSON.stringify(String(payload).slice(0, 20))}`);
      assert.equal(await power(w, 'ai-dvm'), before);
    });

    test('a caller other than the principal is refused, even from inside the umbrella', async () => {
      assertRefused(await w.call('qmcp.List', '', 'ai-viewer'), 'umbrella qube as caller');
      assertRefused(await w.call('qmcp.List', '', 'vault'), 'outside qube as caller');
    });

    test('Start is audited with intent and outcome; refusals are audited', async () => {
      const log = await readFile(join(w.dir, 'dom0', 'var', 'log', 'qmcp', 'audit.log'), 'utf8');
      const entries = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const starts = entries.filter((e) => e['operation'] === 'start' && (e['qubes'] as string[]).includes('ai-runner'));
      assert.ok(starts.some((e) => e['kind'] === 'intent'));
      assert.ok(starts.some((e) => e['kind'] === 'outcome' && e['result'] === 'ok'));
      assert.ok(entries.some((e) => e['kind'] === 'refusal'));
      assert.ok(!entries.some((e) => e['operation'] === 'list' && e['kind'] === 'intent'), 'reads write no intent');
    });

    test('unusable settings refuse every call the same way (runs last: it breaks the settings)', async () => {
      await writeFile(join(w.dir, 'dom0', 'etc', 'qmcp', 'settings.json'), '{"principal": 7');
      for (const c of ['qmcp.List', 'qmcp.Info+ai-viewer', 'qmcp.PoolFigures']) assertRefused(await w.call(c), c);
    });
  });
}
