/** One qrexec call straight to the simulated router, as a qube's qrexec-client-vm would make it. */
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { qrexecCall } from '../src/sim/qrexec/client.js';

export interface RouterReply {
  readonly status: number;
  readonly stdout: Buffer;
}

function collector(chunks: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
}

export async function routerCall(dir: string, source: string, target: string, service: string, payload = ''): Promise<RouterReply> {
  const stdin = new PassThrough();
  stdin.end(payload);
  const out: Buffer[] = [];
  const status = await qrexecCall(join(dir, 'qrexec', `${source}.sock`), target, service, {
    stdin,
    stdout: collector(out),
    stderr: collector([]),
  });
  return { status, stdout: Buffer.concat(out) };
}
