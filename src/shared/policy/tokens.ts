import type { Domains } from './system.js';
import { isDom0, lookup, MissingDomain, NO_DOMAIN, uuidToName } from './system.js';
import type { DomainInfo } from './types.js';
import { QmcpError } from '../errors.js';

/**
 * What a domain specification is. A qube name and `uuid:…` are both `name`;
 * every `@keyword` and `*` has its own kind.
 */
export type TokenKind =
  | 'name'
  | 'wildcard'
  | 'adminvm'
  | 'anyvm'
  | 'default'
  | 'type'
  | 'tag'
  | 'dispvm'
  | 'dispvmTemplate'
  | 'dispvmTag';

/**
 * Where a token stands: the rule's source and target columns, the `target=`
 * and `default_target=` parameters, or the target the caller asked for.
 */
export type Position = 'source' | 'target' | 'redirect' | 'intended';

export interface Token {
  readonly kind: TokenKind;
  /** The token as written. */
  readonly text: string;
  /** For prefixed tokens the part after the prefix, else the whole text. */
  readonly value: string;
}

/** Which kinds each position accepts. */
export const ALLOWED: Readonly<Record<Position, ReadonlySet<TokenKind>>> = {
  source: new Set<TokenKind>(['name', 'wildcard', 'adminvm', 'anyvm', 'type', 'tag', 'dispvmTemplate', 'dispvmTag']),
  target: new Set<TokenKind>([
    'name', 'wildcard', 'adminvm', 'anyvm', 'default', 'type', 'tag', 'dispvm', 'dispvmTemplate', 'dispvmTag',
  ]),
  redirect: new Set<TokenKind>(['name', 'adminvm', 'dispvm', 'dispvmTemplate']),
  intended: new Set<TokenKind>(['name', 'adminvm', 'default', 'dispvm', 'dispvmTemplate']),
};

// Keyword spellings in the order qrexec tries them; for prefixes a longer one
// is reached when the shorter one's value starts with '@'.
const EXACT: readonly (readonly [string, TokenKind])[] = [
  ['*', 'wildcard'],
  ['@adminvm', 'adminvm'],
  ['@anyvm', 'anyvm'],
  ['@default', 'default'],
  ['@dispvm', 'dispvm'],
];
const PREFIX: readonly (readonly [string, TokenKind])[] = [
  ['@type:', 'type'],
  ['@tag:', 'tag'],
  ['@dispvm:', 'dispvmTemplate'],
  ['@dispvm:@tag:', 'dispvmTag'],
];

const POSITION_NAME: Readonly<Record<Position, string>> = {
  source: 'source',
  target: 'target',
  redirect: 'redirect',
  intended: 'intendedtarget',
};

/** A token that is not valid where it stands; `message` is qrexec's wording. */
export class TokenError extends QmcpError {
  readonly code = 'ERR_QMCP_POLICY_TOKEN';
}

/** Reads one token for a position, or throws TokenError. Names are not checked. */
export function parseToken(text: string, position: Position): Token {
  const allowed = ALLOWED[position];
  if (text.length === 0) throw new TokenError(`invalid empty ${POSITION_NAME[position]} token`);
  if (!text.startsWith('@') && text !== '*') return { kind: 'name', text, value: text };
  for (const [exact, kind] of EXACT) {
    if (allowed.has(kind) && text === exact) return { kind, text, value: text };
  }
  for (const [prefix, kind] of PREFIX) {
    if (!allowed.has(kind) || !text.startsWith(prefix)) continue;
    const value = text.slice(prefix.length);
    if (value.length === 0) throw new TokenError(`invalid empty ${prefix} token: '${text}'`);
    if (value.startsWith('@')) continue;
    return { kind, text, value };
  }
  throw new TokenError(`invalid ${POSITION_NAME[position]} token: '${text}'`);
}

/**
 * Whether a rule's qube name or `uuid:X` names the party: equality that also
 * accepts `uuid:X` for the domain whose uuid is X. It branches on the
 * caller's spelling and compares a uuid with the uuid of the domain the
 * spelling found (NO_DOMAIN's, which no rule spells, for none), so a target
 * that does not exist takes the steps of one that does, and the caller's
 * text is compared with system info only once, by the lookup.
 */
function sameDomain(domains: Domains, a: string, other: Party): boolean {
  const b = other.spelling;
  if (a.startsWith('uuid:')) {
    if (b.startsWith('uuid:')) return a === b && !other.defaulted;
    return a.slice(5) === other.uuid;
  }
  if (b.startsWith('uuid:')) {
    const self = domains.get(a);
    return self !== undefined && self.uuid === other.uuid && !other.defaulted;
  }
  return a === b && !other.defaulted;
}

/** Whether a rule's `@dispvm:X` names the party's `@dispvm:Y`, the same way. */
function sameDispvmTemplate(domains: Domains, a: string, other: Party): boolean {
  const b = other.value;
  if (a.startsWith('uuid:')) {
    if (b.startsWith('uuid:')) return a === b;
    return a.slice(5) === other.templateUuid;
  }
  if (b.startsWith('uuid:')) {
    const self = domains.get(a);
    return self !== undefined && self.uuid === other.templateUuid;
  }
  return a === b;
}

/** The `@dispvm:TEMPLATE` a plain `@dispvm` call from `source` means, or null. */
export function dispvmTemplateOf(domains: Domains, source: string): Token | null {
  const template = domains.get(source)?.default_dispvm ?? null;
  if (template === null) return null;
  return { kind: 'dispvmTemplate', text: `@dispvm:${template}`, value: template };
}

/**
 * A request's source (a `name` token) or its verified intended target, with
 * what the rules read of the domains it names taken once for the evaluation,
 * from the domain or, for none, from NO_DOMAIN: each rule then reads the
 * same fields of the same object shape whether or not the domain exists.
 */
export interface Party extends Token {
  /** The target as the caller spelled it; for a name that does not exist, `text` is `@default`. */
  readonly spelling: string;
  /** A name that does not exist, rewritten to `@default`. */
  readonly defaulted: boolean;
  /** Whether the text names dom0; read from the spelling, so the same way for a name that does not exist. */
  readonly dom0: boolean;
  /** The domain the text names, for a name or `uuid:…`. */
  readonly domain: DomainInfo | undefined;
  /** What `@type:` and `@tag:` see, and the uuid `uuid:X` is compared with ('' for no domain). */
  readonly type: string;
  readonly tags: readonly string[];
  readonly uuid: string;
  /** For `@dispvm:X`: whether X is a disposable template, its uuid, and the tags `@dispvm:@tag:` sees (none unless it is). */
  readonly fitTemplate: boolean;
  readonly templateUuid: string;
  readonly dispvmTags: readonly string[];
}

const DEFAULT: Token = { kind: 'default', text: '@default', value: '@default' };

/**
 * The party for a token, from the domains its lookups found (undefined for
 * none). A `name` whose domain does not exist becomes `@default`, as qrexec
 * rewrites it, when `rewrite` is set (the intended target, not the source).
 */
function partyOf(token: Token, domain: DomainInfo | undefined, template: DomainInfo | undefined, rewrite: boolean): Party {
  const defaulted = rewrite && token.kind === 'name' && domain === undefined;
  const as = defaulted ? DEFAULT : token;
  const seen = domain ?? NO_DOMAIN;
  const dispvm = template ?? NO_DOMAIN;
  const fitTemplate = dispvm.template_for_dispvms;
  return {
    kind: as.kind,
    text: as.text,
    value: as.value,
    spelling: token.text,
    defaulted,
    dom0: isDom0(token.text) && !defaulted,
    domain,
    type: seen.type,
    tags: seen.tags,
    uuid: seen.uuid,
    fitTemplate,
    templateUuid: dispvm.uuid,
    dispvmTags: fitTemplate ? dispvm.tags : NO_DOMAIN.tags,
  };
}

/**
 * The intended target's party: for a name or `uuid:…` its domain, for
 * `@dispvm:X` X's, each looked up at the same cost found or not; a name that
 * does not exist becomes `@default`.
 */
export function targetParty(token: Token, domains: Domains): Party {
  const domain = token.kind === 'name' ? domains.find(token.text) : undefined;
  const template = token.kind === 'dispvmTemplate' ? domains.find(token.value) : undefined;
  return partyOf(token, domain, template, true);
}

/** The source's party (the caller, whose existence is no secret). */
export function sourceParty(name: string, domains: Domains): Party {
  return partyOf({ kind: 'name', text: name, value: name }, domains.get(name), undefined, false);
}

/**
 * Whether a rule token matches a request's source or its verified intended
 * target. `source` is given when matching targets.
 */
export function tokenMatches(token: Token, other: Party, domains: Domains, source?: string): boolean {
  const otherKind = other.kind;
  switch (token.kind) {
    case 'name':
      if (isDom0(token.text)) return other.dom0;
      return sameDomain(domains, token.text, other);
    case 'default':
      return otherKind === 'default';
    case 'wildcard':
      return true;
    case 'adminvm':
      return other.dom0;
    case 'anyvm':
      return !other.dom0;
    case 'type':
      return other.type === token.value;
    case 'tag':
      return other.tags.includes(token.value);
    case 'dispvm':
      return token.text === other.spelling && !other.defaulted;
    case 'dispvmTemplate': {
      if (otherKind === 'dispvm' && source !== undefined) {
        const template = dispvmTemplateOf(domains, source);
        // qrexec fails outright here rather than answering no.
        if (template === null) throw new MissingDomain(`default_dispvm of ${source}`);
        return token.text === template.text;
      }
      if (otherKind !== 'dispvmTemplate') return false;
      return sameDispvmTemplate(domains, token.value, other);
    }
    case 'dispvmTag': {
      // qrexec fails outright on a dangling default_dispvm; a requested `@dispvm:X` that does not
      // exist is matched before it is refused (evaluate.ts), so it must not fail here.
      if (otherKind === 'dispvm' && source !== undefined) {
        const template = dispvmTemplateOf(domains, source);
        if (template === null) return false;
        const domain = lookup(domains, template.value);
        return domain.template_for_dispvms && domain.tags.includes(token.value);
      }
      return otherKind === 'dispvmTemplate' && other.dispvmTags.includes(token.value);
    }
  }
}

/**
 * Every target a target or redirect token could stand for, for the choices of
 * an `ask` dialog. Keywords stay keywords (`@adminvm`, `@dispvm`).
 */
export function expandToken(token: Token, domains: Domains): string[] {
  const out: string[] = [];
  switch (token.kind) {
    case 'name':
      if (domains.get(token.text) !== undefined) out.push(uuidToName(domains, token.text));
      break;
    case 'wildcard':
    case 'anyvm':
      domains.each((name, domain) => {
        if (token.kind === 'wildcard' || !isDom0(name)) out.push(name);
        if (domain.template_for_dispvms) out.push(`@dispvm:${name}`);
      });
      out.push('@dispvm');
      break;
    case 'adminvm':
    case 'dispvm':
      out.push(token.text);
      break;
    case 'default':
      break;
    case 'type':
      domains.each((name, domain) => {
        if (domain.type === token.value) out.push(name);
      });
      break;
    case 'tag':
      domains.each((name, domain) => {
        if (domain.tags.includes(token.value)) out.push(name);
      });
      break;
    case 'dispvmTemplate':
      if (lookup(domains, token.value).template_for_dispvms) out.push(uuidToName(domains, token.text));
      break;
    case 'dispvmTag':
      domains.each((name, domain) => {
        if (domain.tags.includes(token.value) && domain.template_for_dispvms) out.push(`@dispvm:${name}`);
      });
      break;
  }
  return out;
}
