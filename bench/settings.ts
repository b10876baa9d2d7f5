/** The operator settings every benchmark host is installed with: the demo's, which let the agent create qubes. */
import { DEMO_SETTINGS } from '../src/sim/demo-settings.js';

export const PRINCIPAL = 'mcp-control';
// Born at the full tier, so the agent may remove what it creates.
export const BENCH_SETTINGS: Record<string, unknown> = { ...DEMO_SETTINGS, principal: PRINCIPAL, birthCeiling: 'full' };
