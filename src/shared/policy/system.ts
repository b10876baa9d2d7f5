import type { DomainInfo, SystemInfo } from './types.js';
import { QmcpError } from '../errors.js';

const hasOwnProperty = Object.prototype.hasOwnProperty;

/**
 * System info as one evaluation reads it: a domain by name or by `uuid:UUID`,
 * as the policy daemon indexes qubesd's system info. Nothing is built or kept
 * across evaluations, so a verdict always reads the system info it was given.
 */
export class Domains {
  /** The domain the last `scan` found. */
  private found: DomainInfo | undefined;

  constructor(private readonly domains: Readonly<Record<string, DomainInfo>>) {}

  /** The name a name or `uuid:UUID` stands for, or undefined. */
  nameOf(key: string): string | undefined {
    if (key.startsWith('uuid:')) return this.scan(key);
    return Object.hasOwn(this.domains, key) ? key : undefined;
  }

  /** The domain a name or `uuid:UUID` stands for, or undefined, by one own-property test for a name. */
  get(key: string): DomainInfo | undefined {
    if (key.startsWith('uuid:')) return this.find(key);
    return Object.hasOwn(this.domains, key) ? this.domains[key] : undefined;
  }

  /**
   * `get` for a key the caller chose, at the same cost whether it names a
   * domain or not: an own-property test costs more for a missing key than for
   * a present one, so every domain is visited and compared instead.
   */
  find(key: string): DomainInfo | undefined {
    this.scan(key);
    return this.found;
  }

  /**
   * Visits every domain, never stopping early, and compares each with the key
   * the same way whether it matches or not. A `uuid:UUID` names the last
   * domain with that uuid (a domain without a uuid has no `uuid:` spelling),
   * else the domain of that name, as qrexec's index does.
   */
  private scan(key: string): string | undefined {
    const domains = this.domains;
    // A domain without a uuid has no `uuid:` spelling. The uuid is compared whole (===, not a
    // prefix test that stops at the first difference), so the time says nothing of how much of
    // it some domain shares.
    const uuid = key.startsWith('uuid:') && key.length > 5 ? key.slice(5) : null;
    let name: string | undefined;
    let domain: DomainInfo | undefined;
    let uuidName: string | undefined;
    let uuidDomain: DomainInfo | undefined;
    for (const n in domains) {
      // This form, in a for-in loop, V8 answers from the loop's own state; Object.hasOwn it does not.
      if (!hasOwnProperty.call(domains, n)) continue;
      const d = domains[n] as DomainInfo;
      if (n === key) {
        name = n;
        domain = d;
      }
      if (d.uuid === uuid) {
        uuidName = n;
        uuidDomain = d;
      }
    }
    const viaUuid = uuidName !== undefined;
    this.found = viaUuid ? uuidDomain : domain;
    return viaUuid ? uuidName : name;
  }

  /** Visits every domain by name (a callback, not an iterator: an `ask` visits them for each rule). */
  each(visit: (name: string, domain: DomainInfo) => void): void {
    for (const name in this.domains) {
      const domain = Object.hasOwn(this.domains, name) ? this.domains[name] : undefined;
      if (domain !== undefined && !name.startsWith('uuid:')) visit(name, domain);
    }
  }
}

/**
 * What a rule sees of a qube that does not exist: a domain of the shape
 * qubesd reports (its fields in qubesd's order, so that it shares the hidden
 * class of the real ones), with no type and no uuid, and the two tags Qubes
 * gives a qube whose GUI and audio run in dom0 (`guivm-dom0`,
 * `audiovm-dom0`), so that `@tag:` compares as many of the same lengths. They
 * are spelled with a space, which no rule's token can hold, so no rule
 * matches them.
 */
export const NO_DOMAIN: DomainInfo = JSON.parse(
  JSON.stringify({
    internal: null,
    tags: ['guivm dom0', 'audiovm dom0'],
    type: '',
    template_for_dispvms: false,
    default_dispvm: null,
    icon: '',
    label: '',
    guivm: null,
    relayvm: null,
    transport_rpc: null,
    power_state: '',
    // As long as a uuid, and no rule's `uuid:X` can spell it either.
    uuid: ' '.repeat(36),
  }),
) as DomainInfo;

export function domainsOf(system: SystemInfo): Domains {
  return new Domains(system.domains);
}

/** dom0, `@adminvm` and the all-zero uuid all name the admin qube. */
export function isDom0(value: string | null): boolean {
  // Comparisons rather than a set: a set's cost depends on the bucket the value hashes to.
  return value === 'dom0' || value === '@adminvm' || value === 'uuid:00000000-0000-0000-0000-000000000000';
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
