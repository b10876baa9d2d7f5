/**
 * Replays real qubesd's recorded answers (test/fixtures/qubesd/calls.json,
 * written by scripts/qubesd-check/run.sh --record) against a simulated
 * qubesd, with the normalisation scripts/qubesd-check/check.py applies:
 * the same masks, so a reply agrees here exactly when it agreed there.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fleet } from '../../src/sim/fleet.js';
import { rawCall } from './helpers.js';

/** One recorded call; `reply` is real qubesd's normalised reply, null for a call replayed only to keep the state. */
export interface Step {
  readonly index: number;
  readonly method: string;
  readonly dest: string;
  readonly arg: string;
  readonly payload: string;
  readonly reply: string | null;
}

export interface Recording {
  readonly qubesCoreAdmin: string;
  readonly qubesCoreQrexec: string;
  readonly seed: number;
  readonly fleet: Fleet;
  readonly steps: readonly Step[];
}

export interface Difference {
  readonly step: Step;
  /** The simulator's normalised reply. */
  readonly got: string;
}

const here = dirname(fileURLToPath(import.meta.url));
// from dist/test/qubesd back to the repository's test/fixtures
export const RECORDING_PATH = join(here, '..', '..', '..', 'test', 'fixtures', 'qubesd', 'calls.json');

export function loadRecording(path = RECORDING_PATH): Recording {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as Omit<Recording, 'steps'> & { steps: [string, string, string, string, string | null][] };
  const steps = doc.steps.map(([method, dest, arg, payload, reply], index) => ({ index, method, dest, arg, payload, reply }));
  return { ...doc, steps };
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const DISP = /\bdisp[0-9]+\b/g;
// identities, host figures and clocks
const MASKED_PROPS = new Set(['qid', 'uuid', 'dispid', 'start_time', 'backup_timestamp', 'maxmem@dom0', 'maxmem@global', 'no_cpus@global', 'xid', 'stubdom_xid']);
// volume and pool fields naming paths, sizes or times
const MASKED_FIELDS = new Set(['path', 'size', 'usage', 'vid', 'dir_path', 'revisions', 'usage_details', 'size_details', 'source', 'data_size', 'data_usage']);
// a Python object's address in a repr qubesd prints (a qube's, in some errors)
const ADDRESS = / at 0x[0-9a-f]+/g;

/** A line's leading name with the reply's `0\0` stripped, as check.py's lstrip(b'0\0'). */
function lineKey(line: string, sep: string): string {
  const i = line.indexOf(sep);
  return (i < 0 ? line : line.slice(0, i)).replace(/^[0\0]+/, '');
}

function masked(name: string, where: string): boolean {
  return MASKED_PROPS.has(name) || MASKED_PROPS.has(`${name}@${where}`);
}

function maskBody(method: string, dest: string, arg: string, reply: string): string {
  const where = method.startsWith('admin.property.') ? 'global' : dest;
  switch (method) {
    case 'admin.vm.property.Get':
    case 'admin.property.Get':
    case 'admin.vm.property.GetDefault':
    case 'admin.property.GetDefault':
      return masked(arg, where) ? reply.replace(/\n+$/, '').replace(/ [^ ]*$/, ' MASKED') : reply;
    case 'admin.vm.property.GetAll':
    case 'admin.property.GetAll':
      return reply
        .split('\n')
        .map((line) => (masked(lineKey(line, ' '), where) ? line.replace(/(type=\S+) .*$/, '$1 MASKED') : line))
        .join('\n');
    case 'admin.vm.volume.Info':
    case 'admin.pool.Info':
    case 'admin.pool.UsageDetails':
      return reply
        .split('\n')
        .map((line) => (MASKED_FIELDS.has(lineKey(line, '=')) ? `${line.split('=', 1)[0] ?? ''}=MASKED` : line))
        .join('\n');
    case 'admin.vm.volume.CloneFrom':
      return reply.startsWith('0\0') ? '0\0TOKEN' : reply;
    case 'admin.vm.volume.ListSnapshots':
      return reply.startsWith('0\0') ? '0\0' : reply;
    default:
      return reply;
  }
}

/** A reply (latin1) as check.py normalises it: what must differ between two hosts masked, nothing else. */
export function normalise(method: string, dest: string, arg: string, reply: string): string {
  if (reply.startsWith('2\0')) {
    // type and message; the traceback field is empty without qubesd's --debug
    const parts = reply.split('\0');
    return ['2', parts[1] ?? '', parts.slice(3).join('\0').replace(ADDRESS, ' at 0xADDR')].join('\0').replace(UUID, 'UUID');
  }
  return maskBody(method, dest, arg, reply).replace(UUID, 'UUID').replace(DISP, 'dispN');
}

/** A call from dom0 in check.py's framing (no '+' without an argument); the reply as latin1. */
async function send(socketPath: string, step: Step): Promise<string> {
  const name = step.arg ? `${step.method}+${step.arg}` : step.method;
  const head = Buffer.from(`${name} dom0 name ${step.dest}\0`, 'latin1');
  return (await rawCall(socketPath, Buffer.concat([head, Buffer.from(step.payload, 'latin1')]))).toString('latin1');
}

/** Sends every step in order; returns the compared steps whose normalised replies differ. */
export async function replay(socketPath: string, recording: Recording): Promise<{ compared: number; differences: Difference[] }> {
  const differences: Difference[] = [];
  let compared = 0;
  for (const step of recording.steps) {
    const reply = await send(socketPath, step);
    if (step.reply === null) continue;
    compared++;
    const got = normalise(step.method, step.dest, step.arg, reply);
    if (got !== step.reply) differences.push({ step, got });
  }
  return { compared, differences };
}
