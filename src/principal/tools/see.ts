/** Tools of the `see` capability: reads that change nothing. */
import * as z from 'zod';
import { adminExact, adminResult, dom0Exact, dom0Result } from '../calls.js';
import { Failed } from '../results.js';
import { QubeName, renamed } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import type { ToolSpec } from '../tool.js';
import { parseRules } from './firewall-rules.js';
import { eventStreamsFor } from '../events/streams.js';
import { callTool } from './exact.js';
import { AGENT_EVENTS, MAX_FILTER_QUBES } from '../../shared/event-vocabulary.js';

const ListRow = z.object({
  qube: z.string(),
  class: z.string(),
  state: z.string(),
  label: z.unknown(),
  template: z.string().nullable(),
  netvm: z.string().nullable(),
});

export const qubeList = callTool({
  name: 'qube_list',
  title: 'List qubes',
  operation: 'list',
  description:
    'List the qubes of your sandbox with class, power state, label, template and netvm, and under `sinks` the sinks you may push files to with qube_copy (write-only qubes: nothing else of them is shown or reachable). Qubes outside the sandbox never appear.' +
    UNTRUSTED,
  input: z.strictObject({}),
  output: z.object({ qubes: z.array(ListRow), sinks: z.array(z.string()) }),
  call: () => dom0Exact('list', ''),
  result: (_call, reply) => {
    const out = dom0Result(reply) as { qubes?: unknown; sinks?: unknown };
    if (!Array.isArray(out.qubes)) throw new Failed();
    const sinks = out.sinks ?? [];
    if (!Array.isArray(sinks) || !sinks.every((s) => typeof s === 'string')) throw new Failed();
    return { qubes: out.qubes.map((row) => renamed(row, { name: 'qube' })), sinks };
  },
});

const QubeInput = z.strictObject({ qube: QubeName });

export const qubeInfo = callTool({
  name: 'qube_info',
  title: 'Read qube properties',
  operation: 'info',
  description:
    'Read the readable properties of one qube (class, label, template, netvm, memory, vcpus and similar), its power state, its umbrella tag, and `lease_expires`: when the lease of the qube ends it (ISO time; null when it does not expire). References to qubes outside the sandbox read as "(outside)".' +
    REFUSABLE +
    UNTRUSTED,
  input: QubeInput,
  output: z.object({ qube: z.string(), properties: z.record(z.string(), z.unknown()) }),
  call: ({ qube }) => dom0Exact('info', qube),
  result: (call, reply) => {
    // Qubes' `klass` is `class` here, as in qube_list; the name is `qube` already
    const properties = renamed(dom0Result(reply), { klass: 'class' });
    delete properties['name'];
    return { qube: call.argument, properties };
  },
});

export const qubeState = callTool({
  name: 'qube_state',
  title: 'Read power state',
  operation: 'state',
  description: 'Read the power state of one qube (Halted, Running, Paused, Transient, ...).' + REFUSABLE,
  input: QubeInput,
  output: z.object({ qube: z.string(), state: z.string() }),
  call: ({ qube }) => adminExact(qube, 'state'),
  result: (call, reply) => {
    const data = adminResult(reply).toString('utf8');
    const state = /(?:^| )power_state=([A-Za-z]{1,32})(?: |$)/.exec(data)?.[1];
    if (state === undefined) throw new Failed();
    return { qube: call.target, state };
  },
});

export const firewallGet = callTool({
  name: 'firewall_get',
  title: 'Read firewall rules',
  operation: 'firewall.get',
  description: "Read a qube's firewall rules, in order, in Qubes' syntax (e.g. \"action=accept dsthost=example.com proto=tcp dstports=443-443\")." + REFUSABLE,
  input: QubeInput,
  output: z.object({ qube: z.string(), rules: z.array(z.string()) }),
  call: ({ qube }) => adminExact(qube, 'firewall.get'),
  result: (call, reply) => ({ qube: call.target, rules: parseRules(adminResult(reply)) }),
});

export const deviceList = callTool({
  name: 'device_list',
  title: 'List devices',
  operation: 'device.list',
  description: 'List block, usb and mic devices exposed by sandbox qubes. Backends and frontends outside the sandbox read as "(outside)".' + UNTRUSTED,
  input: z.strictObject({}),
  output: z.object({
    devices: z.array(
      z.object({
        devclass: z.string(),
        backend: z.string(),
        port: z.string(),
        device_id: z.string(),
        description: z.string(),
        attached_to: z.string().nullable(),
      }),
    ),
  }),
  call: () => dom0Exact('device.list', ''),
  result: (_call, reply) => {
    const out = dom0Result(reply) as { devices?: unknown };
    if (!Array.isArray(out.devices)) throw new Failed();
    return { devices: out.devices.map((row) => renamed(row, { class: 'devclass' })) };
  },
});

export const poolFigures = callTool({
  name: 'pool_figures',
  title: 'Read storage budget',
  operation: 'pool.figures',
  description: "Read the sandbox's storage budget: bytes used (live: its qubes; tombstoned: removed qubes still kept, see tombstone_list), the cap, and the headroom left for creating or cloning.",
  input: z.strictObject({}),
  output: z.object({ used: z.number(), live: z.number(), tombstoned: z.number(), cap: z.number(), headroom: z.number() }),
  call: () => dom0Exact('pool.figures', ''),
  result: (_call, reply) => dom0Result(reply),
});

const PollInput = z.strictObject({
  cursor: z
    .string()
    .max(128)
    .optional()
    .describe('the cursor the previous events_poll returned; leave it out to open a new stream'),
  wait_seconds: z.number().int().min(1).max(60).describe('how long to wait for the first event after the cursor, 1 to 60 seconds'),
  only_qubes: z
    .array(QubeName)
    .min(1)
    .max(MAX_FILTER_QUBES)
    .refine((a) => new Set(a).size === a.length, 'qube names must be distinct')
    .optional()
    .describe('only events about these qubes; given only when opening a stream'),
  only_events: z
    .array(z.enum(AGENT_EVENTS))
    .min(1)
    .refine((a) => new Set(a).size === a.length, 'event names must be distinct')
    .optional()
    .describe('only these events; given only when opening a stream'),
});

const EventRowOutput = z.object({
  event: z.enum(AGENT_EVENTS),
  qube: z.string(),
  class: z.string().nullable(),
  time: z.string(),
  property: z.string().optional(),
  value: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
});

export const eventsPoll: ToolSpec<typeof PollInput> = {
  name: 'events_poll',
  title: 'Poll for events',
  operation: 'events',
  description:
    'Long-poll for events about sandbox qubes: created (a qube came into the sandbox), removed (it left it), started, start-failed, stopped, paused, unpaused, ' +
    'property-changed (with property and its value now; qubes outside the sandbox read as "(outside)") and firewall-changed. ' +
    'Call it first without a cursor: that opens a stream and returns at once with a cursor and no events; only_qubes and only_events, given then, narrow the stream to those qubes and event names. ' +
    'Then call it with the last cursor it returned: it returns the events after that cursor, in order with their time, waiting up to wait_seconds for the first. ' +
    'missed: true means some events were lost (you fell behind, or a collection window failed); the gap of a moment between two of the collection windows can also miss an event unannounced, so re-read state with qube_list or qube_state when it matters. ' +
    'A stream ends when it is not polled for a while; an unknown or expired cursor is refused with a message saying to start a new stream.' +
    UNTRUSTED,
  input: PollInput,
  output: z.object({ events: z.array(EventRowOutput), cursor: z.string(), missed: z.boolean().optional() }),
  long: true,
  run: ({ cursor, wait_seconds, only_qubes: qubes, only_events: events }, ctx) =>
    eventStreamsFor(ctx.qrexec).poll(cursor, wait_seconds, ctx.signal, { ...(qubes ? { qubes } : {}), ...(events ? { events } : {}) }),
};
