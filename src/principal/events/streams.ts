/**
 * Event streams kept by the MCP server. While any stream is live, one pump
 * keeps a dom0 window (qmcp.Events+SECONDS) open back to back and hands each
 * window's rows to every live stream; a poll returns the rows after its
 * cursor. All streams of one server belong to the same principal and dom0
 * filters every row, so one pump serves them all and uses one qrexec slot.
 * This is a convenience, not a control: dom0 decides what any row may say.
 */
import { dom0Call } from '../calls.js';
import { QrexecAborted, type QrexecRunner } from '../qrexec.js';
import { Actionable } from '../results.js';
import { CursorCodec } from './cursor.js';
import { EventStream, type EventRow, type Narrowing } from './stream.js';

export const UNKNOWN_CURSOR = 'unknown or expired cursor: start a new stream without one';
export const NARROWING_WITH_CURSOR = 'only_qubes and only_events narrow a stream when it opens: leave them out when you pass a cursor, or open a new stream without a cursor';

/** Told each dom0 window's rows, unnarrowed; while any is registered the windows run. */
export type WindowListener = (rows: readonly EventRow[], gap: boolean) => void;

export interface EventStreamOptions {
  /** Length of each dom0 window, 1 to 60 seconds. */
  readonly windowSeconds?: number;
  /** Live streams at most; opening one more ends the least recently used. */
  readonly maxStreams?: number;
  /** A stream not polled for this long ends. */
  readonly idleMs?: number;
  /** Items a stream keeps for a slow reader. */
  readonly bufferSize?: number;
  /** Events one poll returns at most. */
  readonly maxPerPoll?: number;
  /** Pause after a failed window before the next. */
  readonly retryMs?: number;
  readonly now?: () => number;
}

export interface PollResult {
  events: EventRow[];
  cursor: string;
  missed?: true;
}

const DEFAULTS = {
  windowSeconds: 10,
  maxStreams: 16,
  idleMs: 10 * 60_000,
  bufferSize: 1000,
  maxPerPoll: 500,
  retryMs: 2_000,
};

/** A row as qmcp.Events sends it. */
interface WireRow {
  readonly event: string;
  readonly subject: string;
  readonly class: string | null;
  readonly time: string;
  readonly property?: string;
  readonly value?: string | number | boolean | null;
}

const isScalar = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function isRow(v: unknown): v is WireRow {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const base = typeof r['event'] === 'string' && typeof r['subject'] === 'string' && typeof r['time'] === 'string' && (r['class'] === null || typeof r['class'] === 'string');
  const extra = r['property'] === undefined ? r['value'] === undefined : typeof r['property'] === 'string' && isScalar(r['value']);
  return base && extra;
}

function toRow(r: WireRow): EventRow {
  const row = { event: r.event, qube: r.subject, class: r.class, time: r.time };
  return r.property === undefined ? row : { ...row, property: r.property, value: r.value ?? null };
}

/** One list holding every name of the lists, or undefined (no narrowing) when any list is undefined. */
function union(lists: readonly (readonly string[] | undefined)[]): string[] | undefined {
  if (lists.some((l) => l === undefined)) return undefined;
  return [...new Set(lists.flat() as string[])].sort();
}

/** Whether a window narrowed to `window` holds every row a stream narrowed to `stream` wants. */
function covers(window: Narrowing, stream: Narrowing): boolean {
  const within = (w: readonly string[] | undefined, s: readonly string[] | undefined): boolean => w === undefined || (s !== undefined && s.every((x) => w.includes(x)));
  return within(window.qubes, stream.qubes) && within(window.events, stream.events);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export class EventStreams {
  private readonly streams = new Map<string, EventStream>();
  /** Each listener, with the first window whose rows it takes. */
  private readonly listeners = new Map<WindowListener, number>();
  /** The dom0 window being kept open: its number and what it was narrowed to. */
  private window = { seq: 0, narrowing: {} as Narrowing };
  private readonly codec = new CursorCodec();
  private readonly o: Required<Omit<EventStreamOptions, 'now'>>;
  private readonly now: () => number;
  private pumpStop: AbortController | null = null;
  private pumping: Promise<void> | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly qrexec: QrexecRunner,
    options: EventStreamOptions = {},
  ) {
    const { now, ...rest } = options;
    const merged = { ...DEFAULTS, ...rest };
    this.o = { ...merged, windowSeconds: Math.min(60, Math.max(1, Math.floor(merged.windowSeconds))) };
    this.now = now ?? Date.now;
  }

  /** Live streams (for tests and shutdown). */
  get size(): number {
    return this.streams.size;
  }

  /** Whether a dom0 window is being kept open. */
  get pumpRunning(): boolean {
    return this.pumping !== null;
  }

  /**
   * A new stream at position 0 (narrowed as asked), or the rows after
   * `cursor`, waiting up to `waitSeconds` for the first.
   */
  async poll(cursor: string | undefined, waitSeconds: number, signal: AbortSignal, narrowing: Narrowing = {}): Promise<PollResult> {
    if (cursor === undefined) return { events: [], cursor: this.codec.encode({ stream: this.open(narrowing).id, count: 0 }) };
    if (narrowing.qubes !== undefined || narrowing.events !== undefined) throw new Actionable(NARROWING_WITH_CURSOR);
    const at = this.codec.decode(cursor);
    const stream = at === null ? undefined : this.streams.get(at.stream);
    if (at === null || stream === undefined || at.count > stream.total) throw new Actionable(UNKNOWN_CURSOR, 'unknown_cursor');
    stream.lastUsed = this.now();
    stream.acknowledge(at.count);
    await stream.waitForMore(at.count, waitSeconds * 1000, signal);
    if (stream.isClosed) throw new Actionable(UNKNOWN_CURSOR, 'unknown_cursor');
    stream.lastUsed = this.now();
    const read = stream.read(at.count, this.o.maxPerPoll);
    const next = this.codec.encode({ stream: stream.id, count: read.next });
    return read.missed ? { events: read.events, cursor: next, missed: true } : { events: read.events, cursor: next };
  }

  /** Tells `listener` every window's rows, until the returned function is called. */
  listen(listener: WindowListener): () => void {
    if (this.closed) return () => undefined;
    const open = this.pumping !== null;
    this.listeners.set(listener, open && covers(this.window.narrowing, {}) ? this.window.seq : this.window.seq + 1);
    this.startPump();
    return () => {
      this.listeners.delete(listener);
      this.stopIfIdle();
    };
  }

  /** Ends streams idle for too long; the pump stops with the last one. */
  sweep(): void {
    const limit = this.now() - this.o.idleMs;
    for (const s of [...this.streams.values()]) if (s.lastUsed < limit) this.end(s);
    this.stopIfIdle();
  }

  /** Ends every stream and the dom0 window; resolves when the window's child is gone. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    for (const s of [...this.streams.values()]) this.end(s);
    this.stopIfIdle();
    await this.pumping;
  }

  private open(narrowing: Narrowing): EventStream {
    if (this.closed) throw new Actionable(UNKNOWN_CURSOR, 'unknown_cursor');
    this.sweep();
    while (this.streams.size >= this.o.maxStreams) {
      const oldest = [...this.streams.values()].reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
      this.end(oldest);
    }
    // a window already open that was narrowed to less than this stream wants would hand it part of its rows
    const from = this.pumping === null || covers(this.window.narrowing, narrowing) ? this.window.seq : this.window.seq + 1;
    const s = new EventStream(CursorCodec.newStreamId(), this.o.bufferSize, this.now(), narrowing, from);
    this.streams.set(s.id, s);
    this.startPump();
    return s;
  }

  private end(s: EventStream): void {
    s.close();
    this.streams.delete(s.id);
  }

  private startPump(): void {
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(this.o.idleMs, 30_000));
      this.sweeper.unref();
    }
    if (this.pumping !== null) return;
    const stop = new AbortController();
    this.pumpStop = stop;
    this.pumping = this.pump(stop.signal).finally(() => {
      if (this.pumpStop === stop) {
        this.pumpStop = null;
        this.pumping = null;
      }
    });
  }

  private stopIfIdle(): void {
    if (this.streams.size > 0 || this.listeners.size > 0) return;
    this.pumpStop?.abort();
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /** What the next window is narrowed to: what every live stream wants, all of it for a listener. */
  private windowNarrowing(): Narrowing {
    const wants = [...this.streams.values()].map((s) => s.narrowing);
    if (this.listeners.size > 0) wants.push({});
    const qubes = union(wants.map((n) => n.qubes));
    const events = union(wants.map((n) => n.events));
    return { ...(qubes ? { qubes } : {}), ...(events ? { events } : {}) };
  }

  private async pump(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && (this.streams.size > 0 || this.listeners.size > 0)) {
      let rows: EventRow[] = [];
      let gap = false;
      const narrowing = this.windowNarrowing();
      this.window = { seq: this.window.seq + 1, narrowing };
      const seq = this.window.seq;
      const payload = narrowing.qubes === undefined && narrowing.events === undefined ? undefined : narrowing;
      try {
        const out = (await dom0Call({ qrexec: this.qrexec, signal }, 'events', String(this.o.windowSeconds), payload)) as { events?: unknown; truncated?: unknown };
        if (!Array.isArray(out.events) || !out.events.every(isRow)) throw new Error('bad window');
        rows = out.events.map(toRow);
        gap = out.truncated === true;
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof QrexecAborted) {
          // the runner is closed: the server is going away
          void this.close();
          break;
        }
        this.deliver(seq, [], true);
        await pause(this.o.retryMs, signal);
        continue;
      }
      this.deliver(seq, rows, gap);
    }
  }

  private deliver(seq: number, rows: readonly EventRow[], gap: boolean): void {
    for (const s of this.streams.values()) if (s.fromWindow <= seq) s.append(rows, gap);
    for (const [l, from] of [...this.listeners]) {
      if (from > seq) continue;
      try {
        l(rows, gap);
      } catch {
        // a listener has no say in the streams
      }
    }
  }
}

const registry = new WeakMap<QrexecRunner, EventStreams>();

/** The event streams served through this runner, made on first use. */
export function eventStreamsFor(qrexec: QrexecRunner, options?: EventStreamOptions): EventStreams {
  let streams = registry.get(qrexec);
  if (streams === undefined) {
    streams = new EventStreams(qrexec, options);
    registry.set(qrexec, streams);
  }
  return streams;
}

/** Ends the streams of this runner, if it has any. */
export async function closeEventStreams(qrexec: QrexecRunner): Promise<void> {
  await registry.get(qrexec)?.close();
}
