import type { DomainInfo, SystemInfo } from './types.js';
import { QmcpError } from '../errors.js';

/**
 * System info as one evaluation reads it: a domain by name or by `uuid:UUID`,
 * as the policy daemon indexes qubesd's system info. Nothing is built or kept
 * across evaluations, so a verdict always reads the system info it was given.
 */
export class Domains {
  constructor(private readonly domains: Readonly<Record<string, DomainInfo>>) {}

  /** The name a name or `uuid:UUID` stands for, or undefined. */
  nameOf(key: string): string | undefined {
    if (key.startsWith('uuid:')) {
      // Every domain is looked at, found or not, so that the scan's length says nothing about the uuid.
      let found: string | undefined;
      const uuid = key.slice(5);
      // A domain without a uuid has no `uuid:` spelling.
      for (const name in this.domains) {
        if (uuid !== '' && Object.hasOwn(this.domains, name) && this.domains[name]?.uuid === uuid) found = name;
      }
      // The own-property test too, found or not: a fresh key string costs a string-table lookup.
      const named = Object.hasOwn(this.domains, key);
      return found ?? (named ? key : undefined);
    }
    return Object.hasOwn(this.domains, key) ? key : undefined;
  }

  /** The domain a name or `uuid:UUID` stands for, or undefined. */
  get(key: string): DomainInfo | undefined {
    const name = key.startsWith('uuid:') ? this.nameOf(key) : key;
    return name !== undefined && Object.hasOwn(this.domains, name) ? this.domains[name] : undefined;
  }

  /** Visits every domain by name (a callback, not an iterator: an `ask` visits them for each rule). */
  each(visit: (name: string, domain: DomainInfo) => void): void {
    for (const name in this.domains) {
      const domain = Object.hasOwn(this.domains, name) ? this.domains[name] : undefined;
      if (domain !== undefined && !name.startsWith('uuid:')) visit(name, domain);
    }
  }
}

export function domainsOf(system: SystemInfo): Domains {
  return new Domains(system.domains);
}

const DOM0_SPELLINGS = new Set(['@adminvm', 'dom0', 'uuid:00000000-0000-0000-0000-000000000000']);

/** dom0, `@adminvm` and the all-zero uuid all name the admin qube. */
export function isDom0(value: string | null): boolean {
  return value !== null && DOM0_SPELLINGS.has(value);
}

/** The name behind a `uuid:…` or `@dispvm:uuid:…` spelling; throws for an unknown uuid. */
export function uuidToName(domains: Domains, value: string): string {
  if (value.startsWith('uuid:')) return nameOrFail(domains, value);
  if (value.startsWith('@dispvm:uuid:')) return `@dispvm:${nameOrFail(domains, value.slice(8))}`;
  return value;
}

/** The name of a domain that must exist; a missing one is an evaluation failure. */
export function nameOrFail(domains: Domains, key: string): string {
  const name = domains.nameOf(key);
  if (name === undefined) throw new MissingDomain(key);
  return name;
}

/** A domain that must exist; a missing one is an evaluation failure. */
export function lookup(domains: Domains, key: string): DomainInfo {
  const domain = domains.get(key);
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
