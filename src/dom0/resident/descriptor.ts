/**
 * The service descriptor qrexec writes to a socket service before the
 * caller's data: `SERVICE+ARG SOURCE TYPE TARGET` and a NUL (qubes-core-qrexec
 * doc/execution.rst, "Socket-based services"; qrexec-daemon appends the `+`
 * when there is no argument). Turned into the environment qrexec gives an
 * executable service, so both front ends read a call with the same code
 * (service/request.ts).
 */

/** qrexec bounds the command it relays; a descriptor longer than this is not one qrexec wrote. */
export const MAX_DESCRIPTOR_BYTES = 1024;

/** The qrexec service environment a descriptor stands for; null when it is malformed (the call is refused). */
export function descriptorEnv(descriptor: Buffer): NodeJS.ProcessEnv | null {
  if (descriptor.length === 0 || descriptor.length > MAX_DESCRIPTOR_BYTES || descriptor.includes(0)) return null;
  const tokens = descriptor.toString('latin1').split(' ');
  // two tokens from a qube, four for a call to dom0; qrexec never puts a space in a
  // source, type or target, so anything before them is the service and its argument,
  // which the runner refuses (audited) as it refuses any malformed argument
  if (tokens.length !== 2 && tokens.length < 4) return null;
  const [full, source, type, target] = (tokens.length === 2 ? tokens : [tokens.slice(0, -3).join(' '), ...tokens.slice(-3)]) as [string, string, string?, string?];
  if ([full, source, type, target].some((t) => t === '')) return null;
  const plus = full.indexOf('+');
  if (plus <= 0) return null;
  const env: NodeJS.ProcessEnv = {
    QREXEC_SERVICE_FULL_NAME: full,
    QREXEC_REMOTE_DOMAIN: source,
    QREXEC_SERVICE_ARGUMENT: full.slice(plus + 1),
  };
  if (type !== undefined && target !== undefined) {
    if (type === 'name') env['QREXEC_REQUESTED_TARGET'] = target;
    else if (type === 'keyword') env['QREXEC_REQUESTED_TARGET_KEYWORD'] = target;
    else return null;
    env['QREXEC_REQUESTED_TARGET_TYPE'] = type;
  }
  return env;
}
