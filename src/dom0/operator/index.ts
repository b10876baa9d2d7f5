/** The operator's tier and mode back ends (dom0 only; never reachable by the agent). */
export { OperatorRefusal, TIER_CHOICES, installedPrincipal, isTierChoice, setTier } from './tier.js';
export type { TierChoice, TierOps, TierResult } from './tier.js';
export { MODES, isMode, policyFilePath, setMode } from './mode.js';
export type { ModeOps, ModeResult } from './mode.js';
