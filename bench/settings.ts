/** The operator settings every benchmark host is installed with: the demo's, which let the agent create qubes. */
import { DEMO_SETTINGS } from '../src/sim/demo-settings.js';
import { RATE_RANGE } from '../src/shared/model/settings.js';
import { OPEN_GATE } from '../src/sim/open-gate.js';

export const PRINCIPAL = 'mcp-control';
// Born at the full tier, so the agent may remove what it creates; nothing gated, so no call waits for an operator (the demo gates kill);
// the rate at its highest, so ten clients at once time the calls, not the limiter's refusals
export const BENCH_SETTINGS: Record<string, unknown> = {
  ...DEMO_SETTINGS,
  principal: PRINCIPAL,
  birthCeiling: 'full',
  gate: OPEN_GATE,
  rate: { perSecond: RATE_RANGE.perSecond.max, burst: RATE_RANGE.burst.max },
};
