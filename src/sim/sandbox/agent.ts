// The agent inside a running simulated qube, as qrexec-agent is inside a
// real one: it unpacks the qube's volumes at start, runs each command the
// host asks for and relays its stdio, and packs the volumes at shutdown.
// It runs as the qube's root with the qube's capabilities, so the qube can
// take it over; the host trusts nothing it says. Imports stay within this
// directory: only it is bound into the qube.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { ByteQueue, pack, unpack } from './archive.js';
import type { PackRoot, UnpackTarget } from './archive.js';
import { IN_QUBE_PRIVATE, ROOT_LAYER_MOUNTS } from './layout.js';
import { CHUNK, encodeFrame, F, FrameReader, u32, WINDOW } from './mux.js';
import type { ExitInfo, OpenRequest } from './mux.js';
import { tcpServiceAddress } from './tcp-service.js';
import type { TcpAddress } from './tcp-service.js';

interface Channel {
  onIn?(data: Buffer): void;
  onInEof?(): void;
  onSignal?(signal: string): void;
  onOutClose?(): void;
  readonly sender: Sender;
}

const channels = new Map<number, Channel>();
const children = new Set<Promise<void>>();

function send(type: number, id: number, payload?: Buffer): void {
  process.stdout.write(encodeFrame(type, id, payload));
}

function finish(id: number, info: ExitInfo): void {
  if (!channels.delete(id)) return;
  send(F.EXIT, id, Buffer.from(JSON.stringify(info)));
}

/** Sends a channel's data within the credit the host has given. */
class Sender {
  private flight = 0;
  private waiters: (() => void)[] = [];
  constructor(private readonly id: number) {}

  async write(type: number, data: Buffer): Promise<void> {
    for (let at = 0; at < data.length; at += CHUNK) {
      const piece = data.subarray(at, at + CHUNK);
      while (this.flight >= WINDOW) await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.flight += piece.length;
      send(type, this.id, piece);
    }
  }

  credit(n: number): void {
    this.flight = Math.max(0, this.flight - n);
    for (const w of this.waiters.splice(0)) w();
  }
}

function volumeRoots(volume: 'private' | 'root'): PackRoot[] {
  if (volume === 'private') return [{ name: null, dir: IN_QUBE_PRIVATE }];
  return ROOT_LAYER_MOUNTS.map(([sub, mount]) => ({ name: sub, dir: mount }));
}

function unpackTarget(volume: 'private' | 'root'): UnpackTarget {
  if (volume === 'private') return { dir: IN_QUBE_PRIVATE };
  return { roots: Object.fromEntries(ROOT_LAYER_MOUNTS.map(([sub, mount]) => [sub, mount])) };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function open(id: number, request: OpenRequest): void {
  if (channels.has(id)) return;
  // Input that comes before the channel's consumer exists waits for it.
  const early: (Buffer | null)[] = [];
  const channel: Channel = { sender: new Sender(id), onIn: (data) => early.push(data), onInEof: () => early.push(null) };
  channels.set(id, channel);
  const replay = (): void => {
    for (const item of early.splice(0)) {
      if (item === null) channel.onInEof?.();
      else channel.onIn?.(item);
    }
  };
  switch (request.kind) {
    case 'run':
      void run(id, channel, request).then(replay);
      return;
    case 'import': {
      const queue = new ByteQueue((n) => send(F.ACK_IN, id, u32(n)));
      channel.onIn = (data) => queue.push(data);
      channel.onInEof = () => queue.end();
      replay();
      unpack(queue, unpackTarget(request.volume)).then(
        () => finish(id, { code: 0, signal: null }),
        (e: unknown) => finish(id, { code: 1, signal: null, message: message(e) }),
      );
      return;
    }
    case 'export':
      pack(volumeRoots(request.volume), (chunk) => channel.sender.write(F.OUT, chunk)).then(
        () => finish(id, { code: 0, signal: null }),
        (e: unknown) => finish(id, { code: 1, signal: null, message: message(e) }),
      );
      return;
    case 'boot':
      boot(request.name).then(
        () => finish(id, { code: 0, signal: null }),
        (e: unknown) => finish(id, { code: 1, signal: null, message: message(e) }),
      );
      return;
    case 'halt':
      // Every process of the qube but this one and the namespace's init.
      try {
        process.kill(-1, 'SIGKILL');
      } catch {
        // nothing else runs
      }
      void Promise.all([...children]).then(() => finish(id, { code: 0, signal: null }));
      return;
    default:
      finish(id, { code: 125, signal: null, message: 'unknown request' });
  }
}

// What Qubes sets at each boot: the qube's name, and the user's home.
async function boot(name: string): Promise<void> {
  await mkdir(`${IN_QUBE_PRIVATE}/home/user`, { recursive: true });
  await writeFile('/etc/hostname', `${name}\n`);
  await writeFile('/etc/hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${name}\n::1\tlocalhost\n`);
}

async function findService(dir: string, candidates: readonly string[]): Promise<string | undefined> {
  for (const candidate of candidates) {
    try {
      const info = await lstat(`${dir}/${candidate}`);
      if (info.isFile() || info.isSymbolicLink()) return candidate;
    } catch {
      // try the next
    }
  }
  return undefined;
}

async function run(id: number, channel: Channel, request: Extract<OpenRequest, { kind: 'run' }>): Promise<void> {
  let argv = request.argv;
  if (request.service !== undefined) {
    const { dir, candidates, argument } = request.service;
    const found = await findService(dir, candidates);
    if (found === undefined) {
      channel.onIn = (data) => send(F.ACK_IN, id, u32(data.length));
      finish(id, { code: 127, signal: null });
      return;
    }
    const tcp = await tcpServiceAddress(`${dir}/${found}`, argument);
    if (tcp !== undefined) return serveTcp(id, channel, tcp);
    argv = [`${dir}/${found}`, ...(argument === '' ? [] : [argument])];
  }
  const [file, ...args] = argv;
  if (file === undefined) return finish(id, { code: 127, signal: null });
  let child: ChildProcess;
  try {
    child = spawn(file, args, { env: { ...request.env }, cwd: request.cwd, stdio: 'pipe', detached: true });
  } catch (e) {
    return failToStart(id, channel, file, e);
  }
  let done = false;
  let resolveChild: () => void = () => undefined;
  const gone = new Promise<void>((resolve) => (resolveChild = resolve));
  children.add(gone);
  child.once('error', (e) => {
    if (child.pid !== undefined || done) return;
    done = true;
    children.delete(gone);
    resolveChild();
    failToStart(id, channel, file, e);
  });
  const stdin = child.stdin;
  stdin?.on('error', () => undefined);
  channel.onIn = (data) => {
    if (stdin === null || stdin.destroyed || !stdin.writable) return send(F.ACK_IN, id, u32(data.length));
    stdin.write(data, () => send(F.ACK_IN, id, u32(data.length)));
  };
  channel.onInEof = () => stdin?.end();
  channel.onSignal = (signal) => {
    const number = constants.signals[signal as NodeJS.Signals];
    if (number === undefined || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal as NodeJS.Signals);
    } catch {
      child.kill(signal as NodeJS.Signals);
    }
  };
  channel.onOutClose = () => {
    child.stdout?.destroy();
    child.stderr?.destroy();
  };
  const relayed = [relay(child.stdout, F.OUT, channel.sender), relay(child.stderr, F.ERR, channel.sender)];
  child.once('close', (code, signal) => {
    void Promise.all(relayed).then(() => {
      children.delete(gone);
      resolveChild();
      if (done) return;
      done = true;
      finish(id, { code, signal });
    });
  });
}

/**
 * A TCP service: the channel is the connection, as qrexec-agent makes it
 * (exit-on-service-eof: the call ends when the peer closes). A connection
 * that cannot be made, or no address, fails the call as qrexec does (125).
 */
function serveTcp(id: number, channel: Channel, address: TcpAddress | null): void {
  const ack = (data: Buffer): void => send(F.ACK_IN, id, u32(data.length));
  if (address === null) {
    channel.onIn = ack;
    finish(id, { code: 125, signal: null });
    return;
  }
  let connected = false;
  const sock = connect({ host: address.host, port: address.port }, () => (connected = true));
  sock.on('error', () => undefined);
  channel.onIn = (data) => {
    if (sock.destroyed || !sock.writable) return ack(data);
    sock.write(data, () => ack(data));
  };
  channel.onInEof = () => sock.end();
  channel.onOutClose = () => sock.destroy();
  void relay(sock, F.OUT, channel.sender).then(() => finish(id, { code: connected ? 0 : 125, signal: null }));
}

function failToStart(id: number, channel: Channel, file: string, e: unknown): void {
  channel.onIn = (data) => send(F.ACK_IN, id, u32(data.length));
  void channel.sender.write(F.ERR, Buffer.from(`${file}: ${message(e)}\n`)).then(() => finish(id, { code: 127, signal: null }));
}

// Relays one output stream, holding it while the host's credit is used up.
function relay(stream: Readable | null, type: number, sender: Sender): Promise<void> {
  if (stream === null) return Promise.resolve();
  return new Promise((resolve) => {
    let chain = Promise.resolve();
    stream.on('data', (chunk: Buffer) => {
      stream.pause();
      chain = chain.then(() => sender.write(type, chunk)).then(() => {
        stream.resume();
      });
    });
    stream.once('close', () => void chain.then(resolve));
    stream.on('error', () => undefined);
  });
}

function dispatch(type: number, id: number, payload: Buffer): void {
  if (type === F.OPEN) {
    let request: OpenRequest;
    try {
      request = JSON.parse(payload.toString('utf8')) as OpenRequest;
    } catch {
      return;
    }
    open(id, request);
    return;
  }
  const channel = channels.get(id);
  if (channel === undefined) return;
  if (type === F.IN) channel.onIn?.(payload);
  else if (type === F.IN_EOF) channel.onInEof?.();
  else if (type === F.ACK_OUT && payload.length === 4) channel.sender.credit(payload.readUInt32BE(0));
  else if (type === F.SIGNAL) channel.onSignal?.(payload.toString('latin1'));
  else if (type === F.OUT_CLOSE) channel.onOutClose?.();
}

const reader = new FrameReader();
process.stdout.on('error', () => process.exit(0));
process.stdin.on('data', (chunk: Buffer) => {
  try {
    for (const frame of reader.push(chunk)) dispatch(frame.type, frame.id, frame.payload);
  } catch {
    process.exit(2);
  }
});
process.stdin.on('end', () => process.exit(0));
send(F.READY, 0);
