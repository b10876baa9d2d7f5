import type { Position, Token } from './tokens.js';
import { parseToken, TokenError } from './tokens.js';
import { PolicySyntaxError } from './types.js';

/** Where a rule came from; line 0 for rules a directive made up. */
export interface Origin {
  file: string;
  line: number;
}

export interface AllowAction {
  kind: 'allow';
  target: Token | null;
  user: string | null;
  notify: boolean;
  autostart: boolean;
}

export interface AskAction {
  kind: 'ask';
  target: Token | null;
  defaultTarget: Token | null;
  user: string | null;
  notify: boolean;
  autostart: boolean;
}

export interface DenyAction {
  kind: 'deny';
  notify: boolean;
}

export type Action = AllowAction | AskAction | DenyAction;

export interface Rule {
  /** null for `*`. */
  service: string | null;
  /** With its leading `+`; null for `*`. */
  argument: string | null;
  source: Token;
  target: Token;
  action: Action;
  origin: Origin;
}

// Service and argument characters qrexec accepts in a policy.
const SERVICE_CHARS = /^[A-Za-z0-9._-]*$/;
const ARGUMENT_CHARS = /^[A-Za-z0-9+._-]*$/;

const PARAMS: Readonly<Record<Action['kind'], readonly string[]>> = {
  allow: ['target', 'user', 'notify', 'autostart'],
  ask: ['target', 'default_target', 'user', 'notify', 'autostart'],
  deny: ['notify'],
};

/** Python's str.split() with no argument: runs of Unicode whitespace. */
// eslint-disable-next-line no-control-regex -- Python counts \x1c-\x1f as whitespace
export const WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

export function splitFields(line: string): string[] {
  return line.split(WHITESPACE).filter((f) => f.length > 0);
}

function badChars(value: string, allowed: RegExp): string {
  const chars = [...new Set([...value].filter((c) => !allowed.test(c)))].sort();
  return chars.map((c) => `'${c}'`).join(', ');
}

/**
 * Checks a rule's service and argument columns (also those of
 * `!include-service`) and returns them with `*` as null.
 */
export function checkServiceAndArgument(
  service: string,
  argument: string,
  origin: Origin,
): { service: string | null; argument: string | null } {
  const svc = service === '*' ? null : service;
  if (svc !== null && !SERVICE_CHARS.test(svc)) {
    throw new PolicySyntaxError(origin.file, origin.line,
      `service '${svc}' contains invalid characters: ${badChars(svc, /[A-Za-z0-9._-]/)}`);
  }
  const arg = argument === '*' ? null : argument;
  if (arg !== null) {
    if (!ARGUMENT_CHARS.test(arg)) {
      throw new PolicySyntaxError(origin.file, origin.line,
        `argument '${arg}' contains invalid characters: ${badChars(arg, /[A-Za-z0-9+._-]/)}`);
    }
    if (!arg.startsWith('+')) throw new PolicySyntaxError(origin.file, origin.line, `argument '${arg}' does not start with +`);
    if (svc === null) throw new PolicySyntaxError(origin.file, origin.line, 'only * argument allowed for * service');
  }
  return { service: svc, argument: arg };
}

function token(text: string, position: Position, origin: Origin): Token {
  try {
    return parseToken(text, position);
  } catch (err) {
    if (err instanceof TokenError) throw new PolicySyntaxError(origin.file, origin.line, err.message);
    throw err;
  }
}

function yesNo(params: Map<string, string>, key: string, fallback: boolean, origin: Origin): boolean {
  const value = params.get(key);
  if (value === undefined) return fallback;
  if (value !== 'yes' && value !== 'no') {
    throw new PolicySyntaxError(origin.file, origin.line, `'${key}' is '${value}', but can be only 'yes' or 'no'`);
  }
  return value === 'yes';
}

/** Builds a rule from its columns: service, argument, source, target, action and `key=value` parameters. */
export function buildRule(
  service: string,
  argument: string,
  sourceText: string,
  targetText: string,
  actionText: string,
  paramTexts: readonly string[],
  origin: Origin,
): Rule {
  const checked = checkServiceAndArgument(service, argument, origin);
  const source = token(sourceText, 'source', origin);
  const target = token(targetText, 'target', origin);
  if (actionText !== 'allow' && actionText !== 'ask' && actionText !== 'deny') {
    throw new PolicySyntaxError(origin.file, origin.line, `invalid action: ${actionText}`);
  }
  const kind: Action['kind'] = actionText;
  const params = new Map<string, string>();
  for (const param of paramTexts) {
    const eq = param.indexOf('=');
    if (eq < 0) throw new PolicySyntaxError(origin.file, origin.line, `invalid action parameter syntax: '${param}'`);
    const key = param.slice(0, eq);
    if (params.has(key)) throw new PolicySyntaxError(origin.file, origin.line, `parameter given twice: '${key}'`);
    params.set(key, param.slice(eq + 1));
  }
  const notifyDefault = kind === 'deny';
  const notify = yesNo(params, 'notify', notifyDefault, origin);
  const autostart = yesNo(params, 'autostart', true, origin);
  for (const key of params.keys()) {
    if (!PARAMS[kind].includes(key)) {
      throw new PolicySyntaxError(origin.file, origin.line,
        `invalid parameters for action ${kind}: ${paramTexts.join(' ')}`);
    }
  }
  const redirect = (key: string): Token | null => {
    const value = params.get(key);
    return value === undefined ? null : token(value, 'redirect', origin);
  };
  let action: Action;
  if (kind === 'deny') {
    action = { kind, notify };
  } else if (kind === 'allow') {
    action = { kind, target: redirect('target'), user: params.get('user') ?? null, notify, autostart };
  } else {
    action = {
      kind,
      target: redirect('target'),
      defaultTarget: redirect('default_target'),
      user: params.get('user') ?? null,
      notify,
      autostart,
    };
  }
  if (target.kind === 'default' && action.kind === 'allow' && action.target === null) {
    throw new PolicySyntaxError(origin.file, origin.line, 'allow action for @default rule must specify target= option');
  }
  return { service: checked.service, argument: checked.argument, source, target, action, origin };
}

/** A rule line of a `*.policy` file: `SERVICE ARGUMENT SOURCE TARGET ACTION [PARAM=VALUE…]`. */
export function parseRuleLine(line: string, origin: Origin): Rule {
  const fields = splitFields(line);
  if (fields.length < 5) throw new PolicySyntaxError(origin.file, origin.line, 'wrong number of fields');
  const [service, argument, source, target, action, ...params] = fields as [string, string, string, string, string, ...string[]];
  return buildRule(service, argument, source, target, action, params, origin);
}

/** A line of the old per-service format: `SOURCE TARGET ACTION[,PARAM=VALUE…]`. */
export function parseServiceRuleLine(service: string, argument: string, line: string, origin: Origin): Rule {
  const fields = splitFields(line);
  if (fields.length < 2) throw new PolicySyntaxError(origin.file, origin.line, 'wrong number of fields');
  const [source, target, ...rest] = fields as [string, string, ...string[]];
  const actionAndParams = rest.flatMap((p) => p.split(','));
  if (actionAndParams.length < 1) throw new PolicySyntaxError(origin.file, origin.line, 'wrong number of fields');
  const [action, ...params] = actionAndParams as [string, ...string[]];
  return buildRule(service, argument, source, target, action, params, origin);
}
