/**
 * The one refusal. A dom0 service refuses exactly as qrexec itself refuses a
 * call: nothing on stdout, `Request refused` on stderr (qrexec-client-vm
 * passes a service's stderr through), exit status 126. So the caller cannot
 * tell a policy denial from a service's refusal, nor scope from tier from
 * nonexistence from a malformed request.
 */
import { QmcpError } from '../../shared/errors.js';
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

/** An in-scope error the agent can act on ("qube is halted: start it first"). */
export class ActionableError extends QmcpError {
  readonly code = 'ERR_QMCP_SERVICE_ACTIONABLE';
  /** The error name the caller is sent with the message (`halted`, `budget`, ...). */
  readonly kind: string;

  constructor(kind: string, message: string) {
    super(message);
    this.kind = kind;
  }
}
