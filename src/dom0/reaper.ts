/**
 * One run of the reaper, over every principal's world in turn, each with
 * its own settings: its tombstones past its retention are destroyed, with
 * every veto of tombstones/operator.ts, and its qubes whose lease is over
 * end as a remove would (leases/expire.ts). Unusable settings destroy and
 * end nothing. A tombstone in no principal's world (its principal was
 * removed) is kept, and each run says so: no retention governs it. Then
 * the per-call services' rate-limit counts past their window are written
 * (service/compose.ts), which otherwise wait for some admitted call. The
 * clock is the caller's, so a test can move it.
 */
import { resolve } from 'node:path';
import { openAudit } from './audit/index.js';
import { readWorlds } from './create/settings.js';
import { Qubesd } from './qubesd.js';
import { dom0Host, writeOverdueRefusals } from './service/compose.js';
import { listOrphans, orphanKept, reapTombstones } from './tombstones/operator.js';
import { acquireBudgetLock } from './create/lock.js';
import { expireLeases, expiryLines } from './leases/expire.js';

const DEFAULT_SOCKET = '/var/run/qubesd.sock';
const LOCK_WAIT_MS = 30_000;

/** Reads QMCP_ROOT and QMCP_QUBESD_SOCKET as the dom0 services do; resolves to the exit status. */
export async function reap(env: NodeJS.ProcessEnv, now: Date, say: (line: string) => void): Promise<number> {
  const root = resolve(env['QMCP_ROOT'] || '/');
  const qubesd = new Qubesd(env['QMCP_QUBESD_SOCKET'] || DEFAULT_SOCKET);
  const audit = openAudit({ root });
  const worlds = readWorlds(root, (m) => say(`settings: ${m}`));
  const principals = worlds.flatMap((w) => (w.principal === null ? [] : [w.principal]));
  // the budget lock is the machine's: creates, removes, restores and renewals of every principal take the same one
  const lock = () => acquireBudgetLock(root, LOCK_WAIT_MS);
  let status = 0;
  for (const w of worlds) {
    // with several principals each line says whose world it is about
    const of = (line: string): string => (worlds.length > 1 ? `${w.principal}: ${line}` : line);
    const ops = { qubesd, settings: w.settings, audit, operator: 'qmcp-reaper', principals, lock, ...(w.owner ? { owner: w.owner } : {}) };
    const result = await reapTombstones(ops, now);
    if (result.refused) say(of(`nothing destroyed: ${result.refused}`));
    for (const name of result.reaped) say(of(`reaped ${name}`));
    for (const k of result.kept) say(of(`kept ${k.name}: ${k.reason}`));
    const leases = await expireLeases(ops, now);
    for (const line of expiryLines(leases)) say(of(line));
    if (result.refused || leases.refused) status = 1;
  }
  // unusable settings name no principal, and every owned tombstone would read as an orphan
  if (principals.length > 0) for (const o of await listOrphans(qubesd, principals)) say(orphanKept(o.name, o.reason));
  // a caller refused and silent since: no call of its own, and perhaps none of anyone's, would write its count
  for (const { caller, count } of await writeOverdueRefusals(dom0Host(env, 'per-call'))) say(`rate-limit refusals of ${caller} written: ${count}`);
  return status;
}
