/**
 * Every field name of every tool's input and output, with the one thing it
 * means. A name means the same thing in every tool, and one thing has one
 * name: the qube a call acts on is always `qube`, `name` is only ever the
 * name of a qube the call creates, and a qube's class is `class`, never
 * Qubes' `klass`. test/principal/fields.test.ts checks every schema against
 * this list, so a new field must be added here first.
 */

export interface Field {
  readonly means: string;
  /** Given as input, it is always a qube name. */
  readonly qubeName?: true;
}

const qubeName = (means: string): Field => ({ means, qubeName: true });

export const FIELDS: Readonly<Record<string, Field>> = {
  // qubes, by their role in the call
  qube: qubeName('the qube the call acts on, or the qube a row is about'),
  name: qubeName('the name of the qube the call creates'),
  source: qubeName('the qube files are copied from, or the qube cloned'),
  target: qubeName('the qube files are copied to'),
  template: qubeName('the template a qube is based on'),
  disposable_template: qubeName('the disposable template a disposable is made from'),
  backend: qubeName('the qube that exposes a device'),
  attached_to: { means: 'the qube a device is attached to, or null' },
  netvm: { means: "a qube's network qube; as input, 'inherit' or 'none'" },
  // facts about a qube
  class: { means: "a qube's class: AppVM, TemplateVM, DispVM, StandaloneVM" },
  state: { means: "a qube's power state" },
  label: { means: "a qube's label colour" },
  template_for_dispvms: { means: 'whether the qube is a disposable template' },
  auto_cleanup: { means: 'whether a disposable is removed when it shuts down' },
  properties: { means: "a qube's readable properties, by Qubes' property names (class for klass)" },
  property: { means: 'the name of a qube property' },
  feature: { means: 'the name of a qube feature' },
  value: { means: 'the value of that property or feature' },
  rules: { means: "firewall rules, in order, in Qubes' syntax" },
  removed: { means: 'whether the qube was removed' },
  removed_at: { means: 'when a qube was removed (ISO 8601), if known' },
  tombstones: { means: 'the qubes the agent removed that are still kept' },
  bytes: { means: 'bytes a tombstone holds on disk' },
  tier: { means: 'the tier a restored qube has' },
  live: { means: 'bytes held by the qubes in use' },
  tombstoned: { means: 'bytes held by tombstones' },
  revisions_to_keep: { means: "revisions Qubes keeps of a qube's private volume" },
  revision: { means: 'the volume revision a revert went back to' },
  qubes: { means: 'the rows of a qube listing' },
  // devices
  devices: { means: 'the rows of a device listing' },
  devclass: { means: 'a device class: block, usb or mic' },
  port: { means: "a device's port on its backend" },
  device_id: { means: "a device's identity" },
  description: { means: "a device's description, as its backend reports it" },
  read_only: { means: 'attach a block device read-only' },
  // commands
  argv: { means: 'a command as an argument vector' },
  shell: { means: 'a command as a shell string' },
  stdin: { means: "a command's standard input" },
  stdin_encoding: { means: 'how stdin is given' },
  timeout_seconds: { means: 'seconds before the command is stopped' },
  output_limit: { means: 'bytes of stdout and of stderr each returned, from their start and their end' },
  user: { means: 'the user a command runs as inside the qube' },
  cwd: { means: "a command's working directory inside the qube" },
  env: { means: "variables added to a command's environment" },
  exit_status: { means: "the command's exit status" },
  timed_out: { means: 'whether the command was stopped at its timeout' },
  stdout: { means: "the command's standard output" },
  stdout_encoding: { means: 'how stdout is given' },
  stdout_truncated: { means: 'whether bytes of stdout were left out between its start and its end' },
  stdout_bytes: { means: 'bytes the command wrote on stdout (so far, for a job)' },
  stdout_lines: { means: 'lines the command wrote on stdout' },
  stdout_path: { means: 'the file in the qube holding the whole stdout, when some was left out' },
  stderr: { means: "the command's standard error" },
  stderr_encoding: { means: 'how stderr is given' },
  stderr_truncated: { means: 'whether bytes of stderr were left out between its start and its end' },
  stderr_bytes: { means: 'bytes the command wrote on stderr (so far, for a job)' },
  stderr_lines: { means: 'lines the command wrote on stderr' },
  stderr_path: { means: 'the file in the qube holding the whole stderr, when some was left out' },
  // background jobs
  background: { means: 'whether to start the command as a background job' },
  job: { means: 'a background job, by the id its qube chose' },
  jobs: { means: 'the rows of a job listing' },
  command: { means: 'what a job runs: its shell string, or its arguments joined by spaces' },
  started: { means: 'when a job started' },
  ended: { means: 'whether a job has ended: its command exited and its output closed' },
  stream: { means: "a job's output stream: stdout or stderr" },
  total_bytes: { means: 'the bytes of a stream so far' },
  signal: { means: 'the signal sent to a job' },
  already_ended: { means: 'whether the job had ended, so that nothing was signalled' },
  // files
  path: { means: 'an absolute path inside a qube' },
  paths: { means: 'absolute paths inside the source qube' },
  content: { means: "a file's content" },
  encoding: { means: 'how content is given' },
  mode: { means: 'permission bits of a file' },
  create_parents: { means: "whether to create a file's missing parent directories" },
  size: { means: "a file's size in bytes" },
  truncated: { means: 'whether bytes of the file remain after the content returned' },
  offset: { means: "bytes of a file, or of a job's stream, before the content returned" },
  length: { means: 'bytes of content returned, or to return at most' },
  copied: { means: 'how many paths were copied' },
  directory: { means: 'the directory in the target that copied files land in' },
  files: { means: 'where each copied path lands in the target' },
  sinks: { means: 'the write-only qubes files may be pushed to with qube_copy, by name' },
  limit: { means: 'entries returned at most' },
  total: { means: 'entries in the directory' },
  entries: { means: 'the rows of a directory listing' },
  basename: { means: "a directory entry's name" },
  basename_encoding: { means: 'how basename is given' },
  type: { means: 'what a path is: file, directory, link, fifo, socket, char, block or other' },
  mtime: { means: "a path's modification time" },
  uid: { means: "the user id owning a path" },
  gid: { means: "the group id owning a path" },
  link_target: { means: "a symbolic link's target" },
  // storage
  used: { means: 'bytes used by the sandbox' },
  cap: { means: "the sandbox's storage cap in bytes" },
  headroom: { means: 'bytes left under the cap' },
  // events
  events: { means: 'the events after the cursor' },
  event: { means: "an event's name" },
  time: { means: 'when the event happened' },
  cursor: { means: 'where an event stream was left' },
  wait_seconds: { means: 'how long to wait for the first event' },
  missed: { means: 'whether events were lost' },
  // plans
  plan: { means: "a plan's id, as plan_submit returned it" },
  purpose: { means: 'what a plan is for, in one line shown to the operator' },
  steps: { means: "a plan's steps, in the order they run" },
  step: { means: "a step's number in its plan, from 1" },
  tool: { means: 'the tool a plan step calls' },
  arguments: { means: 'the arguments that tool takes' },
  status: { means: 'where a plan or one of its steps stands' },
  result: { means: "a step's result, as its tool returns it" },
  error: { means: 'what the step\'s tool would have answered instead of a result' },
};
