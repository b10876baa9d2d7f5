import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChainHead } from './append.js';
import { GENESIS_HASH, parseLine } from './entry.js';
import type { ChainFile } from './files.js';
import { auditLogPath, chainFiles } from './files.js';
import type { PrunePoint } from './prune.js';
import { prunePointOf } from './prune.js';
import type { AuditWitness } from './witness.js';
import { defaultWitness } from './witness.js';

/** One place where the chain is not what the appender wrote. */
export interface AuditProblem {
  readonly file: string;
  /** 1-based line in that file; null for a whole file or the witness. */
  readonly line: number | null;
  /** The seq the line claims, when it could be read. */
  readonly seq: number | null;
  readonly what: string;
}

export interface AuditReport {
  readonly valid: boolean;
  /** The files walked, oldest first. */
  readonly files: readonly string[];
  readonly entries: number;
  readonly head: ChainHead | null;
  /** Where the oldest kept entries were pruned (retention), when they were; null for a chain from seq 1. */
  readonly pruned: { readonly through: PrunePoint; readonly at: string; readonly checkpointSeq: number } | null;
  /** The newest head the witness holds. */
  readonly witnessed: ChainHead | null;
  readonly problems: readonly AuditProblem[];
  /** Facts that do not break the chain, e.g. entries past the last witnessed head. */
  readonly notes: readonly string[];
}

export interface VerifyOptions {
  readonly root: string;
  /** Defaults as for openAudit; null skips the witness (the report then says so). */
  readonly witness?: AuditWitness | null;
}

interface Place {
  readonly file: string;
  readonly line: number;
  readonly hash: string;
}

async function readOrEmpty(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** What one walk over the files found. */
interface Walk {
  readonly files: string[];
  readonly problems: AuditProblem[];
  readonly notes: string[];
  /** Where each seq first appears, for the witness check. */
  readonly places: Map<number, Place>;
  /** The checkpoints retention wrote, with where and when. */
  readonly checkpoints: { readonly point: PrunePoint; readonly seq: number; readonly time: string; readonly file: string; readonly line: number }[];
  /** The first entry read, when the chain does not start at genesis. */
  start: { readonly seq: number; readonly prev: string; readonly file: string; readonly line: number } | null;
  entries: number;
  lastSeq: number;
  head: ChainHead | null;
  /** The live file ended inside a line: cut short, or an append in flight. */
  tornLive: boolean;
}

/**
 * Checks each line's form and hash, that seqs run 1, 2, 3, … without a gap,
 * and that each prev is the hash of the entry before, across rotated files.
 */
async function walkChain(logPath: string, chain: readonly ChainFile[]): Promise<Walk> {
  const walk: Walk = { files: [], problems: [], notes: [], places: new Map(), checkpoints: [], start: null, entries: 0, lastSeq: 0, head: null, tornLive: false };
  const { problems } = walk;
  // the first entry may follow a prune point; checkChainStart decides whether one vouches for it
  let expectedSeq: number | null = null;
  let prevHash = GENESIS_HASH;

  // rotated files run on from the oldest kept one: pruning removes from the front only
  const first = chain[0]?.index ?? 1;
  chain.forEach((f, i) => {
    if (f.index !== null && f.index !== first + i) {
      problems.push({ file: `${logPath}.${first + i}`, line: null, seq: null, what: 'rotated file is missing' });
    }
  });

  for (const { path, index } of chain) {
    const text = await readOrEmpty(path);
    if (text === null) {
      if (index === null && chain.length > 1) walk.notes.push(`${path} does not exist yet (rotated just now?)`);
      continue;
    }
    walk.files.push(path);
    if (text === '') continue;
    const lines = text.split('\n');
    const torn = lines.pop() !== '';
    if (torn) lines.push(text.slice(text.lastIndexOf('\n') + 1));
    if (torn && index === null) walk.tornLive = true;
    lines.forEach((line, i) => {
      const at = { file: path, line: i + 1 };
      if (torn && i === lines.length - 1) {
        problems.push({ ...at, seq: null, what: 'last line is cut short (no newline): tail truncated inside a line' });
        return;
      }
      const parsed = parseLine(line);
      if ('problem' in parsed) {
        const seq = claimedSeq(line);
        problems.push({ ...at, seq, what: `entry altered: ${parsed.problem}` });
        if (seq !== null) expectedSeq = seq + 1;
        prevHash = '';
        return;
      }
      const { entry } = parsed;
      walk.entries += 1;
      if (expectedSeq === null && (entry.seq !== 1 || entry.prev !== GENESIS_HASH)) {
        walk.start = { seq: entry.seq, prev: entry.prev, ...at };
      } else if (expectedSeq === null) {
        // the chain starts at genesis
      } else if (entry.seq !== expectedSeq) {
        const gap = entry.seq - expectedSeq;
        const what = gap > 0
          ? `expected seq ${expectedSeq}, found ${entry.seq}: ${gap} entr${gap === 1 ? 'y' : 'ies'} missing before this line (deleted or moved)`
          : `expected seq ${expectedSeq}, found ${entry.seq}: entries inserted or reordered before this line`;
        problems.push({ ...at, seq: entry.seq, what });
      } else if (prevHash !== '' && entry.prev !== prevHash) {
        const before = i === 0 ? 'the last entry of the previous file' : `line ${i}`;
        problems.push({ ...at, seq: entry.seq, what: `prev does not match the hash of ${before}: that entry was rewritten or an entry was inserted` });
      }
      if (!walk.places.has(entry.seq)) walk.places.set(entry.seq, { ...at, hash: entry.hash });
      const point = prunePointOf(entry);
      if (point) walk.checkpoints.push({ point, seq: entry.seq, time: entry.time, ...at });
      expectedSeq = entry.seq + 1;
      prevHash = entry.hash;
      walk.head = { seq: entry.seq, hash: entry.hash };
    });
  }
  walk.lastSeq = (expectedSeq ?? 1) - 1;
  return walk;
}

/**
 * A chain that does not start at genesis must start right after a prune
 * point some checkpoint in it records, linking to the hash it records; and
 * every checkpoint whose point is still in the chain (a prune cut short
 * before its delete) must record that entry's hash.
 */
function checkChainStart(walk: Walk): AuditReport['pruned'] {
  for (const c of walk.checkpoints) {
    const place = walk.places.get(c.point.seq);
    if (place && place.hash !== c.point.hash) {
      walk.problems.push({ file: c.file, line: c.line, seq: c.seq, what: `checkpoint records seq ${c.point.seq} with a hash the chain does not have: rewritten` });
    }
  }
  if (walk.start === null) return null;
  const { prev, ...start } = walk.start;
  const vouching = walk.checkpoints.find((c) => c.point.seq === start.seq - 1);
  if (vouching === undefined) {
    const what = start.seq === 1
      ? 'the first entry does not link to genesis: rewritten'
      : `chain starts at seq ${start.seq} but no checkpoint records a prune through seq ${start.seq - 1}: entries deleted`;
    walk.problems.push({ ...start, what });
    return null;
  }
  if (vouching.point.hash !== prev) {
    walk.problems.push({ ...start, what: `prev does not match the hash the checkpoint at seq ${vouching.seq} records for the pruned seq ${start.seq - 1}` });
    return null;
  }
  walk.notes.push(`entries through seq ${vouching.point.seq} (hash ${vouching.point.hash}) were pruned at ${vouching.time}, checkpoint at seq ${vouching.seq}`);
  return { through: vouching.point, at: vouching.time, checkpointSeq: vouching.seq };
}

/** The seq an unreadable line claims, if any, to say where it is. */
function claimedSeq(line: string): number | null {
  try {
    const claimed = (JSON.parse(line) as { seq?: unknown }).seq;
    return Number.isSafeInteger(claimed) ? (claimed as number) : null;
  } catch {
    return null;
  }
}

function sameFiles(a: readonly ChainFile[], b: readonly ChainFile[]): boolean {
  return a.length === b.length && a.every((f, i) => f.path === b[i]?.path);
}

/** Every witnessed head must be in the chain with the same hash, and the chain must reach the newest. */
function checkWitness(walk: Walk, logPath: string, name: string, heads: ChainHead[] | null): ChainHead | null {
  const { problems, lastSeq } = walk;
  if (heads === null) {
    problems.push({ file: name, line: null, seq: null, what: 'witness cannot be read: tail truncation cannot be ruled out' });
    return null;
  }
  if (heads.length === 0) {
    if (lastSeq > 0) problems.push({ file: name, line: null, seq: null, what: `witness holds no head but the log has ${lastSeq} entries` });
    return null;
  }
  const newest = heads.reduce((a, b) => (b.seq > a.seq ? b : a));
  if (newest.seq > lastSeq) {
    problems.push({ file: logPath, line: null, seq: lastSeq, what: `log ends at seq ${lastSeq} but the witness saw seq ${newest.seq}: tail truncated` });
  } else if (newest.seq < lastSeq) {
    const lag = lastSeq - newest.seq;
    walk.notes.push(`${lag} entr${lag === 1 ? 'y' : 'ies'} after the last witnessed head (seq ${newest.seq})`);
  }
  const reported = new Set<number>();
  for (const h of heads) {
    const place = walk.places.get(h.seq);
    if (place && place.hash !== h.hash && !reported.has(h.seq)) {
      reported.add(h.seq);
      problems.push({ file: place.file, line: place.line, seq: h.seq, what: 'entry differs from the head the witness recorded: rewritten' });
    }
  }
  return newest;
}

const WALK_ATTEMPTS = 5;
const RETRY_DELAY_MS = 20;

/**
 * Walks the chain from its genesis through every file, then checks it
 * against the witness. Takes no lock, so services keep appending; a walk
 * during which a rotation happened, or that ended inside a line (which may
 * be an append in flight), is done again.
 */
export async function verifyAudit(options: VerifyOptions): Promise<AuditReport> {
  const logPath = auditLogPath(options.root);
  // The witness is read first: a head is recorded only after its entry is
  // on disk, so appends racing with the walk cannot look like truncation.
  const witness = options.witness === undefined ? defaultWitness(options.root) : options.witness;
  const heads = witness === null ? null : await witness.heads();

  let chain = await chainFiles(logPath);
  let walk: Walk;
  for (let attempt = 1; ; attempt++) {
    walk = await walkChain(logPath, chain);
    const now = await chainFiles(logPath);
    if (sameFiles(chain, now) && !walk.tornLive) break;
    if (attempt === WALK_ATTEMPTS) {
      if (!sameFiles(chain, now)) walk.notes.push('the log rotated during every walk: run verify again');
      break;
    }
    if (walk.tornLive) await sleep(RETRY_DELAY_MS);
    chain = now;
  }

  const pruned = checkChainStart(walk);
  let witnessed: ChainHead | null = null;
  if (witness === null) walk.notes.push('no witness checked: a truncated tail would go unnoticed');
  else witnessed = checkWitness(walk, logPath, witness.name, heads);

  const { files, entries, head, problems, notes } = walk;
  return { valid: problems.length === 0, files, entries, head, pruned, witnessed, problems, notes };
}
