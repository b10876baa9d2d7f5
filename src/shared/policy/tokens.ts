import type { Domains } from './system.js';
import { isDom0, lookup, MissingDomain, uuidToName } from './system.js';
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

/** Equality that also accepts `uuid:X` for the domain whose uuid is X. */
function sameDomain(domains: Domains, a: string, b: string): boolean {
  if (a.startsWith('uuid:')) {
    if (b.startsWith('uuid:')) return a === b;
    const other = domains.get(b);
    return other !== undefined && a.slice(5) === other.uuid;
  }
  if (b.startsWith('uuid:')) {
    const self = domains.get(a);
    return self !== undefined && b.slice(5) === self.uuid;
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
 * the domains it names looked up once for the evaluation: each rule then
 * reads the same fields whether or not the domain exists.
 */
export interface Party extends Token {
  /** The domain the text names (what `@type:` and `@tag:` look at), for a name or `uuid:…`. */
  readonly domain: DomainInfo | undefined;
  /** The domain X names, for `@dispvm:X`. */
  readonly template: DomainInfo | undefined;
}

export function partyOf(token: Token, domains: Domains): Party {
  return {
    kind: token.kind,
    text: token.text,
    value: token.value,
    domain: token.kind === 'name' ? domains.get(token.text) : undefined,
    template: token.kind === 'dispvmTemplate' ? domains.get(token.value) : undefined,
  };
}

/** What `@type:` and `@tag:` see of a target that is no domain: matched the same way, so no sooner. */
const NOBODY: { readonly type: string; readonly tags: readonly string[] } = { type: '', tags: [] };

/**
 * Whether a rule token matches a request's source or its verified intended
 * target. `source` is given when matching targets.
 */
export function tokenMatches(token: Token, other: Party, domains: Domains, source?: string): boolean {
  const { text, kind: otherKind } = other;
  switch (token.kind) {
    case 'name':
    case 'default':
      if (isDom0(token.text)) return isDom0(text);
      return sameDomain(domains, token.text, text);
    case 'wildcard':
      return true;
    case 'adminvm':
      return isDom0(text);
    case 'anyvm':
      return !isDom0(text);
    case 'type':
      return (other.domain ?? NOBODY).type === token.value;
    case 'tag':
      return (other.domain ?? NOBODY).tags.includes(token.value);
    case 'dispvm':
      return token.text === text;
    case 'dispvmTemplate': {
      if (otherKind === 'dispvm' && source !== undefined) {
        const template = dispvmTemplateOf(domains, source);
        // qrexec fails outright here rather than answering no.
        if (template === null) throw new MissingDomain(`default_dispvm of ${source}`);
        return sameDomain(domains, token.text, template.text);
      }
      if (otherKind !== 'dispvmTemplate') return false;
      return sameDomain(domains, token.value, other.value);
    }
    case 'dispvmTag': {
      let domain: DomainInfo | undefined;
      // qrexec fails outright on a dangling default_dispvm; a requested `@dispvm:X` that does not
      // exist is matched before it is refused (evaluate.ts), so it must not fail here.
      if (otherKind === 'dispvm' && source !== undefined) {
        const template = dispvmTemplateOf(domains, source);
        if (template === null) return false;
        domain = lookup(domains, template.value);
      } else if (otherKind === 'dispvmTemplate') domain = other.template;
      return domain !== undefined && domain.template_for_dispvms && domain.tags.includes(token.value);
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
