/**
 * qmcp.Events+SECONDS: the events about the agent's world during one bounded
 * window, in the agent's terms (SPEC §4a; `shared/event-vocabulary.ts`):
 * created, removed, started, stopped, paused, a readable property changed
 * with its redacted value, firewall changed. What the window knows is keyed
 * by uuid, with a name index, so a name that recurs inside one window (a
 * disposable's, or a removed and re-created qube's) is two subjects, and a
 * qube that enters or leaves the umbrella mid-window is handled. The
 * payload may narrow the window to some qubes and some event names; the
 * narrowing applies to rows already filtered, so it can reveal nothing.
 */
import { qubesdEvents } from '../../shared/adminapi/client.js';
import type { AdminEvent } from '../../shared/adminapi/wire.js';
import { isAgentEvent, MAX_FILTER_QUBES, AGENT_EVENTS, type AgentEvent } from '../../shared/event-vocabulary.js';
import { isQubeName } from '../../shared/names.js';
import type { Qubesd } from '../qubesd.js';
import { isNotFound } from '../qubesd.js';
import type { ServiceSpec } from '../service/run.js';
import type { ScopeRules } from '../service/snapshot.js';
import { READABLE_PROPERTIES } from './info.js';
import type { PropertyValue } from './reads.js';
import { valueJson, type JsonValue } from './redact.js';

const MAX_WINDOW_SECONDS = 60;
const MAX_EVENTS = 1000;

/** Qubes' power events in the agent's terms; pre-events and everything else are dropped. */
const POWER_EVENTS: ReadonlyMap<string, AgentEvent> = new Map([
  ['domain-start', 'started'],
  ['domain-start-failed', 'start-failed'],
  ['domain-shutdown', 'stopped'],
  ['domain-paused', 'paused'],
]);
const PROPERTY_EVENT = /^property-(?:set|reset):([a-z_]+)$/;
const READABLE = new Set(READABLE_PROPERTIES);

export interface EventRow {
  readonly event: AgentEvent;
  readonly subject: string;
  readonly class: string | null;
  readonly time: string;
  /** For property-changed: which property, and its value now, redacted. */
  readonly property?: string;
  readonly value?: JsonValue;
}

/** What a window may be narrowed to; an absent field narrows nothing. */
export interface EventNarrowing {
  readonly qubes?: ReadonlySet<string>;
  readonly events?: ReadonlySet<AgentEvent>;
}

/** One qube as the window knows it. */
export interface QubeRecord {
  readonly uuid: string;
  readonly name: string;
  readonly klass: string | null;
  readonly tags: Iterable<string>;
  /** Its power state when read, if known. */
  readonly state?: string;
}

/** What the window reads from qubesd as it goes. */
export interface WindowReads {
  /** One qube that just appeared; null when it is already gone. */
  qube(name: string): Promise<QubeRecord | null>;
  /** One property's value now; null when it cannot be read (the qube is gone). */
  property(name: string, property: string): Promise<PropertyValue | null>;
}

interface Known {
  readonly name: string;
  readonly klass: string | null;
  readonly tags: Set<string>;
  /**
   * Seen complete and visible: a create's hold on it (its source marked
   * while a disposable is made from it) does not hide it from events, so
   * the agent sees no removal and re-creation of its own template.
   */
  established: boolean;
  paused: boolean;
}

function kwarg(ev: AdminEvent, key: string): string {
  return ev.kwargs.find(([k]) => k === key)?.[1] ?? '';
}

/**
 * Turns the raw stream into what the agent may see. Events are applied in
 * order; a domain-add waits for its lookup, and a property change for its
 * value, before anything after it is applied.
 */
export class EventFilter {
  readonly rows: EventRow[] = [];
  truncated = false;
  private readonly byUuid = new Map<string, Known>();
  /** The uuid that holds each name now. */
  private readonly byName = new Map<string, string>();
  private queue: Promise<void> = Promise.resolve();
  /** Keys for qubes whose uuid could not be read (gone, or never announced). */
  private unread = 0;
  /** The tag a create holds a qube with (the first hiding tag); it hides only qubes never seen complete. */
  private readonly held: string | undefined;

  constructor(
    private readonly rules: ScopeRules,
    initial: Iterable<QubeRecord>,
    private readonly reads: WindowReads,
    private readonly clock: () => Date = () => new Date(),
    private readonly narrowing: EventNarrowing = {},
  ) {
    this.held = rules.hiding[0];
    for (const q of initial) {
      const tags = new Set(q.tags);
      // a qube already in the umbrella with the hold on it is a create's source, held for a moment
      this.remember(q.uuid, { name: q.name, klass: q.klass, tags, established: tags.has(rules.umbrella), paused: q.state === 'Paused' });
    }
  }

  push(ev: AdminEvent): void {
    const at = this.clock();
    this.queue = this.queue.then(() => this.apply(ev, at));
  }

  /** Resolves when every pushed event has been applied. */
  drain(): Promise<void> {
    return this.queue;
  }

  /** Whether the agent is told about this qube now. */
  private present(q: Known | undefined): boolean {
    if (!q || q.klass === 'AdminVM') return false;
    if (!q.tags.has(this.rules.umbrella) || q.tags.has(this.rules.sink)) return false;
    return !this.rules.hiding.some((t) => q.tags.has(t) && !(t === this.held && q.established));
  }

  /** After a tag change: complete and visible makes it established, leaving the umbrella unmakes it. */
  private settle(q: Known): void {
    if (!q.tags.has(this.rules.umbrella)) q.established = false;
    else if (this.present(q) && !this.rules.hiding.some((t) => q.tags.has(t))) q.established = true;
  }

  private presentByName(name: string): boolean {
    const key = this.byName.get(name);
    return this.present(key === undefined ? undefined : this.byUuid.get(key));
  }

  private remember(key: string, q: Known): void {
    const previous = this.byName.get(q.name);
    if (previous !== undefined && previous !== key) this.byUuid.delete(previous);
    this.byUuid.set(key, q);
    this.byName.set(q.name, key);
  }

  private async apply(ev: AdminEvent, at: Date): Promise<void> {
    const lifecycle = ev.event === 'domain-add' || ev.event === 'domain-delete';
    const subject = ev.subject || (lifecycle ? kwarg(ev, 'vm') : '');
    if (!subject) return;
    const tag = /^domain-tag-(add|delete):(.+)$/.exec(ev.event);
    if (tag) return this.tagChange(subject, tag[1] === 'add', tag[2] as string, at);
    if (ev.event === 'domain-add') return this.added(subject, at);
    const key = this.byName.get(subject);
    const q = key === undefined ? undefined : this.byUuid.get(key);
    const visible = this.present(q);
    if (ev.event === 'domain-delete') {
      if (visible && q) this.emit('removed', q, at);
      if (key !== undefined) this.byUuid.delete(key);
      this.byName.delete(subject);
      return;
    }
    if (!visible || !q) return;
    const power = POWER_EVENTS.get(ev.event);
    if (power !== undefined) {
      // a start unpauses too (Qubes fires domain-unpaused on the way); only a paused qube's is told
      q.paused = power === 'paused';
      return this.emit(power, q, at);
    }
    if (ev.event === 'domain-unpaused') {
      if (q.paused) this.emit('unpaused', q, at);
      q.paused = false;
      return;
    }
    if (ev.event === 'firewall-changed') return this.emit('firewall-changed', q, at);
    const prop = PROPERTY_EVENT.exec(ev.event)?.[1];
    if (prop !== undefined && READABLE.has(prop)) return this.propertyChanged(q, prop, at);
  }

  /** The value read now, redacted by what the window knows now. */
  private async propertyChanged(q: Known, property: string, at: Date): Promise<void> {
    if (!this.wanted('property-changed', q.name)) return;
    const read = await this.reads.property(q.name, property).catch(() => null);
    const value = read === null ? null : valueJson(read, (name) => this.presentByName(name));
    this.emit('property-changed', q, at, { property, value });
  }

  /**
   * Qubes can be born tagged without tag events (a disposable takes its
   * template's tags before domain-add fires), so the new qube is read. The
   * read may already reflect later events; those are applied again on top,
   * which tag sets absorb.
   */
  private async added(name: string, at: Date): Promise<void> {
    const found = await this.reads.qube(name).catch(() => null);
    const key = found && found.name === name ? found.uuid : `unread-${++this.unread}`;
    const q: Known = { name, klass: found?.klass ?? null, tags: new Set(found?.tags ?? []), established: false, paused: false };
    this.settle(q);
    this.remember(key, q);
    if (this.present(q)) this.emit('created', q, at);
  }

  private tagChange(subject: string, added: boolean, tag: string, at: Date): void {
    let key = this.byName.get(subject);
    let q = key === undefined ? undefined : this.byUuid.get(key);
    if (q === undefined) {
      // a qube the window was never told about: only what the events say
      key = `unread-${++this.unread}`;
      q = { name: subject, klass: null, tags: new Set<string>(), established: false, paused: false };
      this.remember(key, q);
    }
    const before = this.present(q);
    if (added) q.tags.add(tag);
    else q.tags.delete(tag);
    this.settle(q);
    const after = this.present(q);
    // only the agent's world's edge is told: a qube coming into it or leaving it
    if (before !== after) this.emit(after ? 'created' : 'removed', q, at);
  }

  private wanted(event: AgentEvent, subject: string): boolean {
    const { qubes, events } = this.narrowing;
    return (qubes === undefined || qubes.has(subject)) && (events === undefined || events.has(event));
  }

  private emit(event: AgentEvent, q: Known, at: Date, extra: { property: string; value: JsonValue } | null = null): void {
    if (!this.wanted(event, q.name)) return;
    if (this.rows.length >= MAX_EVENTS) {
      this.truncated = true;
      return;
    }
    this.rows.push({ event, subject: q.name, class: q.klass, time: at.toISOString(), ...extra });
  }
}

function readsFrom(qubesd: Qubesd): WindowReads {
  const gone = (err: unknown): null => {
    // gone again before it could be read: as if never seen
    if (isNotFound(err)) return null;
    throw err;
  };
  return {
    async qube(name) {
      try {
        const row = (await qubesd.list(name)).get(name);
        if (!row?.uuid) return null;
        const tags = row.klass === 'AdminVM' ? [] : await qubesd.tags(name);
        return { uuid: row.uuid, name, klass: row.klass, tags, state: row.state };
      } catch (err) {
        return gone(err);
      }
    },
    async property(name, property) {
      try {
        const { type, value } = await qubesd.property(name, property);
        return { type, text: value };
      } catch (err) {
        return gone(err);
      }
    },
  };
}

/**
 * The payload: empty for every event, or `{"qubes": [...], "events": [...]}`
 * with either key, each a non-empty list of distinct names (qube names as
 * Qubes spells them, event names of the agent's vocabulary). Null refuses.
 */
export function parseNarrowing(payload: Buffer): EventNarrowing | null {
  if (payload.length === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const keys = Object.keys(body);
  if (keys.length === 0 || keys.some((k) => k !== 'qubes' && k !== 'events')) return null;
  const { qubes, events } = body as { qubes?: unknown; events?: unknown };
  const list = <T extends string>(v: unknown, max: number, ok: (x: unknown) => x is T): Set<T> | null | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || v.length > max || !v.every(ok)) return null;
    const set = new Set(v);
    return set.size === v.length ? set : null;
  };
  const q = list(qubes, MAX_FILTER_QUBES, isQubeName);
  const e = list(events, AGENT_EVENTS.length, isAgentEvent);
  if (q === null || e === null) return null;
  return { ...(q ? { qubes: q } : {}), ...(e ? { events: e } : {}) };
}

export function eventsService(rules: ScopeRules): ServiceSpec<{ seconds: number; narrowing: EventNarrowing }> {
  return {
    operation: 'events',
    changesState: false,
    parse(argument, payload) {
      if (!/^[1-9][0-9]?$/.test(argument)) return null;
      const seconds = Number(argument);
      const narrowing = parseNarrowing(payload);
      return seconds <= MAX_WINDOW_SECONDS && narrowing !== null ? { seconds, narrowing } : null;
    },
    targets: () => [],
    async handle({ input, qubesd, snapshot }): Promise<{ events: EventRow[]; truncated: boolean }> {
      // membership and tags come from the runner's snapshot (the same test as every other service); uuids from the listing
      const initial: QubeRecord[] = [];
      for (const [name, { uuid }] of await qubesd.list()) {
        const q = snapshot.any(name);
        if (q && uuid) initial.push({ uuid, name, klass: q.klass, tags: q.tags, state: q.state });
      }
      const filter = new EventFilter(rules, initial, readsFrom(qubesd), undefined, input.narrowing);
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), input.seconds * 1000);
      try {
        await qubesdEvents(qubesd.socketPath, 'dom0', (ev) => filter.push(ev), stop.signal);
      } finally {
        clearTimeout(timer);
      }
      await filter.drain();
      // qubes the window only knew from tag events get their class now
      let events = filter.rows;
      if (events.some((r) => r.class === null)) {
        const now = await qubesd.list();
        events = events.map((r) => (r.class === null ? { ...r, class: now.get(r.subject)?.klass ?? null } : r));
      }
      return { events, truncated: filter.truncated };
    },
  };
}
