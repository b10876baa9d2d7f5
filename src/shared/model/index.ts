export type { BackgroundService, CapabilityClass, Escalation, GateAnswer, Layer, Operation, TargetForm, Tier } from './capabilities.js';
export { BACKGROUND_SERVICES, dom0Services, ESCALATIONS, operation, OPERATIONS, TIERS } from './capabilities.js';
export type { AuditRetention, Mode, RateSettings, Settings, SettingsProblem, SettingsReading, SettingDoc, TagNames } from './settings.js';
export { APPROVAL_DEADLINE_RANGE, APPROVAL_PENDING_RANGE, AUDIT_FILE_RANGE, DEFAULT_SETTINGS, RATE_RANGE, hasFatal, isQubeName, isTagName, parseSettings, readSettingsFile, SETTINGS_DOC, SETTINGS_PATH, settingsPath } from './settings.js';
export { checkInstalledModel, MODEL_HEADER, modelHash, policyModel, RENDERER_VERSION, SETTINGS_HEADER, settingsDigest } from './hash.js';
export { POLICY_FILE, renderPolicy, tierLines } from './render.js';
export { renderCapabilitiesDoc } from './docs.js';
export { OWNER_PREFIX, ownerTag, TOMBSTONE_PREFIX } from './marks.js';
export { gatedByLayer, gatedOperations, gateOf } from './gate.js';
