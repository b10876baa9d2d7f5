// The host's end of the pipe to a qube's agent (see mux.ts): channels, the
// credit that bounds what either side buffers, and commands shaped like a
// ChildProcess. A qube's agent that breaks the protocol is treated as a
// crashed qube: its channels end and the sandbox is killed.
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { finished, Readable, Writable } from 'node:stream';
import { CHUNK, encodeFrame, F, FrameReader, u32, WINDOW } from './mux.js';
import type { ExitInfo, OpenRequest } from './mux.js';

/** What arrives on a channel from the qube. */
export type DataHandler = (stream: 'out' | 'err', data: Buffer) => void;

export class Channel {
  private flight = 0;
  private waiters: (() => void)[] = [];
  private unacked = 0;
  private ended = false;
  private info: ExitInfo | null = null;
  private resolveExit: (info: ExitInfo) => void = () => undefined;
  /** Resolves when the agent reports the end (or the link breaks). */
  readonly exited: Promise<ExitInfo>;
  /** Receives the channel's data; it must ack() every byte once it has taken it. */
  onData: DataHandler = (_stream, data) => this.ack(data.length);
  /** Called on any frame from the agent for this channel. */
  onActivity: () => void = () => undefined;

  constructor(
    private readonly link: AgentLink,
    readonly id: number,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  get done(): boolean {
    return this.info !== null;
  }

  /** Sends data within the agent's credit; after the end it is dropped. */
  async write(data: Buffer): Promise<void> {
    for (let at = 0; at < data.length && !this.done; at += CHUNK) {
      const piece = data.subarray(at, at + CHUNK);
      while (this.flight >= WINDOW && !this.done) await new Promise<void>((resolve) => this.waiters.push(resolve));
      if (this.done) return;
      this.flight += piece.length;
      this.link.send(F.IN, this.id, piece);
    }
  }

  end(): void {
    if (this.ended || this.done) return;
    this.ended = true;
    this.link.send(F.IN_EOF, this.id);
  }

  signal(name: string): void {
    if (!this.done) this.link.send(F.SIGNAL, this.id, Buffer.from(name, 'latin1'));
  }

  closeOutput(): void {
    if (!this.done) this.link.send(F.OUT_CLOSE, this.id);
  }

  ack(n: number): void {
    if (n <= 0) return;
    this.unacked -= n;
    if (!this.done) this.link.send(F.ACK_OUT, this.id, u32(n));
  }

  /** @internal */
  receive(type: number, payload: Buffer): void {
    this.onActivity();
    if (type === F.OUT || type === F.ERR) {
      this.unacked += payload.length;
      // The agent may not send past the credit it was given.
      if (this.unacked > WINDOW + CHUNK) return this.link.fail(`channel ${this.id} overran its window`);
      this.onData(type === F.OUT ? 'out' : 'err', payload);
    } else if (type === F.ACK_IN && payload.length === 4) {
      this.flight = Math.max(0, this.flight - payload.readUInt32BE(0));
      this.wake();
    } else if (type === F.EXIT) {
      this.finish(parseExit(payload));
    }
  }

  /** @internal */
  finish(info: ExitInfo): void {
    if (this.info !== null) return;
    this.info = info;
    this.wake();
    this.link.forget(this.id);
    this.resolveExit(info);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

function parseExit(payload: Buffer): ExitInfo {
  try {
    const raw = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    const code = typeof raw['code'] === 'number' && Number.isInteger(raw['code']) && raw['code'] >= 0 && raw['code'] <= 255 ? raw['code'] : null;
    const signal = typeof raw['signal'] === 'string' && raw['signal'] in constants.signals ? raw['signal'] : null;
    const message = typeof raw['message'] === 'string' ? raw['message'].slice(0, 500) : undefined;
    return { code: code === null && signal === null ? 125 : code, signal, ...(message === undefined ? {} : { message }) };
  } catch {
    return { code: 125, signal: null, message: 'unreadable exit report' };
  }
}

export class AgentLink {
  private readonly reader = new FrameReader();
  private readonly channels = new Map<number, Channel>();
  private nextId = 1;
  private brokenReason: string | null = null;
  private resolveReady: () => void = () => undefined;
  private rejectReady: (e: Error) => void = () => undefined;
  /** Resolves when the agent is up; rejects if the link breaks first. */
  readonly ready: Promise<void>;

  constructor(
    private readonly input: Writable,
    output: Readable,
    private readonly onBroken: (reason: string) => void,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    input.on('error', () => undefined);
    output.on('data', (chunk: Buffer) => {
      if (this.brokenReason !== null) return;
      try {
        for (const frame of this.reader.push(chunk)) this.dispatch(frame.type, frame.id, frame.payload);
      } catch (e) {
        this.fail(`unreadable data from the agent (${e instanceof Error ? e.message : String(e)})`);
      }
    });
    output.on('close', () => this.fail('the agent ended'));
  }

  get broken(): string | null {
    return this.brokenReason;
  }

  open(request: OpenRequest): Channel {
    const channel = new Channel(this, this.nextId++);
    if (this.brokenReason !== null) {
      channel.finish({ code: 125, signal: null, message: this.brokenReason });
      return channel;
    }
    this.channels.set(channel.id, channel);
    this.send(F.OPEN, channel.id, Buffer.from(JSON.stringify(request)));
    return channel;
  }

  /** @internal */
  send(type: number, id: number, payload?: Buffer): void {
    if (this.brokenReason === null && this.input.writable) this.input.write(encodeFrame(type, id, payload));
  }

  /** @internal */
  forget(id: number): void {
    this.channels.delete(id);
  }

  fail(reason: string): void {
    if (this.end(reason, true)) this.onBroken(reason);
  }

  /** Ends the link because the qube stops: its channels end as killed. */
  close(): void {
    this.end('the qube stopped', false);
  }

  private end(reason: string, tell: boolean): boolean {
    if (this.brokenReason !== null) return false;
    this.brokenReason = reason;
    this.rejectReady(new Error(reason));
    for (const channel of [...this.channels.values()]) channel.finish({ code: null, signal: 'SIGKILL', ...(tell ? { message: `the qube's agent failed: ${reason}` } : {}) });
    return true;
  }

  private dispatch(type: number, id: number, payload: Buffer): void {
    if (type === F.READY) return this.resolveReady();
    this.channels.get(id)?.receive(type, payload);
  }
}

/** A command running inside a qube, with the parts of ChildProcess callers use. */
export interface QubeProcess extends EventEmitter {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  /** Sends a signal to the command's process group inside the qube. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** Closes the command's stdout and stderr inside the qube, as qrexec does when the caller goes away. */
  closeOutput(): void;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/**
 * A command given its channel, or the promise of one (its qube's sandbox is
 * still coming): what the caller does meanwhile waits, in order, for the
 * channel; a channel that never comes emits 'error' and ends the command.
 */
export class QubeCommand extends EventEmitter implements QubeProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private channel: Channel | null = null;
  private readonly opened: Promise<Channel>;

  constructor(channel: Channel | Promise<Channel>) {
    super();
    const out = outputStream(() => this.channel);
    const err = outputStream(() => this.channel);
    this.stdout = out.stream;
    this.stderr = err.stream;
    const attach = (c: Channel): Channel => {
      this.channel = c;
      c.onData = (stream, data) => (stream === 'out' ? out : err).take(data);
      void c.exited.then((info) => this.ended(info));
      return c;
    };
    if (channel instanceof Channel) this.opened = Promise.resolve(attach(channel));
    else {
      this.opened = channel.then(attach);
      this.opened.catch((e: unknown) => {
        this.emit('error', e);
        this.ended({ code: 125, signal: null });
      });
    }
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        // without a channel, what is written is dropped, as after a channel's end
        this.opened.then((c) => c.write(chunk), () => undefined).then(() => callback(), callback);
      },
      final: (callback) => {
        this.use((c) => c.end());
        callback();
      },
    });
    this.stdin.on('close', () => this.use((c) => c.end()));
    process.nextTick(() => this.emit('spawn'));
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.channel?.done === true || this.exitCode !== null) return false;
    const name = typeof signal === 'number' ? SIGNAL_NAMES.get(signal) : signal;
    if (name === undefined || !(name in constants.signals)) throw new TypeError(`unknown signal: ${String(signal)}`);
    this.use((c) => c.signal(name));
    return true;
  }

  closeOutput(): void {
    this.use((c) => c.closeOutput());
  }

  // At once on an open channel, else in turn once it is open.
  private use(act: (c: Channel) => void): void {
    if (this.channel !== null) act(this.channel);
    else this.opened.then(act, () => undefined);
  }

  private ended(info: ExitInfo): void {
    this.exitCode = info.code;
    this.signalCode = info.signal as NodeJS.Signals | null;
    if (info.code === null && info.message !== undefined && !this.stderr.destroyed) this.stderr.push(`${info.message}\n`);
    const streams = [this.stdout, this.stderr];
    for (const stream of streams) {
      if (!stream.destroyed) stream.push(null);
      // As ChildProcess does: an output nobody reads is drained, so that 'close' comes.
      if (stream.readableFlowing === null) stream.resume();
    }
    this.emit('exit', this.exitCode, this.signalCode);
    let open = streams.length;
    for (const stream of streams) {
      finished(stream, () => {
        if (--open === 0) this.emit('close', this.exitCode, this.signalCode);
      });
    }
  }
}

// An output stream that returns credit as its reader takes the data; once
// destroyed by its reader, what still comes is dropped.
function outputStream(channel: () => Channel | null): { stream: Readable; take: (data: Buffer) => void } {
  let held = 0;
  const stream = new Readable({
    read: () => {
      const n = held;
      held = 0;
      // nothing is held before the channel is there
      channel()?.ack(n);
    },
  });
  return {
    stream,
    take: (data) => {
      if (stream.destroyed || stream.readableEnded) return channel()?.ack(data.length);
      if (stream.push(data)) channel()?.ack(data.length);
      else held += data.length;
    },
  };
}
