/**
 * One event stream's buffer: a bounded ring of items (event rows, and gap
 * markers where a dom0 window failed or was cut short), numbered from the
 * stream's start. A reader that falls behind the ring is told it missed some.
 */

export interface EventRow {
  /** One of the agent's event names (shared/event-vocabulary.ts). */
  readonly event: string;
  /** The qube the event is about (dom0 calls it the subject). */
  readonly qube: string;
  readonly class: string | null;
  readonly time: string;
  /** For property-changed: the property and its value now, redacted in dom0. */
  readonly property?: string;
  readonly value?: string | number | boolean | null;
}

/** What a stream is narrowed to when it opens; an absent field narrows nothing. */
export interface Narrowing {
  readonly qubes?: readonly string[];
  readonly events?: readonly string[];
}

export function narrowed(n: Narrowing, row: EventRow): boolean {
  return (n.qubes === undefined || n.qubes.includes(row.qube)) && (n.events === undefined || n.events.includes(row.event));
}

/** Stands in the ring where events may have been lost. */
const GAP = null;
type Item = EventRow | typeof GAP;

export interface StreamRead {
  readonly events: EventRow[];
  /** Item count after the last item read: the next cursor's position. */
  readonly next: number;
  readonly missed: boolean;
}

export class EventStream {
  private items: Item[] = [];
  /** The number of the ring's first item. */
  private base = 0;
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(
    readonly id: string,
    private readonly capacity: number,
    public lastUsed: number,
    readonly narrowing: Narrowing = {},
    /** The first dom0 window whose rows this stream takes. */
    readonly fromWindow = 0,
  ) {}

  /** Items ever appended. */
  get total(): number {
    return this.base + this.items.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  append(all: readonly EventRow[], gap: boolean): void {
    const rows = all.filter((r) => narrowed(this.narrowing, r));
    if (this.closed || (rows.length === 0 && !gap)) return;
    if (gap) this.items.push(GAP);
    this.items.push(...rows);
    const over = this.items.length - this.capacity;
    if (over > 0) {
      this.items.splice(0, over);
      this.base += over;
    }
    this.wake();
  }

  /** Drops items before `count`: the reader has them. */
  acknowledge(count: number): void {
    const n = Math.min(count - this.base, this.items.length);
    if (n <= 0) return;
    this.items.splice(0, n);
    this.base += n;
  }

  /** Up to `max` events after item `from`; missed when items after `from` are gone or were lost. */
  read(from: number, max: number): StreamRead {
    let missed = from < this.base;
    let i = Math.max(from, this.base) - this.base;
    const events: EventRow[] = [];
    while (i < this.items.length && events.length < max) {
      const item = this.items[i++] as Item;
      if (item === GAP) missed = true;
      else events.push(item);
    }
    return { events, next: this.base + i, missed };
  }

  /** Resolves when an item after `from` exists, the stream closes, the time is up or the signal aborts. */
  waitForMore(from: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.total > from || this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  close(): void {
    this.closed = true;
    this.items = [];
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
