// A crash of the resident dom0 service outside any call (an uncaught
// exception) ends the process, the simulator starts it again as systemd
// would, and calls are served by the new process. A weakened service that
// swallows the exception and goes on is caught: it serves the next call
// itself, after it logged that it exits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { RESIDENT_SERVICE_UNIT } from '../../src/dom0/install/index.js';
import { decodeReply } from '../../src/shared/service-reply.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import { qrexecCollect } from '../../src/sim/qrexec/index.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { PRINCIPAL, boundaryFleet } from '../boundary/helpers.js';

/** A module the service loads first: it throws from a timer, outside any call, once the trigger file appears. */
function crashHook(dir: string, trigger: string): string {
  const path = join(dir, 'crash-hook.mjs');
  writeFileSync(
    path,
    `import { existsSync, unlinkSync } from 'node:fs';
setInterval(() => {
  if (!existsSync(${JSON.stringify(trigger)})) return;
  unlinkSync(${JSON.stringify(trigger)});
  throw new Error('injected: an exception outside any call');
}, 20);
`,
  );
  return path;
}

/** Resolves once `ok` holds, or to 'hung' at the hang bound. */
async function until(ok: () => boolean, idleMs = 5_000): Promise<'done' | 'hung'> {
  const deadline = Date.now() + hangBoundMs(idleMs);
  while (!ok()) {
    if (Date.now() > deadline) return 'hung';
    await sleep(20);
  }
  return 'done';
}

/**
 * The service logs its exit in the handler that exits, with no turn of its
 * loop between: once the line is in the journal, the crashed process serves
 * no call, so a call then served while nothing restarted was served by a
 * process that went on. That is known at once; a restart is waited for only
 * when it did not.
 */
async function crashCase(main: string): Promise<{ journal: 'done' | 'hung'; servedByCrashed: boolean; restarted: 'done' | 'hung' | 'not waited for'; newPid: boolean; served: number | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-resident-restart-'));
  const settingsFile = join(dir, 'settings.json');
  writeFileSync(settingsFile, JSON.stringify({ principal: PRINCIPAL, mode: 'least-privilege', tags: { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' } }));
  const hostDir = join(dir, 'host');
  try {
    // install, then start the service with the hook, as an edited unit would
    await (await startSimHost({ dir: hostDir, fleet: boundaryFleet, install: true, settingsFile, serviceMode: 'resident' })).close();
    const trigger = join(dir, 'crash-now');
    const unit = join(dom0Root(hostDir), RESIDENT_SERVICE_UNIT);
    const text = readFileSync(unit, 'utf8').replace(/^ExecStart=.*$/m, `ExecStart="${process.execPath}" "--import" "${pathToFileURL(crashHook(dir, trigger)).href}" "${main}"`);
    writeFileSync(unit, text);
    const log = join(dom0Root(hostDir), 'var', 'log', 'qmcp', 'service.log');
    const host = await startSimHost({ dir: hostDir });
    try {
      const resident = host.resident;
      assert.ok(resident);
      const before = resident.pid();
      const list = async (): Promise<number | null> => decodeReply((await qrexecCollect(host.router.socketFor(PRINCIPAL), '@adminvm', 'qmcp.List')).stdout)?.status ?? null;
      writeFileSync(trigger, '');
      const journal = await until(() => existsSync(log) && readFileSync(log, 'utf8').includes('exiting on an uncaught exception'));
      let served = await list();
      const servedByCrashed = served === 0 && resident.restarts() === 0;
      let restarted: 'done' | 'hung' | 'not waited for' = 'not waited for';
      if (!servedByCrashed) {
        restarted = await until(() => resident.restarts() > 0);
        if (restarted === 'done') {
          await resident.ready();
          served = await list();
        }
      }
      return { journal, servedByCrashed, restarted, newPid: resident.pid() !== before, served };
    } finally {
      await host.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('resident: a crash outside any call restarts the service, which serves the next call', async () => {
  assert.deepEqual(await crashCase(compiled('dom0/resident-main')), { journal: 'done', servedByCrashed: false, restarted: 'done', newPid: true, served: 0 });
  const swallows = weakenedFile('dom0/resident-main', 'unbind();\n        process.exit(1);', 'void 0;');
  const weak = await crashCase(swallows);
  assert.equal(weak.servedByCrashed, true, 'the weakened service that swallows the exception did not serve the next call itself');
});
