/**
 * The one refusal. A dom0 service refuses exactly as qrexec itself refuses a
 * call: nothing on stdout, `Request refused` on stderr (qrexec-client-vm
 * passes a service's stderr through), exit status 126. So the caller cannot
 * tell a policy denial from a service's refusal, nor scope from tier from
 * nonexistence from a malformed request.
 */
import { QmcpError } from '../../shared/errors.js';
import type { Dom0Code } from '../../shared/error-codes.js';
import { REFUSAL_STATUS } from '../../shared/service-reply.js';

export const REFUSAL_EXIT_STATUS = REFUSAL_STATUS;
export const REFUSAL_STDERR = 'Request refused\n';

/** Thrown anywhere inside a service to end the call with the uniform refusal. */
export class ServiceRefusal extends QmcpError {
  readonly code = 'ERR_QMCP_SERVICE_REFUSED';
  /** For the audit log and the journal only; never shown to the caller. */
  readonly reason: string;

  constructor(reason: string) {
    super('refused');
    this.reason = reason;
  }
}

/**
 * An error the agent can act on ("the qube is not running: start it
 * first"). Raise one only where the answer depends on nothing but the
 * call's own input, the operator's settings, or qubes of the agent's world
 * already checked visible (SPEC §4.1, §4.3); anything else is a ServiceRefusal.
 */
export class ActionableError extends QmcpError {
  readonly code = 'ERR_QMCP_SERVICE_ACTIONABLE';
  /** The stable code the caller is sent with the message (shared/error-codes.ts). */
  readonly kind: Dom0Code;

  constructor(kind: Dom0Code, message: string) {
    super(message);
    this.kind = kind;
  }
}
