/**
 * The events the agent is told, in its own terms (SPEC §4a). dom0's event
 * filter translates Qubes' raw events into these; the MCP server and the
 * filters an agent may ask for name only these.
 */
export const AGENT_EVENTS = [
  'created',
  'removed',
  'started',
  'start-failed',
  'stopped',
  'paused',
  'unpaused',
  'property-changed',
  'firewall-changed',
] as const;

export type AgentEvent = (typeof AGENT_EVENTS)[number];

export function isAgentEvent(value: unknown): value is AgentEvent {
  return typeof value === 'string' && (AGENT_EVENTS as readonly string[]).includes(value);
}

/** Qubes and event names one window may be narrowed to, at most. */
export const MAX_FILTER_QUBES = 32;
