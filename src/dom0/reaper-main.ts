/**
 * The reaper, run by the qmcp-reaper timer only (never by an agent's call):
 * destroys the tombstones past their retention, with every veto of
 * tombstones/operator.ts; an unreadable retention setting destroys nothing.
 * Then it ends the qubes whose lease is over, as a remove would
 * (leases/expire.ts): they become tombstones, never destroyed here; unusable
 * settings end none.
 * It also writes the per-call services' rate-limit counts past their window
 * (service/compose.ts), which otherwise wait for some admitted call.
 * Reads QMCP_ROOT and QMCP_QUBESD_SOCKET as the dom0 services do.
 */
import { resolve } from 'node:path';
import { openAudit } from './audit/index.js';
import { readWriteSettings } from './create/settings.js';
import { Qubesd } from './qubesd.js';
import { dom0Host, writeOverdueRefusals } from './service/compose.js';
import { reapTombstones } from './tombstones/operator.js';
import { acquireBudgetLock } from './create/lock.js';
import { expireLeases, expiryLines } from './leases/expire.js';

const DEFAULT_SOCKET = '/var/run/qubesd.sock';
const LOCK_WAIT_MS = 30_000;

export async function main(env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): Promise<number> {
  const root = resolve(env['QMCP_ROOT'] || '/');
  const say = (line: string): void => {
    process.stdout.write(`${JSON.stringify(line).slice(1, -1)}\n`);
  };
  const ops = {
    qubesd: new Qubesd(env['QMCP_QUBESD_SOCKET'] || DEFAULT_SOCKET),
    settings: readWriteSettings(root, (m) => say(`settings: ${m}`)),
    audit: openAudit({ root }),
    operator: 'qmcp-reaper',
  };
  const result = await reapTombstones(ops, now);
  if (result.refused) say(`nothing destroyed: ${result.refused}`);
  for (const name of result.reaped) say(`reaped ${name}`);
  for (const k of result.kept) say(`kept ${k.name}: ${k.reason}`);
  const leases = await expireLeases({ ...ops, lock: () => acquireBudgetLock(root, LOCK_WAIT_MS) }, now);
  for (const line of expiryLines(leases)) say(line);
  // a caller refused and silent since: no call of its own, and perhaps none of anyone's, would write its count
  for (const { caller, count } of await writeOverdueRefusals(dom0Host(env, 'per-call'))) say(`rate-limit refusals of ${caller} written: ${count}`);
  return result.refused || leases.refused ? 1 : 0;
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.stderr.write(`qmcp-reaper: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
