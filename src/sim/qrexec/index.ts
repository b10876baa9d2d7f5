/** The simulated qrexec: the router, its client side and the default dom0 policy. */
export type { QubeServiceHost, Router, RouterOptions } from './router.js';
export { DEFAULT_ASK_TIMEOUT_MS, routerPaths, startRouter } from './router.js';
export type { ServiceStdio } from './dom0-services.js';
export { seedDefaultPolicy } from './default-policy.js';
export { qrexecCall, qrexecCollect, socketFromEnv } from './client.js';
export type { CollectedReply } from './client.js';
export type { AskControlReply, AskControlRequest, PendingAsk } from './asks.js';
export { askControl } from './asks.js';
export { asExecutableReply, isDom0Service } from './resident-reply.js';
