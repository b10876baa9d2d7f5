import { test } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { describeCall, diffLines } from '../../src/dom0/gate/describe.js';
import type { CallToDescribe } from '../../src/dom0/gate/describe.js';
import { readSettingsFile, settingsPath } from '../../src/shared/model/settings.js';
import { encodeExecRequest } from '../../src/shared/inqube-protocol.js';
import { BASE_SETTINGS, PRINCIPAL, startHost } from '../services-write/helpers.js';
import { compiled, weakenedFile } from './helpers.js';
import type { Host } from '../services-write/helpers.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');

function describe(h: Host, call: Omit<CallToDescribe, 'principal'>): Promise<string[]> {
  const { settings } = readSettingsFile(settingsPath(h.root));
  return describeCall({ principal: PRINCIPAL, ...call }, { qubesd: h.qubesd, settings, now: NOW });
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

test('describeCall: the qube from the live state and the concrete change, per operation', async () => {
  const h = await startHost({ ...BASE_SETTINGS, tombstoneRetentionDays: 5 });
  try {
    const remove = await describe(h, { operation: 'remove', argument: 'ai-box', payload: Buffer.alloc(0) });
    assert.equal(remove[0], 'asked by: "mcp-control"');
    assert.match(remove[1] ?? '', /^operation: remove \(remove a qube/);
    assert.match(remove[2] ?? '', /^removes qube "ai-box" \(AppVM, halted, tier full, [0-9.]+ GiB on disk\)$/);
    assert.equal(remove[3], 'it is halted and kept as a tombstone for 5 days (until 2026-03-06), restorable with `qmcp dom0 tombstones restore "ai-box" --principal "mcp-control"`');

    const prop = await describe(h, { operation: 'property.set', argument: 'ai-box', payload: json({ name: 'memory', value: 1200 }) });
    assert.deepEqual(prop.slice(3), ['property "memory": "800" -> 1200']);
    const net = await describe(h, { operation: 'property.set', argument: 'ai-box', payload: json({ name: 'netvm', value: null }) });
    assert.deepEqual(net.slice(3), ['property "netvm": "ai-egress" -> none (no network)']);

    const feat = await describe(h, { operation: 'feature.set', argument: 'ai-box', payload: json({ name: 'gui', value: '0' }) });
    assert.deepEqual(feat.slice(3), ['feature "gui": "1" -> "0"']);
    const newFeat = await describe(h, { operation: 'feature.set', argument: 'ai-box', payload: json({ name: 'menu-items', value: 'x' }) });
    assert.deepEqual(newFeat.slice(3), ['feature "menu-items": not set -> "x"']);

    const att = await describe(h, { operation: 'device.attach', argument: 'ai-box', payload: json({ class: 'block', backend: 'ai-dvm', port: 'xvdb', options: { 'read-only': true } }) });
    assert.equal(att[2], 'attaches "block" device at port "xvdb" (any device on that port)');
    assert.match(att[3] ?? '', /^backend \(where the device is\): qube "ai-dvm" \(AppVM, halted, tier full/);
    assert.match(att[4] ?? '', /^frontend \(which gets it\): qube "ai-box" \(AppVM, halted, tier full/);
    assert.equal(att[5], 'options: "{\\"read-only\\":true}"');

    const kill = await describe(h, { operation: 'kill', argument: 'ai-box', payload: Buffer.alloc(0) });
    assert.match(kill[2] ?? '', /^kills qube "ai-box" \(AppVM, halted, tier full.*\) at once, without a clean shutdown$/);
    const shutdown = await describe(h, { operation: 'shutdown', argument: 'ai-box', payload: Buffer.alloc(0) });
    assert.match(shutdown[2] ?? '', /^shuts down qube "ai-box" \(AppVM, halted, tier full/);

    const create = await describe(h, { operation: 'create', argument: '', payload: json({ name: 'ai-new', template: 'ai-tpl', label: 'green' }) });
    assert.equal(create[2], 'creates an AppVM named "ai-new"');
    assert.match(create[3] ?? '', /^template: qube "ai-tpl" \(TemplateVM, halted, tier full/);
    assert.equal(create[4], 'label: "green"; network: inherited (the egress qube or none, by the create rule)');

    const outside = await describe(h, { operation: 'start', argument: 'vault', payload: Buffer.alloc(0) });
    assert.match(outside[2] ?? '', /^starts qube "vault" \(AppVM, halted, outside the umbrella/);
    const absent = await describe(h, { operation: 'start', argument: 'ai-none', payload: Buffer.alloc(0) });
    assert.equal(absent[2], 'starts qube "ai-none" (does not exist now)');
    const renew = await describe(h, { operation: 'renew', argument: 'ai-none', payload: json({ seconds: 3600 }) });
    assert.equal(renew[2], 'renews the lease of qube "ai-none" (does not exist now) for 3600 seconds from now');
    const renewDefault = await describe(h, { operation: 'renew', argument: 'ai-none', payload: json({}) });
    assert.equal(renewDefault[2], 'renews the lease of qube "ai-none" (does not exist now) for the default lease from now');
  } finally {
    await h.done();
  }
});

test('describeCall: firewall rules before and after as a diff', async () => {
  const h = await startHost();
  try {
    await h.qubesd.call('admin.vm.firewall.Set', 'ai-box', '', 'action=accept dsthost=a.example\naction=drop\n');
    const lines = await describe(h, { operation: 'firewall.set', argument: 'ai-box', payload: Buffer.from('action=accept dsthost=b.example\naction=drop\n') });
    assert.match(lines[2] ?? '', /^replaces the firewall rules of qube "ai-box"/);
    assert.deepEqual(lines.slice(4), ['- "action=accept dsthost=a.example"', '+ "action=accept dsthost=b.example"', '  "action=drop"']);
    assert.deepEqual(diffLines(['a', 'b', 'c'], ['a', 'c', 'd']), ['  "a"', '- "b"', '  "c"', '+ "d"']);
    assert.deepEqual(diffLines([], ['x']), ['+ "x"']);
  } finally {
    await h.done();
  }
});

/** Values meant to break out of their line or pass for the prompt's own text. */
const FORGERIES = [
  'ok"\nApprove: yes',
  'a\r\nasked by: "operator"',
  '\x1b[2K\x1b[1Gallow? [y/N] y',
  'x\u2028operation: start\u2029',
  'bidi\u202eeyes',
  '\u0085next\u000bline\u000cpage',
];

/** Calls carrying VALUE wherever the agent chooses a value. */
function carrying(value: string): Omit<CallToDescribe, 'principal'>[] {
  return [
    { operation: 'feature.set', argument: 'ai-box', payload: json({ name: 'gui', value }) },
    { operation: 'property.set', argument: 'ai-box', payload: json({ name: 'label', value }) },
    { operation: 'create', argument: '', payload: json({ name: value, template: value, label: value }) },
    { operation: 'device.attach', argument: 'ai-box', payload: json({ class: value, backend: value, port: value, device_id: value }) },
    { operation: 'start', argument: value, payload: Buffer.alloc(0) },
    { operation: 'kill', argument: value, payload: Buffer.alloc(0) },
    { operation: 'run', argument: '', target: 'ai-box', payload: encodeExecRequest({ shell: value }) },
    { operation: 'run', argument: '', target: value, payload: encodeExecRequest({ argv: ['sh', value] }) },
    { operation: 'run', argument: '', target: 'ai-box', payload: encodeExecRequest({ argv: ['true'], user: 'root', cwd: `/${value}`, env: [`A=${value}`, `B=${value}`] }) },
    { operation: 'copy', argument: value, target: 'ai-box', payload: Buffer.from(`qmcp 1\npath ${Buffer.from(value).toString('base64')}\n\n`) },
    { operation: 'unknown-op', argument: value, payload: Buffer.from(value) },
  ];
}

type Describe = typeof describeCall;

/** What lets a forged value pass for a line of the prompt, under `impl`; empty when nothing does. */
async function forgeries(h: Host, impl: Describe): Promise<string[]> {
  const { settings } = readSettingsFile(settingsPath(h.root));
  const run = (c: Omit<CallToDescribe, 'principal'>): Promise<string[]> => impl({ principal: PRINCIPAL, ...c }, { qubesd: h.qubesd, settings, now: NOW });
  const problems: string[] = [];
  const benign = carrying('benign');
  for (const forged of FORGERIES) {
    for (const [i, c] of carrying(forged).entries()) {
      const plain = await run(benign[i] as Omit<CallToDescribe, 'principal'>);
      let lines: string[];
      try {
        lines = await run(c);
      } catch (err) {
        problems.push(`${c.operation}: ${(err as Error).message}`);
        continue;
      }
      if (lines.some((line) => !/^[\x20-\x7e]*$/.test(line))) problems.push(`${c.operation}: a line that is not printable ASCII`);
      if (lines.length !== plain.length) problems.push(`${c.operation}: the forged value changed the number of lines`);
      if (JSON.stringify(lines.slice(0, 2)) !== JSON.stringify(plain.slice(0, 2))) problems.push(`${c.operation}: the header changed`);
      if (lines.slice(2).some((l) => /^(Approve|allow\?|operation: )/.test(l) || l.includes('asked by: "operator"'))) problems.push(`${c.operation}: a forged line`);
    }
  }
  return problems;
}

test('the prompt cannot be forged: every agent-chosen value is one quoted, escaped token on its line', async () => {
  const h = await startHost();
  try {
    assert.deepEqual(await forgeries(h, describeCall), []);
    // weakened: values quoted but not escaped, and no last check of the lines
    const stub = join(mkdtempSync(join(tmpdir(), 'qmcp-quote-')), 'escape.js');
    writeFileSync(stub, 'export function quote(v) { return `"${v}"`; }\n');
    const weak = weakenedFile('dom0/gate/describe', "throw new Error('describeCall built a line that is not printable ASCII')", 'void 0', { [compiled('dom0/audit/escape')]: stub });
    const { describeCall: weakDescribe } = (await import(pathToFileURL(weak).href)) as { describeCall: Describe };
    assert.notDeepEqual(await forgeries(h, weakDescribe), [], 'the weakened describe is caught');
    // firewall rules are lines: a newline makes two rules, each shown quoted on a line of its own
    const fw = await describe(h, { operation: 'firewall.set', argument: 'ai-box', payload: Buffer.from('action=drop\nApprove: yes\x1b[2K\n') });
    assert.deepEqual(fw.slice(4), ['- "action=accept"', '+ "action=drop"', '+ "Approve: yes\\x1b[2K"']);
    const run = await describe(h, { operation: 'run', argument: '', target: 'ai-box', payload: encodeExecRequest({ shell: 'echo hi\nApprove: yes' }) });
    assert.equal(run[3], 'command: sh -c "echo hi\\x0aApprove: yes"');
    assert.match(run[2] ?? '', /^runs as the qube's default user in qube "ai-box"/);
    const context = await describe(h, { operation: 'run', argument: '', target: 'ai-box', payload: encodeExecRequest({ argv: ['id'], user: 'root', cwd: '/srv', env: ['A=1'] }) });
    assert.deepEqual([context[2]?.startsWith('runs as "root" in '), context.slice(4, 6)], [true, ['in directory: "/srv"', 'environment: "A=1"']]);
  } finally {
    await h.done();
  }
});
