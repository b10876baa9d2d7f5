import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startQrexecHost, writeService } from './helpers.js';

test('closing the router ends the dom0 services still running and waits for them, so nothing writes under dom0 after', async () => {
  const host = await startQrexecHost();
  try {
    const pidFile = join(host.dir, 'linger.pid');
    writeService(host.dom0, 'test.Linger', `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 600\n`);
    host.policy('test.Linger * work @adminvm allow\n');
    const call = host.call('work', '@adminvm', 'test.Linger');
    // the service is running once it has written its pid
    while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim() === '') await sleep(20);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await host.router.close();
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `service ${pid} still runs after the router closed`);
    await call.catch(() => undefined);
  } finally {
    await host.close().catch(() => undefined);
  }
});
