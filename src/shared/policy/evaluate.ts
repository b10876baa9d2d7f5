import type { AskAction, AllowAction, Rule } from './rule.js';
import { RuleIndex } from './rule-index.js';
import type { Domains } from './system.js';
import { domainsOf, isDom0, lookup, MissingDomain, nameOrFail, uuidToName } from './system.js';
import type { Token } from './tokens.js';
import { dispvmTemplateOf, expandToken, parseToken, sourceParty, targetParty, TokenError, tokenMatches } from './tokens.js';
import type { Party } from './tokens.js';
import type { Policy, PolicyRequest, Resolution, RuleLocation, SystemInfo } from './types.js';

type Denial = Extract<Resolution, { action: 'deny' }>;

/**
 * A refusal. Denials are returned, not thrown: most calls a policy answers are
 * refused, and an exception's stack trace would cost more than the matching.
 */
function deny(reason: string, notify = true, rule: RuleLocation | null = null): Denial {
  return { action: 'deny', reason, notify, rule };
}

/** What an unfit `@dispvm:X` reads in place of a rule's deny when its rule allows or asks. */
const NOT_DENIED: Denial = deny('', true, null);

function isDenial(value: object): value is Denial {
  return 'action' in value;
}

interface Call {
  /** The rules for the call's service and argument, in policy order. */
  rules: readonly Rule[];
  source: Party;
  /** The verified intended target. */
  target: Party;
  domains: Domains;
}

function where(rule: Rule): string {
  return `${rule.origin.file}:${rule.origin.line}`;
}

function locationOf(rule: Rule): RuleLocation {
  return { file: rule.origin.file, line: rule.origin.line };
}

/** What a deny rule, or no rule at all, answers; null for a rule that allows or asks. */
function denialBy(rule: Rule | undefined): Denial | null {
  if (rule === undefined) return deny('no matching rule found');
  if (rule.action.kind !== 'deny') return null;
  return deny(`denied by policy ${where(rule)}`, rule.action.notify, locationOf(rule));
}

/** Why qrexec refuses a target before any rule, or null: `@dispvm:X` needs X to be a disposable template. */
function unfitIntended(token: Token, domains: Domains): string | null {
  if (token.kind !== 'dispvmTemplate') return null;
  const domain = domains.get(token.value);
  return domain?.template_for_dispvms ? null : `not a template for dispvm: ${token.value}`;
}

/** A name that does not exist becomes `@default`. */
function defaulted(token: Token, domains: Domains): Token {
  return token.kind === 'name' && domains.get(token.text) === undefined ? { kind: 'default', text: '@default', value: '@default' } : token;
}

/** A target checked as qrexec checks what the caller asked for. */
function verifyIntended(token: Token, domains: Domains): Token | Denial {
  const unfit = unfitIntended(token, domains);
  return unfit !== null ? deny(unfit) : defaulted(token, domains);
}

function intendedToken(text: string): Token | Denial {
  try {
    return parseToken(text, 'intended');
  } catch (err) {
    if (err instanceof TokenError) return deny(err.message);
    throw err;
  }
}

/** The first rule for the call that matches its source and target. */
function firstMatch(call: Call): Rule | undefined {
  const { rules, source, target, domains } = call;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as Rule;
    if (tokenMatches(rule.source, source, domains) && tokenMatches(rule.target, target, domains, source.text)) return rule;
  }
  return undefined;
}

/** A target reachable without starting anything. */
function runningOrDom0(target: string, domains: Domains): boolean {
  if (isDom0(target)) return true;
  if (target.startsWith('@dispvm')) return false;
  return lookup(domains, target).power_state === 'Running';
}

/** The policy's rules in order; the first rule that matches decides. */
export class RulePolicy implements Policy {
  private readonly index: RuleIndex;

  constructor(rules: readonly Rule[]) {
    this.index = new RuleIndex(rules);
  }

  evaluate(req: PolicyRequest, system: SystemInfo): Resolution {
    try {
      return this.resolve(req, domainsOf(system));
    } catch (err) {
      // qrexec's evaluation raises here; qrexec-daemon then refuses the call and nobody is notified.
      if (err instanceof MissingDomain) return deny(`evaluation failed: ${err.message}`, false);
      throw err;
    }
  }

  private resolve(req: PolicyRequest, domains: Domains): Resolution {
    const parsed = intendedToken(req.target === '' ? '@default' : req.target);
    if (isDenial(parsed)) return parsed;
    // The target's domains are looked up here once, so that every rule reads the same fields
    // whether they exist or not; a name that does not exist becomes `@default`.
    const target = targetParty(parsed, domains);
    // qrexec refuses an unfit `@dispvm:X` before any rule. The rules are matched and their deny
    // worked out all the same, so that the refusal takes as long whether X is an outside
    // disposable template or nothing at all.
    const unfit = target.kind === 'dispvmTemplate' && !target.fitTemplate;
    const unfitReason = target.kind === 'dispvmTemplate' ? `not a template for dispvm: ${target.value}` : '';
    const source = sourceParty(req.source, domains);
    const call: Call = { rules: this.index.rulesFor(req.service, req.argument), source, target, domains };
    const rule = firstMatch(call);
    const denial = denialBy(rule);
    // Either refusal is made by the same steps, each field chosen between the two.
    if (unfit || denial !== null) {
      const by = denial ?? NOT_DENIED;
      return deny(unfit ? unfitReason : by.reason, unfit || by.notify, unfit ? null : by.rule);
    }
    const chosen = rule as Rule; // no rule at all is a denial
    const location = locationOf(chosen);
    return chosen.action.kind === 'ask' ? this.ask(chosen, chosen.action, call, location) : this.allow(chosen, chosen.action as AllowAction, call, location);
  }

  private allow(rule: Rule, action: AllowAction, call: Call, location: RuleLocation): Resolution {
    const { domains } = call;
    // A `target=` redirect was read at load as the same token the caller's spelling would give.
    const verified = verifyIntended(action.target ?? call.target, domains);
    if (isDenial(verified)) return verified;
    let target = verified;
    if (target.kind === 'default') {
      return deny(`policy define 'allow' action at ${where(rule)} but no target is specified by caller or policy`, true, location);
    }
    if (target.kind === 'dispvm') {
      const template = dispvmTemplateOf(domains, call.source.text);
      if (template === null) {
        return deny(`policy define 'allow' action to @dispvm at ${where(rule)} but no DispVM base is set for this VM`, true, location);
      }
      target = template;
    }
    const text = target.kind === 'adminvm' ? 'dom0' : target.text;
    if (!action.autostart && !runningOrDom0(text, domains)) {
      return deny(`target ${text} is denied because it would require autostart`, action.notify, location);
    }
    if (call.source.text === text) return deny('loopback qrexec connection not supported', true, location);
    // qrexec looks the disposable template up when it connects; a dangling default_dispvm fails there.
    if (target.kind === 'dispvmTemplate') lookup(domains, target.value);
    return {
      action: 'allow',
      target: isDom0(text) ? 'dom0' : text,
      user: action.user,
      autostart: action.autostart,
      notify: action.notify,
      rule: location,
    };
  }

  private ask(rule: Rule, action: AskAction, call: Call, location: RuleLocation): Resolution {
    const { domains } = call;
    let targets: string[];
    if (action.target) targets = [isDom0(action.target.text) ? 'dom0' : action.target.text];
    else targets = this.targetsForAsk(call);
    if (!action.autostart) targets = targets.filter((t) => runningOrDom0(t, domains));
    if (targets.length === 0) {
      return deny(`policy define 'ask' action at ${where(rule)} but no target is available to choose from`, true, location);
    }
    let defaultTarget: string | null = null;
    const wanted = action.defaultTarget;
    if (wanted?.kind === 'dispvm') defaultTarget = dispvmTemplateOf(domains, call.source.text)?.text ?? null;
    else if (wanted) defaultTarget = isDom0(wanted.text) ? 'dom0' : wanted.text;
    // A default the dialog could not offer is dropped, as qrexec does with a warning.
    if (defaultTarget !== null && !targets.includes(defaultTarget)) defaultTarget = null;
    return {
      action: 'ask',
      targets,
      defaultTarget,
      user: action.user,
      autostart: action.autostart,
      notify: action.notify,
      rule: location,
    };
  }

  /**
   * The choices for an `ask` without `target=`: every target that rules for
   * this service, argument and source could allow, later rules first so that
   * earlier denies take targets away; never the caller itself.
   */
  private targetsForAsk(call: Call): string[] {
    const { domains, rules } = call;
    const source = call.source.text;
    const sourceName = nameOrFail(domains, source);
    const sourceUuid = source.startsWith('uuid:') ? source : `uuid:${lookup(domains, source).uuid}`;
    const targets = new Set<string>();
    for (let i = rules.length - 1; i >= 0; i--) {
      const rule = rules[i] as Rule;
      if (!tokenMatches(rule.source, call.source, domains)) continue;
      const ruleTarget = (rule.action.kind === 'deny' ? null : rule.action.target) ?? rule.target;
      for (const candidate of expandToken(ruleTarget, domains)) {
        let t: string;
        try {
          t = uuidToName(domains, candidate);
        } catch (err) {
          if (!(err instanceof MissingDomain)) throw err;
          continue;
        }
        if (rule.action.kind === 'deny') targets.delete(t);
        else targets.add(t);
      }
    }
    if (targets.delete('@dispvm')) {
      const template = dispvmTemplateOf(domains, source);
      if (template) targets.add(template.text);
    }
    if (targets.delete('@adminvm')) targets.add('dom0');
    targets.delete(sourceName);
    targets.delete(sourceUuid);
    for (const t of [...targets]) {
      const name = t.startsWith('@dispvm:') ? t.slice(8) : t;
      if (lookup(domains, name).internal) targets.delete(t);
    }
    return [...targets].sort();
  }
}
