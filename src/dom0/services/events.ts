/**
 * qmcp.Events+SECONDS: the events about the agent's world during one bounded
 * window, minimal payload only (SPEC §4a). The visible set is tracked as tags
 * change, so a qube that enters or leaves the umbrella mid-window is handled.
 */
import { qubesdEvents } from '../../shared/adminapi/client.js';
import type { AdminEvent } from '../../shared/adminapi/wire.js';
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

interface Known {
  tags: Set<string>;
  klass: string | null;
}

function isVisible(q: Known | undefined, rules: ScopeRules): boolean {
  if (!q || q.klass === 'AdminVM') return false;
  if (!q.tags.has(rules.umbrella) || q.tags.has(rules.sink)) return false;
  return !rules.hiding.some((t) => q.tags.has(t));
}

/** Turns the raw stream into what the agent may see, one event at a time. */
export class EventFilter {
  readonly rows: EventRow[] = [];
  truncated = false;
  constructor(
    private readonly rules: ScopeRules,
    private readonly qubes: Map<string, Known>,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  push(ev: AdminEvent): void {
    const subject = ev.subject || (ev.event === 'domain-add' || ev.event === 'domain-delete' ? kwarg(ev, 'vm') : '');
    if (!subject) return;
    const tag = /^domain-tag-(add|delete):(.+)$/.exec(ev.event);
    if (tag) return this.tagChange(subject, tag[1] === 'add', tag[2] as string);
    if (ev.event === 'domain-add') {
      this.qubes.set(subject, { tags: new Set(), klass: null });
      return;
    }
    const wasVisible = isVisible(this.qubes.get(subject), this.rules);
    if (ev.event === 'domain-delete') {
      if (wasVisible) this.emit('domain-delete', subject);
      this.qubes.delete(subject);
      return;
    }
    if (!wasVisible) return;
    const prop = PROPERTY_EVENT.exec(ev.event);
    if (POWER_EVENTS.has(ev.event) || (prop && READABLE.has(prop[1] as string))) this.emit(ev.event, subject);
  }

  private tagChange(subject: string, added: boolean, tag: string): void {
    const q = this.qubes.get(subject) ?? { tags: new Set<string>(), klass: null };
    this.qubes.set(subject, q);
    const before = isVisible(q, this.rules);
    if (added) q.tags.add(tag);
    else q.tags.delete(tag);
    const after = isVisible(q, this.rules);
    // only the umbrella's own coming and going is told, and only across the boundary
    if (before !== after) this.emit(`domain-tag-${after ? 'add' : 'delete'}:${this.rules.umbrella}`, subject);
  }

  private emit(event: string, subject: string): void {
    if (this.rows.length >= MAX_EVENTS) {
      this.truncated = true;
      return;
    }
    this.rows.push({ event, subject, class: this.qubes.get(subject)?.klass ?? null, time: this.clock().toISOString() });
  }
}

function kwarg(ev: AdminEvent, key: string): string {
  return ev.kwargs.find(([k]) => k === key)?.[1] ?? '';
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
      // the starting set is the runner's snapshot: the same membership test as every other service
      const qubes = new Map<string, Known>();
      for (const name of (await qubesd.list()).keys()) {
        const q = snapshot.any(name);
        if (q) qubes.set(name, { tags: new Set(q.tags), klass: q.klass });
      }
      const filter = new EventFilter(rules, qubes);
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), input.seconds * 1000);
      try {
        await qubesdEvents(qubesd.socketPath, 'dom0', (ev) => filter.push(ev), stop.signal);
      } finally {
        clearTimeout(timer);
      }
      // qubes that came into view mid-window get their class now
      let events = filter.rows;
      if (events.some((r) => r.class === null)) {
        const now = await qubesd.list();
        events = events.map((r) => (r.class === null ? { ...r, class: now.get(r.subject)?.klass ?? null } : r));
      }
      return { events, truncated: filter.truncated };
    },
  };
}
