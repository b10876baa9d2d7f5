/**
 * What the agent observes beyond single raw calls: an event window that
 * stays open while the operator works outside the agent's world and the
 * agent works inside it, and the MCP server's tool list and results.
 */
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { simRunner } from '../../src/cli/sim-principal.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { notificationsFor } from '../../src/principal/resources.js';
import { createServer } from '../../src/principal/server.js';
import { PRINCIPAL } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import type { Call, Observation } from './calls.js';
import { asExecutable } from './calls.js';
import type { Machine } from './machines.js';
import { OUTSIDE_TOMBSTONES, WORLD } from './machines.js';

/**
 * Window lengths tried in turn: a window counts only if every act's row came
 * through in it, the marker's (set by dom0 after every act) included, or it
 * is tried again, longer (a loaded machine is slower, never a failure),
 * the last ones near the longest window dom0 serves (60 s, less the live
 * sessions' 2 s more).
 */
export const WINDOW_SECONDS: readonly number[] = [6, 15, 40, 58, 58];

/**
 * The marker's qube: the first of the agent's world still visible, which is
 * the same qube on both machines (they differ only outside it); none when
 * the calls removed them all, and then a window counts as it is.
 */
export function markerQube(m: Machine): string | undefined {
  const visible = (tags: readonly string[]): boolean => tags.includes('ai-managed') && !tags.includes('ai-dump') && !tags.some((t) => t.startsWith('qmcp-'));
  return [...WORLD].sort().find((name) => visible(m.host.qubesd.app.get(name)?.tags ?? []));
}

/** What the agent does inside the window: the same on both machines. */
const START_ACT: Call = { seat: PRINCIPAL, target: '@adminvm', service: qrexecService('start', 'ai-execbox'), payload: '' };
const AGENT_ACTS: readonly Call[] = [{ seat: PRINCIPAL, target: '@adminvm', service: qrexecService('property.set', 'ai-peer'), payload: JSON.stringify({ name: 'memory', value: 700 }) }, START_ACT];

/** What the operator does in dom0 inside the window: different on each machine, all outside the agent's world. */
async function operatorActs(m: Machine, dom0: Qubesd): Promise<void> {
  const has = (n: string): boolean => m.outside.includes(n);
  if (m.label === 'A') {
    if (has('vault')) await dom0.call('admin.vm.property.Set', 'vault', 'label', 'purple');
    return;
  }
  const late = 'late-op';
  await dom0.call('admin.vm.Create.AppVM', 'dom0', 'debian', `name=${late} label=red`);
  await dom0.call('admin.vm.tag.Set', late, 'work');
  await dom0.call('admin.vm.property.Set', late, 'memory', '500');
  await dom0.call('admin.vm.Start', late);
  await dom0.call('admin.vm.Kill', late);
  await dom0.call('admin.vm.Remove', late);
  if (has('ops-dvm')) await dom0.call('admin.vm.property.Set', 'ops-dvm', 'label', 'green');
}

/** Resolves at the next admin.Events subscription on the machine's qubesd (the window is open). */
export function nextSubscription(m: Machine): Promise<void> {
  const app = m.host.qubesd.app;
  const real = app.subscribe.bind(app);
  return new Promise((resolve) => {
    app.subscribe = (fn) => {
      app.subscribe = real;
      const off = real(fn);
      resolve();
      return off;
    };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The times in event rows differ by design; nothing else may. */
export function normaliseEvents(text: string): string {
  return text.replace(/"time":"[^"]*"/g, '"time":"-"');
}

/** A row of the agent's world that an act in a window must bring into it. */
export interface ActRow {
  readonly qube: string;
  readonly event: string;
}

/** Whether ROWS hold every one of WANTED. */
export function holdsEvery(rows: readonly ActRow[], wanted: readonly ActRow[]): boolean {
  return wanted.every((w) => rows.some((r) => r.qube === w.qube && r.event === w.event));
}

/** The rows of an event window's reply, its first line (dom0 calls the qube the subject); none when it is not one. */
function windowRows(stdout: string): ActRow[] {
  try {
    const body = JSON.parse(stdout.split('\n', 1)[0] ?? '') as { events?: { event: string; subject: string }[] };
    return (body.events ?? []).map((r) => ({ qube: r.subject, event: r.event }));
  } catch {
    return [];
  }
}

export interface WindowResult {
  readonly observation: Observation;
  /** The rows the acts made: the agent's changes and the marker, the same on both machines. */
  readonly acts: readonly ActRow[];
  /** Some act's row did not come through: the comparison would say nothing. */
  readonly late: boolean;
}

/** One event window on one machine, with the agent's and the operator's acts inside it. */
export async function eventWindow(m: Machine, call: (m: Machine, c: Call) => Promise<Observation>, seconds: number): Promise<WindowResult> {
  const opened = nextSubscription(m);
  const windowCall: Call = { seat: PRINCIPAL, target: '@adminvm', service: qrexecService('events', String(seconds)), payload: '' };
  const window = call(m, windowCall);
  // a window that ends without subscribing (refused) is compared as it is
  await Promise.race([opened, window]);
  await sleep(300);
  const dom0 = new Qubesd(m.host.qubesd.socketPath);
  await operatorActs(m, dom0);
  const acts: ActRow[] = [];
  const app = m.host.qubesd.app;
  for (const act of AGENT_ACTS) {
    const [qube, halted] = act === START_ACT ? ['ai-execbox', app.get('ai-execbox')?.power !== 'Running'] : ['ai-peer', false];
    // a refusal or an error changes nothing (read as the executable answers: a resident refusal's raw status is 0); a start of a running qube neither
    const o = asExecutable(act, await call(m, act));
    if (o.status !== 0 || o.stdout.includes('"error"')) continue;
    if (act !== START_ACT) acts.push({ qube, event: 'property-changed' });
    else if (halted) acts.push({ qube, event: 'started' });
  }
  const marker = markerQube(m);
  if (marker !== undefined) {
    await dom0.call('admin.vm.property.Set', marker, 'label', 'purple');
    acts.push({ qube: marker, event: 'property-changed' });
  }
  const o = await window;
  // a refused window has no events to miss: it is compared as it is
  const late = asExecutable(windowCall, o).status === 0 && !holdsEvery(windowRows(o.stdout), acts);
  return { observation: { ...o, stdout: normaliseEvents(o.stdout) }, acts, late };
}

/** The MCP tool calls compared: reads and refusals over visible, outside and absent names. */
export function mcpCalls(outside: readonly string[]): { name: string; arguments: Record<string, unknown> }[] {
  const names = ['ai-box', 'ai-read', ...outside.slice(0, 4), 'ai-nothing'];
  return [
    { name: 'qube_list', arguments: {} },
    { name: 'pool_figures', arguments: {} },
    { name: 'device_list', arguments: {} },
    ...names.flatMap((name) => [
      { name: 'qube_info', arguments: { qube: name } },
      { name: 'qube_state', arguments: { qube: name } },
      { name: 'firewall_get', arguments: { qube: name } },
    ]),
    ...['ai-box', ...outside.slice(0, 2)].map((qube) => ({ name: 'qube_run', arguments: { qube, argv: ['id', '-u'] } })),
    { name: 'qube_start', arguments: { qube: outside[0] ?? 'ai-nothing' } },
    { name: 'tombstone_list', arguments: {} },
    ...[...Object.keys(OUTSIDE_TOMBSTONES), 'ai-nothing'].map((qube) => ({ name: 'tombstone_restore', arguments: { qube } })),
  ];
}

/**
 * The qube resources compared: the list, and reads of visible, outside and
 * absent names, each as the client sees it (a result, or the error's code,
 * message and data).
 */
export function resourceReads(outside: readonly string[]): [string, (c: Client) => Promise<string>][] {
  const settle = async (p: Promise<unknown>): Promise<string> => {
    try {
      return JSON.stringify(await p);
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown; data?: unknown };
      return JSON.stringify({ code: err.code, message: err.message, data: err.data });
    }
  };
  const names = ['ai-box', 'ai-read', ...outside.slice(0, 4), 'ai-nothing'];
  return [
    ['resources/list', (c) => settle(c.listResources())],
    ['resources/templates/list', (c) => settle(c.listResourceTemplates())],
    ...names.map((n): [string, (c: Client) => Promise<string>] => [`resources/read qube://${n}`, (c) => settle(c.readResource({ uri: `qube://${n}` }))]),
  ];
}

/**
 * The resource notifications a live session subscribed to every name
 * compared would be sent for one window's rows (principal/resources.ts):
 * compared beside the rows themselves.
 */
export function windowNotifications(stdout: string, outside: readonly string[]): string {
  let body: { events?: { event: string; subject: string; class: string | null; time: string }[]; truncated?: boolean };
  try {
    // the first line: a resident service's reply ends with its status after it
    body = JSON.parse(stdout.split('\n', 1)[0] ?? '') as typeof body;
  } catch {
    return 'unreadable';
  }
  const rows = (body.events ?? []).map((r) => ({ event: r.event, qube: r.subject, class: r.class, time: r.time }));
  return JSON.stringify(notificationsFor(rows, body.truncated === true, new Set(['ai-box', 'ai-read', ...outside, 'ai-nothing'])));
}

/** An MCP client on the real server, whose qrexec calls reach the machine as its principal. */
export async function mcpClient(m: Machine): Promise<{ client: Client; close(): Promise<void> }> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  const server = createServer(simRunner(m.dir));
  await server.connect(serverSide);
  const client = new Client({ name: 'qmcp-verify', version: '0' });
  await client.connect(clientSide);
  return {
    client,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}
