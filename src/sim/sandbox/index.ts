export { BWRAP_MISSING_MESSAGE, bwrapFeatures, findBwrap, SandboxError, SandboxUnavailableError } from './bwrap.js';
export { qubeLayout } from './layout.js';
export type { QubeLayout } from './layout.js';
export { defaultServicesDir, imageLimit, QREXEC_SOCKET_IN_QUBE, QubeSandboxes, TOOLS_DIR_IN_QUBE } from './sandboxes.js';
export type { QubeProcess } from './link.js';
export type { QubeServiceHost, QubeShape, SandboxOptions, ServiceCall, SpawnInQubeOptions } from './sandboxes.js';
export { registryLookup } from './lookup.js';
export type { QubeRegistry } from './lookup.js';
