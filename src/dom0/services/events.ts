/**
 * qmcp.Events+SECONDS: the events about the agent's world during one bounded
 * window, minimal payload only (SPEC §4a). What the window knows is keyed by
 * uuid, with a name index, so a name that recurs inside one window (a
 * disposable's, or a removed and re-created qube's) is two subjects, and a
 * qube that enters or leaves the umbrella mid-window is handled.
 */
import { qubesdEvents } from '../../shared/adminapi/client.js';
import type { AdminEvent } from '../../shared/adminapi/wire.js';
import type { Qubesd } from '../qubesd.js';
import { isNotFound } from '../qubesd.js';
import type { ServiceSpec } from '../service/run.js';
import type { ScopeRules } from '../service/snapshot.js';
import { READABLE_PROPERTIES } from './info.js';

const MAX_WINDOW_SECONDS = 60;
const MAX_EVENTS = 1000;

/** Power and lifecycle events worth passing on; pre-events and everything else are dropped. */
const POWER_EVENTS = new Set([
  'domain-start',
  'domain-start-failed',
  'domain-shutdown',
  'domain-paused',
  'domain-unpaused',
  'domain-add',
  'domain-delete',
]);
const PROPERTY_EVENT = /^property-(?:set|reset):([a-z_]+)$/;
const READABLE = new Set(READABLE_PROPERTIES);

export interface EventRow {
  readonly event: string;
  readonly subject: string;
  readonly class: string | null;
  readonly time: string;
}

/** One qube as the window knows it. */
export interface QubeRecord {
  readonly uuid: string;
  readonly name: string;
  readonly klass: string | null;
  readonly tags: Iterable<string>;
}

/** Reads one qube that just appeared; null when it is already gone. */
export type QubeLookup = (name: string) => Promise<QubeRecord | null>;

interface Known {
  readonly name: string;
  readonly klass: string | null;
  readonly tags: Set<string>;
}

function isVisible(q: Known | undefined, rules: ScopeRules): boolean {
  if (!q || q.klass === 'AdminVM') return false;
  if (!q.tags.has(rules.umbrella) || q.tags.has(rules.sink)) return false;
  return !rules.hiding.some((t) => q.tags.has(t));
}

function kwarg(ev: AdminEvent, key: string): string {
  return ev.kwargs.find(([k]) => k === key)?.[1] ?? '';
}

/**
 * Turns the raw stream into what the agent may see. Events are applied in
 * order; a domain-add waits for its lookup before anything after it is applied.
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

  constructor(
    private readonly rules: ScopeRules,
    initial: Iterable<QubeRecord>,
    private readonly lookup: QubeLookup,
    private readonly clock: () => Date = () => new Date(),
  ) {
    for (const q of initial) this.remember(q.uuid, { name: q.name, klass: q.klass, tags: new Set(q.tags) });
  }

  push(ev: AdminEvent): void {
    const at = this.clock();
    this.queue = this.queue.then(() => this.apply(ev, at));
  }

  /** Resolves when every pushed event has been applied. */
  drain(): Promise<void> {
    return this.queue;
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
    const visible = isVisible(q, this.rules);
    if (ev.event === 'domain-delete') {
      if (visible && q) this.emit('domain-delete', q, at);
      if (key !== undefined) this.byUuid.delete(key);
      this.byName.delete(subject);
      return;
    }
    if (!visible || !q) return;
    const prop = PROPERTY_EVENT.exec(ev.event);
    if (POWER_EVENTS.has(ev.event) || (prop && READABLE.has(prop[1] as string))) this.emit(ev.event, q, at);
  }

  /**
   * Qubes can be born tagged without tag events (a disposable takes its
   * template's tags before domain-add fires), so the new qube is read. The
   * read may already reflect later events; those are applied again on top,
   * which tag sets absorb.
   */
  private async added(name: string, at: Date): Promise<void> {
    const found = await this.lookup(name).catch(() => null);
    const key = found && found.name === name ? found.uuid : `unread-${++this.unread}`;
    const q: Known = { name, klass: found?.klass ?? null, tags: new Set(found?.tags ?? []) };
    this.remember(key, q);
    if (isVisible(q, this.rules)) this.emit('domain-add', q, at);
  }

  private tagChange(subject: string, added: boolean, tag: string, at: Date): void {
    let key = this.byName.get(subject);
    let q = key === undefined ? undefined : this.byUuid.get(key);
    if (q === undefined) {
      // a qube the window was never told about: only what the events say
      key = `unread-${++this.unread}`;
      q = { name: subject, klass: null, tags: new Set<string>() };
      this.remember(key, q);
    }
    const before = isVisible(q, this.rules);
    if (added) q.tags.add(tag);
    else q.tags.delete(tag);
    const after = isVisible(q, this.rules);
    // only the umbrella's own coming and going is told, and only across the boundary
    if (before !== after) this.emit(`domain-tag-${after ? 'add' : 'delete'}:${this.rules.umbrella}`, q, at);
  }

  private emit(event: string, q: Known, at: Date): void {
    if (this.rows.length >= MAX_EVENTS) {
      this.truncated = true;
      return;
    }
    this.rows.push({ event, subject: q.name, class: q.klass, time: at.toISOString() });
  }
}

function lookupIn(qubesd: Qubesd): QubeLookup {
  return async (name) => {
    try {
      const row = (await qubesd.list(name)).get(name);
      if (!row?.uuid) return null;
      const tags = row.klass === 'AdminVM' ? [] : await qubesd.tags(name);
      return { uuid: row.uuid, name, klass: row.klass, tags };
    } catch (err) {
      // gone again before it could be read: as if never seen
      if (isNotFound(err)) return null;
      throw err;
    }
  };
}

export function eventsService(rules: ScopeRules): ServiceSpec<{ seconds: number }> {
  return {
    operation: 'events',
    changesState: false,
    parse(argument, payload) {
      if (payload.length !== 0 || !/^[1-9][0-9]?$/.test(argument)) return null;
      const seconds = Number(argument);
      return seconds <= MAX_WINDOW_SECONDS ? { seconds } : null;
    },
    targets: () => [],
    async handle({ input, qubesd, snapshot }): Promise<{ events: EventRow[]; truncated: boolean }> {
      // membership and tags come from the runner's snapshot (the same test as every other service); uuids from the listing
      const initial: QubeRecord[] = [];
      for (const [name, { uuid }] of await qubesd.list()) {
        const q = snapshot.any(name);
        if (q && uuid) initial.push({ uuid, name, klass: q.klass, tags: q.tags });
      }
      const filter = new EventFilter(rules, initial, lookupIn(qubesd));
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
