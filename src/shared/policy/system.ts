import type { DomainInfo, SystemInfo } from './types.js';
import { QmcpError } from '../errors.js';

/** A domain entry that also knows its own name. */
export interface Domain extends DomainInfo {
  name: string;
}

/**
 * Domains reachable by name and by `uuid:UUID`, as the policy daemon indexes
 * qubesd's system info before evaluating anything.
 */
export type DomainIndex = ReadonlyMap<string, Domain>;

export function indexSystem(system: SystemInfo): DomainIndex {
  const index = new Map<string, Domain>();
  for (const [name, info] of Object.entries(system.domains)) index.set(name, { ...info, name });
  for (const domain of [...index.values()]) {
    if (domain.uuid) index.set(`uuid:${domain.uuid}`, domain);
  }
  return index;
}

const DOM0_SPELLINGS = new Set(['@adminvm', 'dom0', 'uuid:00000000-0000-0000-0000-000000000000']);

/** dom0, `@adminvm` and the all-zero uuid all name the admin qube. */
export function isDom0(value: string | null): boolean {
  return value !== null && DOM0_SPELLINGS.has(value);
}

/** The name behind a `uuid:…` or `@dispvm:uuid:…` spelling; throws for an unknown uuid. */
export function uuidToName(index: DomainIndex, value: string): string {
  if (value.startsWith('uuid:')) return lookup(index, value).name;
  if (value.startsWith('@dispvm:uuid:')) return `@dispvm:${lookup(index, value.slice(8)).name}`;
  return value;
}

/** A domain that must exist; a missing one is an evaluation failure. */
export function lookup(index: DomainIndex, key: string): Domain {
  const domain = index.get(key);
  if (!domain) throw new MissingDomain(key);
  return domain;
}

/** Evaluation reached a domain that system info does not have. */
export class MissingDomain extends QmcpError {
  readonly code = 'ERR_QMCP_POLICY_MISSING_DOMAIN';

  constructor(key: string) {
    super(`no such domain in system info: ${key}`);
  }
}
