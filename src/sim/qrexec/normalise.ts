/** A call's service and target as qrexec-client-vm and qrexec-daemon clean them before asking the policy. */

export interface NormalisedCall {
  /** The service name without the argument. */
  service: string;
  /** The argument without its `+`; '' when there is none. */
  argument: string;
  /** The target as requested, `$` spelled `@`. */
  target: string;
}

/** qrexec-client-vm copies the target into a 64-byte field (MSG_TRIGGER_SERVICE4), so at most 63 bytes survive. */
const MAX_TARGET_BYTES = 63;

/** Replaces, byte by byte as qrexec-daemon does, everything outside [A-Za-z0-9_.-] and `extra` with `_`. */
function sanitise(value: Buffer, extra: string): string {
  let out = '';
  for (const b of value) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_.-]/.test(c) || (b < 0x80 && extra.includes(c)) ? c : '_';
  }
  return out;
}

export function normaliseCall(target: string, serviceWithArg: string): NormalisedCall {
  const t = sanitise(Buffer.from(target.replace(/\$/g, '@'), 'utf8').subarray(0, MAX_TARGET_BYTES), '@:');
  const s = sanitise(Buffer.from(serviceWithArg, 'utf8'), '+');
  const plus = s.indexOf('+');
  return {
    service: plus < 0 ? s : s.slice(0, plus),
    argument: plus < 0 ? '' : s.slice(plus + 1),
    target: t,
  };
}
