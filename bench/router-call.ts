/** One qrexec call straight to the simulated router, as a qube's qrexec-client-vm would make it. */
import { join } from 'node:path';
import { qrexecCollect } from '../src/sim/qrexec/client.js';

export interface RouterReply {
  readonly status: number;
  readonly stdout: Buffer;
}

export async function routerCall(dir: string, source: string, target: string, service: string, payload = ''): Promise<RouterReply> {
  const { status, stdout } = await qrexecCollect(join(dir, 'qrexec', `${source}.sock`), target, service, payload);
  return { status, stdout };
}
