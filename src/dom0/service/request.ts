/** What qrexec tells a dom0 service about the call, read from its environment. */
export interface ServiceCall {
  /** Service name without the argument, e.g. `qmcp.Start`. */
  readonly service: string;
  /** The argument after `+`, '' when none. */
  readonly argument: string;
  /** The calling qube, as qrexec identified it (never anything the caller sent). */
  readonly caller: string;
}

/**
 * Reads the qrexec service environment. Returns null when it is not a
 * well-formed qrexec call, which the service answers with the refusal.
 */
export function readServiceCall(env: NodeJS.ProcessEnv): ServiceCall | null {
  const full = env['QREXEC_SERVICE_FULL_NAME'];
  const caller = env['QREXEC_REMOTE_DOMAIN'];
  if (!full || !caller) return null;
  const plus = full.indexOf('+');
  const service = plus < 0 ? full : full.slice(0, plus);
  const argument = plus < 0 ? '' : full.slice(plus + 1);
  if (env['QREXEC_SERVICE_ARGUMENT'] !== undefined && env['QREXEC_SERVICE_ARGUMENT'] !== argument) return null;
  return { service, argument, caller };
}
