/**
 * Errors a handler raises. A QubesError becomes a `2\0` reply named after
 * Qubes' exception class; anything else thrown makes the server close the
 * connection without a byte, as qubesd does for non-Qubes exceptions.
 */
import { QmcpAnswerError, QmcpError } from '../../shared/errors.js';
/** PermissionDenied, ProtocolError and its subclasses: qubesd aborts after replying. */
const PROTOCOL_LIKE = new Set(['PermissionDenied', 'ProtocolError', 'QubesInvalidTagError', 'QubesInvalidLabelError']);

export class QubesError extends QmcpAnswerError {
  readonly code = 'ERR_QMCP_SIM_QUBES';

  /** Whether qubesd aborts the connection after the reply (PermissionDenied, ProtocolError). */
  readonly abortAfter: boolean;
  constructor(
    readonly className: string,
    message: string,
  ) {
    super(message);
    this.abortAfter = PROTOCOL_LIKE.has(className);
  }
}

/** Python's repr() of a str, enough for the names and values qubesd quotes. */
export function pyRepr(s: string): string {
  if (s.includes("'") && !s.includes('"')) return `"${s}"`;
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export const err = {
  protocol: (msg: string) => new QubesError('ProtocolError', msg),
  permission: (msg = '') => new QubesError('PermissionDenied', msg),
  generic: (msg: string) => new QubesError('QubesException', msg),
  value: (msg: string) => new QubesError('QubesValueError', msg),
  vmNotFound: (name: string) => new QubesError('QubesVMNotFoundError', `No such domain: ${pyRepr(name)}`),
  invalidUuid: (uuid: string) => new QubesError('QubesVMInvalidUUIDError', `VM UUID is not valid: ${pyRepr(uuid)}`),
  alreadyExists: (name: string) => new QubesError('QubesVMAlreadyExistsError', `Qube already exists: ${name}`),
  inUse: (name: string, msg?: string) => new QubesError('QubesVMInUseError', msg ?? `Domain is in use: ${pyRepr(name)}`),
  notStarted: (name: string) => new QubesError('QubesVMNotStartedError', `Domain is powered off: ${pyRepr(name)}`),
  notRunning: (name: string) =>
    new QubesError('QubesVMNotRunningError', `Domain not running (either powered off or paused): ${pyRepr(name)}`),
  notPaused: (name: string) => new QubesError('QubesVMNotPausedError', `Domain is not paused: ${pyRepr(name)}`),
  notSuspended: (name: string) => new QubesError('QubesVMNotSuspendedError', `Domain is not suspended: ${pyRepr(name)}`),
  notHalted: (name: string, msg?: string) => new QubesError('QubesVMNotHaltedError', msg ?? `Domain is not powered off: ${pyRepr(name)}`),
  vm: (msg: string) => new QubesError('QubesVMError', msg),
  storage: (msg: string) => new QubesError('StoragePoolException', msg),
  noSuchProperty: (holder: string, prop: string) =>
    new QubesError('QubesNoSuchPropertyError', `Invalid property ${pyRepr(prop)} of ${holder}`),
  propertyValue: (msg: string) => new QubesError('QubesPropertyValueError', msg),
  featureNotFound: (vm: string, f: string) =>
    new QubesError('QubesFeatureNotFoundError', `Feature not set for domain ${vm}: ${f}`),
  tagNotFound: (vm: string, t: string) => new QubesError('QubesTagNotFoundError', `Tag not set for domain ${vm}: ${t}`),
  labelNotFound: (label: string) => new QubesError('QubesLabelNotFoundError', `Label does not exist: ${label}`),
  noTemplate: (name: string) => new QubesError('QubesNoTemplateError', `Template for the domain ${pyRepr(name)} not found`),
};

/** A non-Qubes failure (Python's ValueError and friends): the connection closes with no bytes. */
export class SilentClose extends QmcpError {
  readonly code = 'ERR_QMCP_SIM_SILENT_CLOSE';
}
