/**
 * The codes of the errors an agent can act on (docs/mcp-server.md#errors).
 * A code is stable across versions: clients switch on it, never on a text.
 * Each one's answer depends only on what the agent sent, on the operator's
 * settings, or on qubes of its own world; whatever could tell the outside
 * world or a tier (scope, tier, existence) is the one uniform refusal and
 * has no code here but `refused`.
 */

/** Who decides that an error is this one. */
export type CodeSource = 'dom0' | 'in-qube' | 'qubesd' | 'server';

export interface ErrorCode {
  readonly from: CodeSource;
  /** Decided from the call's bytes and the settings alone, before any lookup: the same for any target. */
  readonly input?: true;
  /** What happened and what to do, for the docs' table. */
  readonly means: string;
}

export const ERROR_CODES = {
  // the agent's own input, checked in dom0 before any lookup
  name_invalid: { from: 'dom0', input: true, means: 'the name given for a new qube is not a valid qube name: letters, digits, `_ . -`, at most 31, starting with a letter' },
  name_prefix: { from: 'dom0', input: true, means: 'a new qube\'s name must start with the reserved prefix (usually `ai-`) and have more after it' },
  unknown_label: { from: 'dom0', input: true, means: 'not one of Qubes\' labels: red, orange, yellow, green, gray, blue, purple, black' },
  bad_netvm: { from: 'dom0', input: true, means: 'a new qube\'s netvm is `inherit` or `none`, nothing else' },
  bad_value: { from: 'dom0', input: true, means: 'the value has the wrong type for this property' },
  out_of_range: { from: 'dom0', input: true, means: 'memory, maxmem or vcpus outside what this host gives one qube (the operator\'s `qubeLimits`); the message says the range' },
  // the operator's settings, the same whatever the agent's world holds
  limits_unset: { from: 'dom0', input: true, means: 'the operator\'s `qubeLimits` setting is unusable, so memory, maxmem and vcpus cannot be set: ask the operator' },
  lease_unset: { from: 'dom0', input: true, means: 'the operator\'s `lease` setting is unusable, so nothing can be created or renewed: ask the operator' },
  lease_too_long: { from: 'dom0', input: true, means: 'the lease asked for is longer than the operator allows: at creation the default lease, on renewal the maximum (the message says the bound in seconds)' },
  budget_unset: { from: 'dom0', means: 'the operator has set no disk budget, so nothing can be created, restored or checkpointed: ask the operator' },
  no_egress: { from: 'dom0', means: 'the operator has set no egress qube, so no qube can be created from a template: ask the operator' },
  // the agent's world, after scope and tier
  exists: { from: 'dom0', means: 'a qube of the agent\'s world already has that name: choose another' },
  over_budget: { from: 'dom0', means: 'the disk budget has no headroom for a qube this size (or for a restore, or the revision a checkpoint keeps): remove a qube, or ask the operator (`pool_figures` shows the headroom)' },
  no_free_name: { from: 'dom0', means: 'dom0 found no free name for a disposable within the prefix: give one' },
  not_a_template: { from: 'dom0', means: 'the qube named as template is not a template' },
  not_a_disposable_template: { from: 'dom0', means: 'the qube named is not a disposable template' },
  not_clonable: { from: 'dom0', means: 'this kind of qube cannot be cloned' },
  in_use: { from: 'dom0', means: 'qubes of the agent\'s world (named), or its own removed qubes, use this qube as template, netvm or disposable template: change or remove them first' },
  no_lease: { from: 'dom0', means: 'the qube has no lease to renew: it does not expire' },
  no_template: { from: 'dom0', means: 'the qube has no usable template' },
  start_failed: { from: 'dom0', means: 'Qubes could not start the qube: check its properties' },
  not_running: { from: 'dom0', means: 'the qube is not running: start it first' },
  not_halted: { from: 'dom0', means: 'the qube is running: shut it down first' },
  device_not_found: { from: 'dom0', means: 'the backend exposes no such device: list the devices again' },
  device_in_use: { from: 'dom0', means: 'the device is already attached' },
  not_attached: { from: 'dom0', means: 'the device is not attached to this qube' },
  no_revisions: { from: 'dom0', means: 'a disposable keeps no revisions of its private volume, so it has no checkpoint' },
  no_checkpoint: { from: 'dom0', means: 'the qube has no checkpoint: take one with `qube_checkpoint` while it is halted' },
  unchanged: { from: 'dom0', means: 'the qube has not run since its checkpoint: there is nothing to revert' },
  checkpoint_lost: { from: 'dom0', means: 'the checkpoint is no longer kept: the qube was stopped more often since than its volume keeps revisions' },
  // Qubes' own errors on a qube the agent was allowed to act on
  not_paused: { from: 'qubesd', means: 'the qube is not paused' },
  shutdown_timeout: { from: 'qubesd', means: 'the qube did not shut down in time; check its state, or kill it' },
  value_rejected: { from: 'qubesd', means: 'Qubes did not accept the value' },
  qubes_error: { from: 'qubesd', means: 'Qubes reported another error on this qube: check its state and the arguments' },
  // the services inside a qube
  not_found: { from: 'in-qube', means: 'no such file or directory inside the qube' },
  is_directory: { from: 'in-qube', means: 'the path is a directory' },
  not_directory: { from: 'in-qube', means: 'the path is not a directory' },
  denied: { from: 'in-qube', means: 'permission denied inside the qube' },
  not_regular: { from: 'in-qube', means: 'the path is not a regular file' },
  too_large: { from: 'in-qube', means: 'the content is over the size limit' },
  io_error: { from: 'in-qube', means: 'an I/O error inside the qube' },
  copy_failed: { from: 'in-qube', means: 'the copy failed inside the source qube' },
  no_job: { from: 'in-qube', means: 'no such job in this qube (jobs end when the qube stops)' },
  no_user: { from: 'in-qube', means: 'no such user inside the qube' },
  bad_request: { from: 'in-qube', means: 'the service inside the qube did not accept the request' },
  bad_version: { from: 'in-qube', means: 'the qmcp services inside the qube are of another version: reinstall them in its template' },
  // the MCP server
  invalid_arguments: { from: 'server', means: 'the arguments do not fit together (the message says how)' },
  unknown_cursor: { from: 'server', means: 'the event cursor is unknown or closed: start a new poll without one' },
  failed: { from: 'server', means: 'the call did not complete (timed out, or its reply was not understood): check the state before retrying' },
  refused: { from: 'server', means: 'the uniform refusal: not permitted, or no such qube, deliberately indistinguishable; do not retry it with variations' },
} as const satisfies Record<string, ErrorCode>;

export type ErrorCodeName = keyof typeof ERROR_CODES;

/** The codes a dom0 service may answer with. */
export type Dom0Code = { [K in ErrorCodeName]: (typeof ERROR_CODES)[K]['from'] extends 'dom0' ? K : never }[ErrorCodeName];

export function isErrorCode(v: unknown): v is ErrorCodeName {
  return typeof v === 'string' && Object.hasOwn(ERROR_CODES, v);
}
