/**
 * Operator settings of the demo host. Unlike the installed defaults (which
 * refuse every create until the operator sets caps and an egress qube), they
 * let the agent create qubes, behind the demo fleet's egress qube, born at
 * full tier from full sources so it can also remove (entomb) what it made.
 */
import { OPEN_GATE } from './open-gate.js';

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
  gate: OPEN_GATE,
};
