/**
 * Malformed requests on the simulated qubesd socket: framing errors close
 * with no bytes, unknown qubes and methods give Qubes' documented errors (an
 * unknown qube before an unknown method), nothing changes, and the server
 * keeps serving.
 */
import { connect } from 'node:net';

export interface RawReply {
  readonly bytes: Buffer;
}

/** Sends raw bytes, half-closes, and collects every byte until the server closes. */
export function rawCall(socketPath: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(socketPath, () => sock.end(request));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // The server may drop the connection before reading all we sent.
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return;
      reject(err);
    });
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

export type Expectation = 'no bytes' | 'ok' | { readonly exception: string } | 'no bytes or exception';

export interface SocketCase {
  readonly kind: string;
  readonly request: Buffer;
  readonly expect: Expectation;
}

function req(header: string, payload = ''): Buffer {
  return Buffer.concat([Buffer.from(header, 'latin1'), Buffer.from([0]), Buffer.from(payload, 'latin1')]);
}

/** The near misses of the wire grammar, each with what real qubesd does with it (qubes-facts.md). */
export function socketCases(): SocketCase[] {
  const notFound = { exception: 'QubesVMNotFoundError' };
  const protocol = { exception: 'ProtocolError' };
  return [
    { kind: 'no NUL', request: Buffer.from('admin.vm.List dom0 name dom0', 'latin1'), expect: 'no bytes' },
    { kind: 'empty', request: Buffer.alloc(0), expect: 'no bytes' },
    { kind: 'only NUL', request: Buffer.from([0]), expect: 'no bytes' },
    { kind: 'three fields', request: req('admin.vm.List dom0 name'), expect: 'no bytes' },
    { kind: 'bad DESTTYPE', request: req('admin.vm.List dom0 nome dom0'), expect: 'no bytes' },
    { kind: 'keyword default', request: req('admin.vm.List dom0 keyword default'), expect: 'no bytes' },
    { kind: 'keyword dispvm', request: req('admin.vm.List dom0 keyword dispvm'), expect: 'no bytes' },
    { kind: 'non-ASCII method', request: req('admin.vm.L\u00efst dom0 name dom0'), expect: 'no bytes' },
    { kind: 'non-ASCII argument', request: req('admin.vm.property.Get+n\u00e4me dom0 name vault'), expect: 'no bytes' },
    { kind: 'non-ASCII destination', request: req('admin.vm.List dom0 name v\u00e4ult'), expect: 'no bytes' },
    { kind: 'oversize request', request: req('admin.vm.List dom0 name dom0', 'a'.repeat(70 * 1024)), expect: 'no bytes' },
    { kind: 'unknown destination', request: req('admin.vm.List dom0 name ai-nosuch'), expect: notFound },
    { kind: 'unknown source', request: req('admin.vm.List ai-nosuch name dom0'), expect: notFound },
    { kind: 'unknown qube before unknown method', request: req('admin.vm.NoSuch dom0 name ai-nosuch'), expect: notFound },
    { kind: 'unknown method', request: req('admin.vm.NoSuch dom0 name vault'), expect: protocol },
    { kind: 'unknown method, empty', request: req(' dom0 name vault'), expect: protocol },
    { kind: 'unexpected payload', request: req('admin.vm.List dom0 name dom0', 'x'), expect: protocol },
    { kind: 'unexpected argument', request: req('admin.vm.List+x dom0 name dom0'), expect: protocol },
    { kind: 'missing argument', request: req('admin.vm.property.Get dom0 name vault'), expect: protocol },
    { kind: 'bad uuid', request: req('admin.vm.List dom0 name uuid:zz'), expect: 'no bytes or exception' },
    { kind: 'name with slash', request: req('admin.vm.List dom0 name ../vault'), expect: 'no bytes or exception' },
    { kind: 'over-long name', request: req(`admin.vm.List dom0 name ${'a'.repeat(40)}`), expect: 'no bytes or exception' },
    { kind: 'extra spaces', request: req('admin.vm.List  dom0 name dom0'), expect: 'no bytes or exception' },
    { kind: 'trailing space', request: req('admin.vm.List dom0 name dom0 '), expect: 'no bytes or exception' },
    { kind: 'property Get of a bad name', request: req('admin.vm.property.Get+no_such dom0 name vault'), expect: 'no bytes or exception' },
    { kind: 'tag Set of an invalid tag', request: req('admin.vm.tag.Set+bad/tag dom0 name vault'), expect: 'no bytes or exception' },
    { kind: 'firewall Set garbage', request: req('admin.vm.firewall.Set dom0 name vault', 'action=maybe\n'), expect: 'no bytes or exception' },
    { kind: 'property Set of a bad value', request: req('admin.vm.property.Set+memory dom0 name vault', '-5'), expect: 'no bytes or exception' },
    { kind: 'Create of a bad name', request: req('admin.vm.Create.AppVM+debian dom0 name dom0', 'name=../x label=red'), expect: 'no bytes or exception' },
    { kind: 'Create of a bad label', request: req('admin.vm.Create.AppVM+debian dom0 name dom0', 'name=ai-new label=nosuch'), expect: 'no bytes or exception' },
  ];
}

/** Whether a reply meets an expectation. */
export function meets(reply: Buffer, expect: Expectation): boolean {
  if (expect === 'no bytes') return reply.length === 0;
  const isException = reply.length >= 2 && reply[0] === 0x32 && reply[1] === 0;
  if (expect === 'ok') return reply.length >= 2 && reply[0] === 0x30 && reply[1] === 0;
  if (expect === 'no bytes or exception') return reply.length === 0 || isException;
  if (!isException) return false;
  const end = reply.indexOf(0, 2);
  return reply.subarray(2, end < 0 ? reply.length : end).toString('latin1') === expect.exception;
}

export function describe(reply: Buffer): string {
  return reply.length === 0 ? '(no bytes)' : JSON.stringify(reply.subarray(0, 120).toString('latin1'));
}
