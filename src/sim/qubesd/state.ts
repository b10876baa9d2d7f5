/** The persisted shape of the simulated host, and its atomic file storage. */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { QmcpError } from '../../shared/errors.js';

export type Klass = 'AdminVM' | 'TemplateVM' | 'AppVM' | 'StandaloneVM' | 'DispVM';
export const KLASSES: readonly Klass[] = ['AdminVM', 'AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'];
export type PowerState = 'Halted' | 'Transient' | 'Running' | 'Paused' | 'Suspended';
export type PropValue = string | number | boolean | null;

export interface VolumeState {
  size: number;
  usage: number;
  /** Set by admin.vm.volume.Set.revisions_to_keep; absent: the driver's default for the volume. */
  revisions_to_keep?: number;
  /** Kept revisions, oldest first, each with the time of the commit its content came from. */
  revisions?: RevisionState[];
  /** When the volume's content was last committed (its clean image's mtime in the reflink driver). */
  committed?: string;
}

export interface RevisionState {
  id: string;
  /** Qubes' isodate, `YYYY-MM-DDTHH:MM:SS` in UTC: when its content was committed (the name's timestamp). */
  at: string;
  /** When the revision itself was made (its file's mtime), which a revert gives the volume. */
  made?: string;
}

export interface DeviceAssignmentState {
  backend: string;
  port: string;
  devid: string;
  mode: string;
  options: Record<string, string>;
  /** The frontend an Assign payload named; null when it named none (qubesd then lists none). Absent: the holder. */
  frontend?: string | null;
}

export interface VmState {
  name: string;
  klass: Klass;
  qid: number;
  uuid: string;
  dispid?: number;
  /** Explicitly set properties; VM references hold names, None is null. */
  props: Record<string, PropValue>;
  tags: string[];
  features: Record<string, string>;
  /** Rules in the API's line syntax. */
  firewall: string[];
  notes: string;
  power: PowerState;
  volumes: Record<string, VolumeState>;
  /** Devices by class. */
  assigned: Record<string, DeviceAssignmentState[]>;
  attached: Record<string, DeviceAssignmentState[]>;
}

export interface DeviceState {
  port: string;
  devid: string;
  description: string;
  interfaces: string;
}

export interface HostState {
  version: 1;
  props: Record<string, PropValue>;
  vms: VmState[];
  /** Devices each backend exposes, by class then backend name. */
  devices: Record<string, Record<string, DeviceState[]>>;
}

/** The state file cannot be used; startup must stop and leave it alone. */
export class StateFileError extends QmcpError {
  readonly code = 'ERR_QMCP_SIM_STATE_FILE';
}

export function readStateFile(path: string): HostState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateFileError(`cannot read state file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(`state file ${path} is corrupt: ${(e as Error).message}`);
  }
  const problem = stateProblem(parsed);
  if (problem) throw new StateFileError(`state file ${path} is corrupt: ${problem}`);
  return parsed as HostState;
}

function stateProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not a JSON object';
  const s = v as Partial<HostState>;
  if (s.version !== 1) return 'unknown version';
  if (typeof s.props !== 'object' || s.props === null) return 'missing props';
  if (!Array.isArray(s.vms)) return 'missing vms';
  for (const vm of s.vms) {
    if (typeof vm !== 'object' || vm === null || typeof vm.name !== 'string' || !KLASSES.includes(vm.klass)) {
      return 'bad qube entry';
    }
    if (typeof vm.qid !== 'number' || typeof vm.uuid !== 'string' || !Array.isArray(vm.tags)) return `bad qube ${vm.name}`;
  }
  if (!s.vms.some((vm) => vm.name === 'dom0')) return 'no dom0';
  return null;
}

/** Writes the state durably: temp file, fsync, rename, fsync of the directory. */
export function writeStateFile(path: string, state: HostState, durable = true): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(state, null, 1) + '\n');
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (!durable) return;
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  }
}
