// A dom0 service that is an AF_UNIX socket: the router connects, writes the
// service descriptor as qrexec-daemon builds it, relays stdin and stdout,
// reports status 0, and closes the connection when the caller goes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { linkSync, mkdirSync, symlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import type { QrexecHost } from './helpers.js';
import { startQrexecHost, writeService } from './helpers.js';
import { encodeHeader } from '../../src/sim/qrexec/protocol.js';
import { hangBoundMs } from '../../verify/hang-bound.js';

/** A socket service that records what it was sent and answers with a fixed reply once the caller half-closes. */
function recorder(path: string, reply: string): { server: Server; seen: Buffer[]; closed: Promise<void>[] } {
  const seen: Buffer[] = [];
  const closed: Promise<void>[] = [];
  const server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      seen.push(Buffer.concat(chunks));
      sock.end(reply);
    });
    closed.push(new Promise((resolve) => sock.on('close', () => resolve())));
  });
  server.listen(path);
  return { server, seen, closed };
}

/** A socket service that never ends a call itself: it writes a newline every few milliseconds until a write fails. */
function keepalives(path: string): { server: Server; connected: Promise<void>; closed: Promise<void> } {
  let connect!: () => void;
  let close!: () => void;
  const connected = new Promise<void>((resolve) => (connect = resolve));
  const closed = new Promise<void>((resolve) => (close = resolve));
  const server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
    sock.on('error', () => undefined);
    const timer = setInterval(() => sock.write('\n'), 10);
    sock.on('close', () => {
      clearInterval(timer);
      close();
    });
    connect();
  });
  server.listen(path);
  return { server, connected, closed };
}

describe('qrexec router: socket services', () => {
  let host: QrexecHost;
  let plain: ReturnType<typeof recorder>;
  let linked: ReturnType<typeof recorder>;
  let waiter: ReturnType<typeof keepalives>;
  before(async () => {
    host = await startQrexecHost();
    const dir = join(host.dom0, 'etc', 'qubes-rpc');
    mkdirSync(dir, { recursive: true });
    plain = recorder(join(dir, 'test.Sock'), 'answer\n');
    // a link to a socket elsewhere, as qubesd's admin.* links are
    mkdirSync(join(host.dom0, 'run', 'svc'), { recursive: true });
    linked = recorder(join(host.dom0, 'run', 'svc', 'one.sock'), 'linked\n');
    symlinkSync('../../run/svc/one.sock', join(dir, 'test.Linked'));
    waiter = keepalives(join(dir, 'test.Wait'));
    // SERVICE+ARG as an executable is found before SERVICE as a socket
    writeService(host.dom0, 'test.Sock+exec', '#!/bin/sh\necho from-exec\n');
    host.policy(['test.Sock * work @adminvm allow', 'test.Sock * work vault allow target=dom0', 'test.Linked * work dom0 allow', 'test.Wait * work @adminvm allow'].join('\n') + '\n');
  });
  after(async () => {
    plain.server.close();
    linked.server.close();
    waiter.server.close();
    await host.close();
  });

  it('writes the descriptor qrexec-daemon builds, a NUL, then the caller stdin; status 0 and no stderr', async () => {
    const r = await host.call('work', '@adminvm', 'test.Sock+a1', 'payload');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.toString(), 'answer\n');
    assert.equal(r.stderr.length, 0);
    assert.deepEqual(plain.seen.at(-1), Buffer.from('test.Sock+a1 work keyword adminvm\0payload', 'latin1'));
  });

  it('appends the + of an empty argument, and names a target the caller named', async () => {
    await host.call('work', 'vault', 'test.Sock', '');
    assert.deepEqual(plain.seen.at(-1), Buffer.from('test.Sock+ work name vault\0', 'latin1'));
  });

  it('follows a link to a socket elsewhere', async () => {
    const r = await host.call('work', 'dom0', 'test.Linked', 'x');
    assert.equal(r.stdout.toString(), 'linked\n');
    assert.deepEqual(linked.seen.at(-1), Buffer.from('test.Linked+ work name dom0\0x', 'latin1'));
  });

  it('finds SERVICE+ARG before SERVICE whatever their kinds', async () => {
    const r = await host.call('work', '@adminvm', 'test.Sock+exec', '');
    assert.equal(r.stdout.toString(), 'from-exec\n');
  });

  it('reports 125 when nothing listens on the socket', async () => {
    const dir = join(host.dom0, 'etc', 'qubes-rpc');
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(join(dir, 'test.Dead'), resolve));
    // closing unlinks a Unix socket, so a second path keeps a socket file nobody listens on
    linkSync(join(dir, 'test.Dead'), join(dir, 'test.Deaf'));
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    host.policy('test.Deaf * work @adminvm allow\n', '20-deaf.policy');
    const r = await host.call('work', '@adminvm', 'test.Deaf', '');
    assert.equal(r.status, 125);
  });

  it('closes the connection once the caller goes', async () => {
    // the service waits as the gate does, writing a keepalive now and then; it learns the caller went only from a failed write
    const sock = connect(host.router.socketFor('work'));
    await new Promise<void>((resolve) => sock.once('connect', resolve));
    sock.write(encodeHeader({ target: '@adminvm', service: 'test.Wait' }));
    await waiter.connected;
    sock.destroy();
    const bound = hangBoundMs(30_000);
    const ended = await Promise.race([waiter.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), bound).unref())]);
    assert.ok(ended, 'the router kept the connection to the service open after its caller went');
  });
});
