/** Tools that change a qube: power, firewall, removal, properties and features. */
import * as z from 'zod';
import { adminExact, adminResult, dom0Exact, dom0Result } from '../calls.js';
import { operation } from '../../shared/model/capabilities.js';
import { QubeName, renamed } from '../schemas.js';
import { REFUSABLE } from '../texts.js';
import { callTool, type CallToolSpec } from './exact.js';
import { encodeRules, FirewallRule, MAX_RULES } from './firewall-rules.js';

const QubeInput = z.strictObject({ qube: QubeName });
const Done = z.object({ qube: z.string() });

/**
 * An operation on the named qube that answers only that it was done: a
 * native Admin API call, or a dom0 service (which echoes the qube's name),
 * as the model reaches it.
 */
function qubeTool(name: string, title: string, operationId: string, description: string): CallToolSpec<typeof QubeInput, typeof Done> {
  const dom0 = operation(operationId).target === 'dom0-service';
  return callTool({
    name,
    title,
    operation: operationId,
    description: description + REFUSABLE,
    input: QubeInput,
    output: Done,
    call: (input) => (dom0 ? dom0Exact(operationId, input.qube) : adminExact(input.qube, operationId)),
    result: (call, reply) => {
      if (dom0) return renamed(dom0Result(reply), { name: 'qube' });
      adminResult(reply);
      return { qube: call.target };
    },
  });
}

export const qubeStart = callTool({
  name: 'qube_start',
  title: 'Start a qube',
  operation: 'start',
  description: 'Start a halted qube and wait until it runs. A cancelled start may still complete: check qube_state.' + REFUSABLE,
  input: QubeInput,
  output: z.object({ qube: z.string(), state: z.string() }),
  long: true,
  call: (input) => dom0Exact('start', input.qube),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

const Seconds = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const qubeRenew = callTool({
  name: 'qube_renew',
  title: "Renew a qube's lease",
  operation: 'renew',
  description:
    "Renew the lease of a qube you created, from now: for the operator's default lease, or for `seconds` up to the operator's maximum. When a lease runs out the qube is stopped and removed as qube_remove would (restorable); qube_info shows `lease_expires`." +
    REFUSABLE,
  input: z.strictObject({ qube: QubeName, seconds: Seconds.optional().describe("how long from now; at most the operator's maximum (default: the default lease)") }),
  output: z.object({ qube: z.string(), lease_expires: z.string().nullable() }),
  call: (input) => dom0Exact('renew', input.qube, input.seconds === undefined ? {} : { seconds: input.seconds }),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

export const qubeShutdown = qubeTool('qube_shutdown', 'Shut a qube down', 'shutdown', 'Ask a running qube to shut down (it returns at once; check qube_state).');
export const qubeKill = qubeTool('qube_kill', 'Kill a qube', 'kill', 'Stop a running qube at once, without a clean shutdown.');

const FirewallSetInput = z.strictObject({
  qube: QubeName,
  rules: z.array(FirewallRule).max(MAX_RULES).describe("rules in order, in Qubes' syntax, e.g. \"action=accept dsthost=example.com proto=tcp dstports=443-443\"; end with \"action=drop\" to deny the rest"),
});

export const firewallSet = callTool({
  name: 'firewall_set',
  title: 'Replace firewall rules',
  operation: 'firewall.set',
  description: "Replace a qube's firewall rules with the given list (keys: action, dst4, dst6, dsthost, proto, dstports, icmptype, specialtarget, expire, comment last)." + REFUSABLE,
  input: FirewallSetInput,
  output: z.object({ qube: z.string(), rules: z.array(z.string()) }),
  call: (input) => dom0Exact('firewall.set', input.qube, encodeRules(input.rules)),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

export const firewallReload = qubeTool('firewall_reload', 'Reload firewall', 'firewall.reload', "Re-apply a qube's firewall rules (e.g. after DNS names changed).");
export const qubePause = qubeTool('qube_pause', 'Pause a qube', 'pause', 'Pause a running qube.');
export const qubeUnpause = qubeTool('qube_unpause', 'Unpause a qube', 'unpause', 'Unpause a paused qube.');

export const qubeRemove = callTool({
  name: 'qube_remove',
  title: 'Remove a qube',
  operation: 'remove',
  description: 'Remove a qube (halting it first). It is kept for a while as a tombstone you can restore (tombstone_list, tombstone_restore); it still counts in pool_figures until then.' + REFUSABLE,
  input: QubeInput,
  output: z.object({ qube: z.string(), removed: z.boolean() }),
  long: true,
  call: (input) => dom0Exact('remove', input.qube),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

const PropertyInput = z.strictObject({
  qube: QubeName,
  property: z.enum(['label', 'memory', 'maxmem', 'vcpus', 'autostart', 'include_in_backups', 'default_dispvm', 'netvm']),
  value: z.union([z.string().max(64), z.number().int(), z.boolean(), z.null()]).describe('label name, MiB or count as a number, boolean, a qube name for default_dispvm, null or "none" for netvm'),
});

export const qubeSetProperty = callTool({
  name: 'qube_set_property',
  title: 'Set a qube property',
  operation: 'property.set',
  description: 'Set one property of a qube and return the value read back. netvm can only be set to none; default_dispvm only to a disposable template you can see.' + REFUSABLE,
  input: PropertyInput,
  output: z.object({ qube: z.string(), property: z.string(), value: z.unknown() }),
  call: (input) => dom0Exact('property.set', input.qube, { name: input.property, value: input.value }),
  result: (call, reply) => {
    const out = renamed(dom0Result(reply), {});
    return { qube: call.argument, property: out['name'], value: out['value'] };
  },
});

const FeatureInput = z.strictObject({
  qube: QubeName,
  feature: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/),
  value: z.string().max(4096),
});

export const qubeSetFeature = callTool({
  name: 'qube_set_feature',
  title: 'Set a qube feature',
  operation: 'feature.set',
  description: 'Set one feature of a qube (from an operator allowlist) and return the value read back.' + REFUSABLE,
  input: FeatureInput,
  output: z.object({ qube: z.string(), feature: z.string(), value: z.string() }),
  call: (input) => dom0Exact('feature.set', input.qube, { name: input.feature, value: input.value }),
  result: (call, reply) => {
    const out = renamed(dom0Result(reply), {});
    return { qube: call.argument, feature: out['name'], value: out['value'] };
  },
});

