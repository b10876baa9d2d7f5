/**
 * Operator settings of the demo host. Unlike the installed defaults (which
 * refuse every create until the operator sets caps and an egress qube), they
 * let the agent create qubes, behind the demo fleet's egress qube, born at
 * full tier from full sources so it can also remove (entomb) what it made.
 * A small gated set shows the action gate without making every call wait.
 * What the agent creates lives a working day unless it renews it.
 * A second agent, a pentest agent, has a world of its own beside the first
 * (docs/principals.md) when the settings are the list of both.
 */
import { OPEN_GATE } from './open-gate.js';

/** What the demo's agent must wait for the operator to approve. */
export const DEMO_GATED: readonly string[] = ['kill', 'firewall.set', 'remove', 'device.attach'];

const GiB = 1024 ** 3;

export const DEMO_SETTINGS: Record<string, unknown> = {
  principal: 'mcp-control',
  mode: 'least-privilege',
  namePrefix: 'ai-',
  egressQube: 'ai-egress',
  poolCapBytes: 200 * GiB,
  privateCapBytes: 8 * GiB,
  birthCeiling: 'full',
  tombstoneRetentionDays: 7,
  lease: { default: '8h', max: '7d' },
  gate: { ...OPEN_GATE, ...Object.fromEntries(DEMO_GATED.map((id) => [id, 'ask'] as const)) },
};

/** The second principal of the demo: its own qube, tags, name prefix, egress qube and a shorter lease. */
export const DEMO_SECOND: Record<string, unknown> = {
  principal: 'mcp-pentest',
  mode: 'least-privilege',
  namePrefix: 'pt-',
  egressQube: 'pt-egress',
  tags: { umbrella: 'pt-managed', exec: 'pt-exec', net: 'pt-net', full: 'pt-full', sink: 'pt-dump' },
  poolCapBytes: 100 * GiB,
  privateCapBytes: 8 * GiB,
  birthCeiling: 'full',
  tombstoneRetentionDays: 7,
  lease: { default: '1h', max: '1d' },
  gate: DEMO_SETTINGS['gate'],
};

/** The demo fleet's two principals: FIRST (the demo's by default, or a test's variant of it) and the second. */
export function demoPrincipals(first: Record<string, unknown> = DEMO_SETTINGS): Record<string, unknown> {
  return { principals: [first, DEMO_SECOND] };
}

/** What `qmcp demo` and `qmcp sim start --fleet demo` install: both agents' worlds. */
export const DEMO_HOST_SETTINGS: Record<string, unknown> = demoPrincipals();
