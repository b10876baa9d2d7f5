/**
 * The principals of a sequence (docs/principals.md): the first, whose world
 * is the attack fleet's umbrella, and in sequences with two a second with a
 * world of its own, the first's mirrored under its own tags, name prefix,
 * sink, egress and principal qube. A step of the second is drawn as one of
 * the first with every qube name swapped between the worlds, so each
 * principal names the other's qubes as often as the first names them.
 */
import type { Fleet, FleetQube, FleetValue } from '../../src/sim/fleet.js';
import { PRINCIPAL, TAGS } from '../malformed/host.js';
import type { Op } from './ops.js';
import { INSIDE } from './ops.js';

export interface World {
  readonly principal: string;
  readonly tags: { readonly umbrella: string; readonly sink: string; readonly exec: string; readonly net: string; readonly full: string };
  /** The owner tag dom0 stamps on what the principal's agent creates or entombs. */
  readonly owner: string;
  readonly egress: string;
  readonly prefix: string;
  /** Its sink qube. */
  readonly sink: string;
}

export const FIRST: World = { principal: PRINCIPAL, tags: TAGS, owner: `qmcp-owner-${PRINCIPAL}`, egress: 'ai-egress', prefix: 'ai-', sink: 'drop' };
export const SECOND: World = {
  principal: 'other-control',
  tags: { umbrella: 'oc-managed', sink: 'oc-dump', exec: 'oc-exec', net: 'oc-net', full: 'oc-full' },
  owner: 'qmcp-owner-other-control',
  egress: 'oc-egress',
  prefix: 'oc-',
  sink: 'oc-drop',
};

/** The first world's qubes of the attack fleet, which the second mirrors. */
const MIRRORED = new Set<string>([FIRST.principal, FIRST.sink, 'ai-tpl', FIRST.egress, ...INSIDE]);

/** A qube name of one world as the other's: principal qubes, sinks and prefixed names trade places; the rest is shared. */
export function swapName(name: string): string {
  for (const [a, b] of [
    [FIRST.principal, SECOND.principal],
    [FIRST.sink, SECOND.sink],
  ] as const) {
    if (name === a) return b;
    if (name === b) return a;
  }
  if (name.startsWith(FIRST.prefix)) return SECOND.prefix + name.slice(FIRST.prefix.length);
  if (name.startsWith(SECOND.prefix)) return FIRST.prefix + name.slice(SECOND.prefix.length);
  return name;
}

function swapTag(tag: string): string {
  const role = (Object.keys(FIRST.tags) as (keyof World['tags'])[]).find((k) => FIRST.tags[k] === tag);
  return role ? SECOND.tags[role] : tag;
}

/** Every string of a JSON value that is a qube name swapped (a payload's template, source, backend, plan steps). */
function swapJson(v: unknown): unknown {
  if (typeof v === 'string') return swapName(v);
  if (Array.isArray(v)) return v.map(swapJson);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swapJson(x)]));
  return v;
}

/** The step a drawn step is when the second principal makes it: every qube it names swapped, payloads that are JSON included. */
export function asSecond(op: Op): Op {
  const plus = op.service.indexOf('+');
  const service = plus < 0 ? op.service : `${op.service.slice(0, plus)}+${swapName(op.service.slice(plus + 1))}`;
  let payload = op.payload;
  if (payload.startsWith('{')) payload = JSON.stringify(swapJson(JSON.parse(payload)));
  return {
    ...op,
    principal: SECOND.principal,
    service,
    target: op.target === '@adminvm' || op.target === '' ? op.target : swapName(op.target),
    payload,
    creates: op.creates ? { ...op.creates, name: swapName(op.creates.name), source: swapName(op.creates.source) } : null,
    names: op.names.map(swapName),
    ...(op.restores !== undefined ? { restores: swapName(op.restores) } : {}),
  };
}

/** The second world: the first's qubes of FLEET (drawn for the second) under the second's names and tags. */
export function secondWorld(fleet: Fleet): FleetQube[] {
  const value = (v: FleetValue): FleetValue => (typeof v === 'string' ? swapName(v) : v);
  return fleet.qubes
    .filter((q) => MIRRORED.has(q.name))
    .map((q) => ({
      ...q,
      name: swapName(q.name),
      ...(q.template !== undefined ? { template: swapName(q.template) } : {}),
      ...(q.tags ? { tags: q.tags.map(swapTag) } : {}),
      ...(q.properties ? { properties: Object.fromEntries(Object.entries(q.properties).map(([k, v]) => [k, value(v)])) } : {}),
    }));
}

/** Whether a qube is in W's world or is W's principal qube: what a step of another principal must leave alone. */
export function ofWorld(w: World, name: string, tags: readonly string[]): boolean {
  return name === w.principal || tags.includes(w.owner) || Object.values(w.tags).some((t) => tags.includes(t));
}
