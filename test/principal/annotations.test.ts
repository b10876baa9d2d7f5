/**
 * What each tool tells a client, and what it really calls, against
 * expectations written here from what each operation does, not read from
 * the model: a client that auto-approves non-destructive tools must never
 * approve one that can lose the agent's work or widen what a qube is
 * exposed to, and a tool must call the service of its own operation (or,
 * when composed, of the operations it is made of).
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, type ToolAnnotations } from '@modelcontextprotocol/server';
import { dom0Call } from '../../src/principal/calls.js';
import { closeEventStreams } from '../../src/principal/events/streams.js';
import { annotationsFor } from '../../src/principal/operations.js';
import { QrexecAborted, QrexecRunner, type QrexecCall, type QrexecOutcome } from '../../src/principal/qrexec.js';
import { createServer } from '../../src/principal/server.js';
import { runTool, type ToolSpec } from '../../src/principal/tool.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { OPERATIONS, operation, type Operation } from '../../src/shared/model/capabilities.js';
import { COMPOSITIONS, composition, type Effects } from '../../src/shared/model/compositions.js';

/** What an operation does: reads only, can lose something, can widen exposure, is idempotent, reaches outside. */
interface Expected {
  readonly reads: boolean;
  readonly loses: boolean;
  readonly widens: boolean;
  readonly idempotent: boolean;
  readonly openWorld: boolean;
}

const READS: Expected = { reads: true, loses: false, widens: false, idempotent: true, openWorld: false };
const sets = (loses: boolean, widens: boolean): Expected => ({ reads: false, loses, widens, idempotent: true, openWorld: false });
const adds = (loses: boolean, widens: boolean, openWorld = false): Expected => ({ reads: false, loses, widens, idempotent: false, openWorld });

const EXPECTED: Readonly<Record<string, Expected>> = {
  list: READS,
  info: READS,
  state: READS,
  'firewall.get': READS,
  'device.list': READS,
  'pool.figures': READS,
  'tombstone.list': READS,
  events: READS,
  // root in the qube: it can wipe anything there, and the command may reach the network
  run: adds(true, false, true),
  // it creates and kills only its own disposable
  'run.disposable': adds(false, false, true),
  'file.write': sets(true, false),
  'file.read': READS,
  'dir.list': READS,
  'file.stat': READS,
  // a background run is a run
  'job.start': adds(true, false, true),
  'job.output': READS,
  // it only waits: the job ends by itself or by job_kill
  'job.wait': READS,
  // it ends the job's processes, which may hold unsaved state
  'job.kill': sets(true, false),
  'job.list': READS,
  copy: adds(false, true),
  // a new job: a live channel from the source, which may have network, to the target's port
  'port.forward': adds(false, true),
  start: sets(false, false),
  // the qube lives longer; nothing in it changes
  renew: sets(false, false),
  shutdown: sets(true, false),
  kill: sets(true, false),
  'firewall.set': sets(true, true),
  'firewall.reload': sets(false, false),
  pause: sets(false, false),
  unpause: sets(false, false),
  remove: sets(true, false),
  // the qube comes back as it was, already counted in the budget
  'tombstone.restore': adds(false, false),
  // one more revision kept; nothing in the qube changes
  checkpoint: sets(false, false),
  // what the private volume gained since the checkpoint
  revert: sets(true, false),
  'property.set': sets(true, false),
  'feature.set': sets(true, true),
  create: adds(false, false),
  'create.disptemplate': adds(false, false),
  disposable: adds(false, false),
  clone: adds(false, false),
  'device.attach': sets(false, true),
  'device.detach': sets(true, false),
  // a plan is kept for the operator; nothing on the machine changes until the operator runs it
  'plan.submit': adds(false, false),
  'plan.status': READS,
};

/** Where the model's rows disagree with the expectations, one line each. */
function modelProblems(rows: readonly (Effects & { id: string })[]): string[] {
  const problems: string[] = [];
  for (const row of rows) {
    const e = EXPECTED[row.id];
    if (e === undefined) {
      problems.push(`${row.id}: no expectation written in this test`);
      continue;
    }
    const got: Expected = { reads: row.readOnly, loses: row.loses !== null, widens: row.widens !== null, idempotent: row.idempotent, openWorld: row.openWorld };
    if (JSON.stringify(got) !== JSON.stringify(e)) problems.push(`${row.id}: the model says ${JSON.stringify(got)}`);
  }
  for (const id of Object.keys(EXPECTED)) if (!rows.some((r) => r.id === id)) problems.push(`${id}: expected, but not in the model`);
  return problems;
}

/** Where tools' annotations disagree with their operations' expectations, one line each. */
function annotationProblems(listed: readonly { name: string; annotations?: ToolAnnotations | undefined }[]): string[] {
  const problems: string[] = [];
  for (const tool of listed) {
    const spec = TOOLS.find((t) => t.name === tool.name);
    const e = spec === undefined ? undefined : EXPECTED[spec.operation];
    if (e === undefined) {
      problems.push(`${tool.name}: no expectation for its operation`);
      continue;
    }
    const want = { readOnlyHint: e.reads, destructiveHint: e.loses || e.widens, idempotentHint: e.idempotent, openWorldHint: e.openWorld };
    const a = tool.annotations ?? {};
    const got = { readOnlyHint: a.readOnlyHint, destructiveHint: a.destructiveHint, idempotentHint: a.idempotentHint, openWorldHint: a.openWorldHint };
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${tool.name}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  }
  return problems;
}

async function listedTools(): Promise<{ name: string; annotations?: ToolAnnotations | undefined }[]> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await createServer(new QrexecRunner({ client: '/nonexistent' })).connect(serverSide);
  const client = new Client({ name: 'test', version: '0' });
  await client.connect(clientSide);
  const { tools } = await client.listTools();
  await client.close();
  return tools;
}

/** A valid input for each tool, enough for it to make its calls. */
const SAMPLES: Readonly<Record<string, Record<string, unknown>>> = {
  qube_list: {},
  qube_info: { qube: 'ai-a' },
  qube_state: { qube: 'ai-a' },
  firewall_get: { qube: 'ai-a' },
  device_list: {},
  pool_figures: {},
  tombstone_list: {},
  events_poll: { wait_seconds: 1 },
  qube_run: { qube: 'ai-a', argv: ['true'] },
  qube_run_disposable: { disposable_template: 'ai-dvm', name: 'ai-x', argv: ['true'] },
  qube_write_file: { qube: 'ai-a', path: '/tmp/x', content: 'x' },
  qube_read_file: { qube: 'ai-a', path: '/tmp/x' },
  qube_list_dir: { qube: 'ai-a', path: '/tmp' },
  qube_stat: { qube: 'ai-a', path: '/tmp/x' },
  job_output: { qube: 'ai-a', job: '0123456789ab' },
  job_wait: { qube: 'ai-a', job: '0123456789ab', timeout_seconds: 0 },
  job_kill: { qube: 'ai-a', job: '0123456789ab' },
  job_list: { qube: 'ai-a' },
  qube_copy: { source: 'ai-a', target: 'ai-b', paths: ['/tmp/x'] },
  qube_port_forward: { from: 'ai-a', to: 'ai-b', remote_port: 8080 },
  qube_start: { qube: 'ai-a' },
  qube_renew: { qube: 'ai-a', seconds: 60 },
  qube_shutdown: { qube: 'ai-a' },
  qube_kill: { qube: 'ai-a' },
  firewall_set: { qube: 'ai-a', rules: ['action=drop'] },
  firewall_reload: { qube: 'ai-a' },
  qube_pause: { qube: 'ai-a' },
  qube_unpause: { qube: 'ai-a' },
  qube_remove: { qube: 'ai-a' },
  tombstone_restore: { qube: 'ai-a' },
  qube_checkpoint: { qube: 'ai-a' },
  qube_revert: { qube: 'ai-a' },
  qube_set_property: { qube: 'ai-a', property: 'memory', value: 400 },
  qube_set_feature: { qube: 'ai-a', feature: 'x', value: 'y' },
  qube_create: { name: 'ai-n', template: 'ai-t' },
  qube_create_disposable_template: { name: 'ai-n', template: 'ai-t' },
  qube_create_disposable: { name: 'ai-n', disposable_template: 'ai-dvm' },
  qube_clone: { name: 'ai-n', source: 'ai-a' },
  device_attach: { qube: 'ai-a', devclass: 'usb', backend: 'ai-b', port: '2-1' },
  device_detach: { qube: 'ai-a', devclass: 'usb', backend: 'ai-b', port: '2-1' },
  plan_submit: { purpose: 'p', steps: [{ tool: 'qube_start', arguments: { qube: 'ai-a' } }] },
  plan_status: { plan: '1' },
};

/**
 * Records every call instead of running qrexec-client-vm, and answers it
 * with an empty success of its kind (or the refusal, for the service named
 * `refuse`), so a composed tool goes on to its next step. An event window
 * stays open until its caller aborts it, as a real one does.
 */
class RecordingRunner extends QrexecRunner {
  readonly calls: QrexecCall[] = [];

  constructor(private readonly refuse: string | null) {
    super({ client: '/nonexistent' });
  }

  override call(c: QrexecCall): Promise<QrexecOutcome> {
    this.calls.push(c);
    if (c.service === this.refuse) return Promise.resolve({ kind: 'refused' });
    if (c.service === 'qmcp.Events') {
      return new Promise((_resolve, reject) => {
        if (c.signal?.aborted === true) reject(new QrexecAborted());
        c.signal?.addEventListener('abort', () => reject(new QrexecAborted()), { once: true });
      });
    }
    const stdout = c.target === '@adminvm' ? '{}' : c.service.startsWith('admin.') ? '0\0' : '';
    return Promise.resolve({ kind: 'exited', status: 0, stdout: Buffer.from(stdout, 'latin1') });
  }
}

/** The calls one run of SPEC makes, with REFUSE refused. */
async function callsOf(spec: ToolSpec, refuse: string | null): Promise<QrexecCall[]> {
  const runner = new RecordingRunner(refuse);
  const input = SAMPLES[spec.name];
  assert.ok(input, `${spec.name}: no sample input in this test`);
  await runTool(spec, spec.input.parse(input), { qrexec: runner, signal: new AbortController().signal });
  await closeEventStreams(runner);
  return runner.calls;
}

/**
 * Where tools call something other than their operation's service (or their
 * composition's operations' services), one line each. Each tool runs once
 * answered, then once with each service it called refused, so every branch
 * of a composed tool is taken.
 */
async function serviceProblems(tools: readonly ToolSpec[], ops: readonly Operation[] = OPERATIONS): Promise<string[]> {
  const problems: string[] = [];
  for (const spec of tools) {
    const ids = composition(spec.operation)?.operations ?? [spec.operation];
    const want = new Set(ids.map((id) => operation(id, ops).service));
    const first = await callsOf(spec, null);
    const calls = [...first];
    for (const refused of new Set(first.map((c) => c.service))) calls.push(...(await callsOf(spec, refused)));
    const got = new Set(calls.map((c) => c.service));
    if ([...got].sort().join() !== [...want].sort().join()) problems.push(`${spec.name} calls ${[...got].join(', ') || 'nothing'}, not ${[...want].join(', ')}`);
    for (const c of calls) {
      const op = ops.find((o) => o.service === c.service);
      if (op !== undefined && (c.target === '@adminvm') !== (op.target === 'dom0-service')) problems.push(`${spec.name} calls ${c.service} at ${c.target}`);
    }
  }
  return problems;
}

describe('annotations', () => {
  it('every row of the model does what this test expects of its operation', () => {
    assert.deepEqual(modelProblems([...OPERATIONS, ...COMPOSITIONS]), []);
  });

  it('every tool, as a client lists it, carries the annotations its operation calls for', async () => {
    const listed = await listedTools();
    assert.equal(listed.length, TOOLS.length);
    assert.deepEqual(annotationProblems(listed), []);
  });

  it('a model row that hides what kill loses is caught, in the model and in the annotations', () => {
    const weak = OPERATIONS.map((o) => (o.id === 'kill' ? { ...o, loses: null, destructive: o.widens !== null } : o));
    assert.deepEqual(modelProblems([...weak, ...COMPOSITIONS]), ['kill: the model says {"reads":false,"loses":false,"widens":false,"idempotent":true,"openWorld":false}']);
    const listed = TOOLS.map((t) => ({ name: t.name, annotations: annotationsFor(t.operation, t.title, weak) }));
    assert.deepEqual(annotationProblems(listed), [
      'qube_kill: {"readOnlyHint":false,"destructiveHint":false,"idempotentHint":true,"openWorldHint":false}, expected {"readOnlyHint":false,"destructiveHint":true,"idempotentHint":true,"openWorldHint":false}',
    ]);
  });
});

describe('services', () => {
  it('every tool calls the service of its operation, or of each operation it is made of, at the right target', async () => {
    assert.deepEqual(await serviceProblems(TOOLS), []);
  });

  it('a tool that calls another operation than its own is caught', async () => {
    const start = TOOLS.find((t) => t.name === 'qube_start');
    assert.ok(start);
    const wrong: ToolSpec = { ...start, run: (input: { qube: string }, ctx) => dom0Call(ctx, 'info', input.qube) };
    assert.deepEqual(await serviceProblems([wrong]), ['qube_start calls qmcp.Info, not qmcp.Start']);
  });

  it('a composed tool that leaves out a step of its composition is caught', async () => {
    const oneShot = TOOLS.find((t) => t.name === 'qube_run_disposable');
    assert.ok(oneShot);
    const skipping: ToolSpec = { ...oneShot, run: (input: { disposable_template: string; name: string }, ctx) => dom0Call(ctx, 'disposable', input.disposable_template, { name: input.name }) };
    const [problem] = await serviceProblems([skipping]);
    assert.match(problem ?? '', /^qube_run_disposable calls qmcp\.CreateDisposable, not /);
  });
});

test('every operation and composition says why it is or is not destructive, and reads are neither', () => {
  for (const fx of [...OPERATIONS, ...COMPOSITIONS]) {
    assert.equal(fx.destructive, fx.loses !== null || fx.widens !== null, fx.id);
    for (const text of [fx.loses, fx.widens]) assert.ok(text === null || /\w{3}/.test(text), `${fx.id}: a reason in words`);
    if (fx.readOnly) assert.deepEqual([fx.loses, fx.widens], [null, null], `${fx.id} is read-only`);
  }
});
