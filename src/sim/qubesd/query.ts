/**
 * qubesd-query as dom0's qrexec service scripts use it (qubes/tools/qubesd_query.py):
 * `[-c SOCKET] [-e] [--fail] SRC METHOD DEST [ARG]`, the payload from stdin
 * unless -e, qubesd's reply to stdout. Its status: 0, or with --fail the
 * reply's first byte (0 or 2), and 1 when qubesd closed without a reply.
 */
import { connect } from 'node:net';
import type { Readable, Writable } from 'node:stream';

const MAX_PAYLOAD_SIZE = 65536;
const USAGE = 'usage: qubesd-query [-c PATH] [-e] [--fail] SRC METHOD DEST [ARGUMENT]\n';

export interface QueryIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Up to `max` + 1 bytes of `stream`: one more than allowed tells a payload too long. */
function readUpTo(stream: Readable, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      stream.off('data', onData);
      stream.off('end', done);
      stream.off('error', reject);
      stream.pause();
      resolve(Buffer.concat(chunks).subarray(0, max + 1));
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (size > max) done();
    };
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('error', reject);
  });
}

export async function qubesdQuery(args: readonly string[], io: QueryIo): Promise<number> {
  let socket = '/var/run/qubesd.sock';
  let payloadFromStdin = true;
  let fail = false;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if ((a === '-c' || a === '--connect') && i + 1 < args.length) socket = args[++i] as string;
    else if (a === '-e' || a === '--empty') payloadFromStdin = false;
    else if (a === '--fail') fail = true;
    else if (a.startsWith('-') && a !== '-') {
      io.stderr.write(`${USAGE}qubesd-query: error: unrecognized arguments: ${a}\n`);
      return 2;
    } else positional.push(a);
  }
  if (positional.length < 3 || positional.length > 4) {
    io.stderr.write(`${USAGE}qubesd-query: error: wrong number of arguments\n`);
    return 2;
  }
  const [src, method, dest, arg = ''] = positional as [string, string, string, string?];
  let payload: Buffer = Buffer.alloc(0);
  if (payloadFromStdin) {
    payload = await readUpTo(io.stdin, MAX_PAYLOAD_SIZE);
    if (payload.length > MAX_PAYLOAD_SIZE) {
      io.stderr.write(`${USAGE}qubesd-query: error: Payload too long (max ${MAX_PAYLOAD_SIZE})\n`);
      return 2;
    }
  }
  const reply = await new Promise<Buffer | null>((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect({ path: socket, allowHalfOpen: true }, () => {
      sock.end(Buffer.concat([Buffer.from(`${method}+${arg} ${src} name ${dest}\0`, 'latin1'), payload]));
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      // a reset after qubesd aborted still ends the reply; anything else is no connection
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') resolve(null);
    });
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
  if (reply === null) {
    io.stderr.write(`qubesd-query: cannot connect to ${socket}\n`);
    return 1;
  }
  const first = reply[0];
  if (first === undefined || first < 0x30 || first > 0x39) return 1;
  await new Promise<void>((resolve) => io.stdout.write(reply, () => resolve()));
  return fail ? first - 0x30 : 0;
}
