/**
 * The qrexec services Qubes itself installs in dom0 that the simulator
 * answers. As in dom0 (qubes-core-admin qubes-rpc/), each is a script that
 * hands the call to qubesd's misc socket with qubesd-query and discards its
 * output, so the caller sees only the exit status.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shQuote } from '../../dom0/install/wrapper.js';

/** The service, and whether qubesd-query passes the caller's stdin on as the payload. */
const MISC_SERVICES: readonly { service: string; payload: boolean }[] = [{ service: 'qubes.NotifyUpdates', payload: true }];

const QUERY_MAIN = fileURLToPath(new URL('../qubesd/query-main.js', import.meta.url));

/** Writes DOM0ROOT/etc/qubes-rpc/SERVICE for each, every start: the node and paths may have moved. */
export function installQubesRpcServices(dom0Root: string, miscSocket: string, node: string = process.execPath): void {
  const dir = join(dom0Root, 'etc', 'qubes-rpc');
  mkdirSync(dir, { recursive: true });
  for (const { service, payload } of MISC_SERVICES) {
    const script = [
      '#!/bin/sh',
      `# ${service} of the simulated dom0: as Qubes' own, the call goes to qubesd's misc socket.`,
      `exec ${shQuote(node)} ${shQuote(QUERY_MAIN)} -c ${shQuote(miscSocket)}${payload ? '' : ' -e'} --fail \\`,
      `  "$QREXEC_REMOTE_DOMAIN" ${service} dom0 "" >/dev/null 2>&1`,
      '',
    ].join('\n');
    const path = join(dir, service);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, script, { mode: 0o755 });
    renameSync(tmp, path);
  }
}
